"""ListMultipartUploads: order (key, then initiation), paging by key-marker/upload-id-marker, prefixes and
delimiters across pages, URL encoding."""
from __future__ import annotations

from urllib.parse import quote

KEYS = ["a/1", "a/2", "b", "b", "b", "c/x/1", "c/y", "d", "e e/ü", "f"]


def create_all(s3, bucket: str) -> list[tuple[str, str]]:
    """Start an upload for each of KEYS (in order, so initiation order within a key is creation order)."""
    return [(k, s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]) for k in KEYS]


def test_paginator_walks_every_upload_in_order(s3, bucket):
    made = create_all(s3, bucket)
    expected = sorted(made, key=lambda kv: kv[0].encode())       # stable: same-key uploads stay in creation order
    pages = list(s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket,
                                                                     PaginationConfig={"PageSize": 3}))
    assert len(pages) == 4
    assert [p["IsTruncated"] for p in pages] == [True, True, True, False]
    assert all(p["MaxUploads"] == 3 for p in pages)
    got = [(u["Key"], u["UploadId"]) for p in pages for u in p.get("Uploads", [])]
    assert got == expected
    # the page boundary falls between two uploads of "b": the id marker resumes inside the key
    first = pages[0]
    assert (first["NextKeyMarker"], first["NextUploadIdMarker"]) == ("b", expected[2][1])
    assert s3.list_multipart_uploads(Bucket=bucket)["MaxUploads"] == 1000


def test_upload_id_marker_resumes_inside_a_key(s3, bucket):
    made = create_all(s3, bucket)
    bs = [u for k, u in made if k == "b"]
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b", UploadIdMarker=bs[0])
    assert [(u["Key"], u["UploadId"]) for u in r["Uploads"]][:3] == [("b", bs[1]), ("b", bs[2]), ("c/x/1", made[5][1])]
    r = s3.list_multipart_uploads(Bucket=bucket, KeyMarker="b")
    assert r["Uploads"][0]["Key"] == "c/x/1"


def test_delimiter_pages_roll_up_prefixes_once(s3, bucket):
    create_all(s3, bucket)
    seen: list[str] = []
    kw: dict = {}
    pages = 0
    while True:
        r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/", MaxUploads=2, **kw)
        pages += 1
        entries = sorted([u["Key"] for u in r.get("Uploads", [])] + [p["Prefix"] for p in r.get("CommonPrefixes", [])],
                         key=str.encode)
        assert len(entries) <= 2
        seen += entries
        if not r["IsTruncated"]:
            break
        kw = {"KeyMarker": r["NextKeyMarker"], "UploadIdMarker": r.get("NextUploadIdMarker", "")}
    assert seen == ["a/", "b", "b", "b", "c/", "d", "e e/", "f"]
    assert pages == 4
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="c/", Delimiter="/")
    assert [u["Key"] for u in r.get("Uploads", [])] == ["c/y"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["c/x/"]


def test_encoding_type_url(s3, bucket):
    create_all(s3, bucket)
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="e e/", EncodingType="url")
    assert r["EncodingType"] == "url"
    assert [u["Key"] for u in r["Uploads"]] == [quote("e e/ü", safe="/")]
    assert r["Prefix"] == "e%20e/"
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter=" ", EncodingType="url")
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["e%20"]
