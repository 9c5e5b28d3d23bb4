"""ListObjects v1/v2 over paged readdir, checked against a model of S3's ordering and grouping."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

KEYS = ["a-c", "a.txt", "a/b", "a/c/d", "a/c/e", "a/c!x", "a0", "ab/c", "ab/c/d", "b", "b/", "ba/x/y/z",
        "dir/sub/1", "dir/sub/2", "dir/sub2/1", "dir/z", "zz", "ü/ñ", "sp ace/+plus"]
OBJECTS = [k for k in KEYS if not k.endswith("/")]
# "ab/c" and "ab/c/d" cannot both exist (a file cannot also be a directory): keep the deeper one
OBJECTS.remove("ab/c")
OBJECTS.remove("b")
# "folder" markers (zero-byte keys ending in '/', which make directories): S3 lists them as objects
MARKERS = ["empty/", "dir/hollow/", "a/c/void/"]
OBJECTS += MARKERS


def model(prefix: str, delimiter: str) -> tuple[list[str], list[str]]:
    keys = sorted((k for k in OBJECTS if k.startswith(prefix)), key=lambda s: s.encode())
    contents, prefixes = [], []
    for k in keys:
        rest = k[len(prefix):]
        if delimiter and delimiter in rest:
            cp = prefix + rest[:rest.index(delimiter) + len(delimiter)]
            if cp not in prefixes:
                prefixes.append(cp)
        else:
            contents.append(k)
    return contents, prefixes


@pytest.fixture(scope="module")
def listed_bucket(gateway):
    s3 = gateway.client()
    s3.create_bucket(Bucket="listing-model")
    for k in OBJECTS:
        s3.put_object(Bucket="listing-model", Key=k, Body=b"" if k in MARKERS else k.encode())
    return "listing-model"


def page_v2(s3, bucket, **kw) -> tuple[list[str], list[str], int]:
    contents, prefixes, pages = [], [], 0
    token = None
    while True:
        args = dict(kw, Bucket=bucket)
        if token:
            args["ContinuationToken"] = token
        r = s3.list_objects_v2(**args)
        pages += 1
        assert r["KeyCount"] == len(r.get("Contents", [])) + len(r.get("CommonPrefixes", []))
        assert r["KeyCount"] <= kw.get("MaxKeys", 1000)
        contents += [o["Key"] for o in r.get("Contents", [])]
        prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
        if not r["IsTruncated"]:
            return contents, prefixes, pages
        token = r["NextContinuationToken"]


@pytest.mark.parametrize("prefix,delimiter", [("", ""), ("", "/"), ("a", "/"), ("a/", "/"), ("dir/", "/"),
                                              ("dir/sub", "/"), ("dir/sub", ""), ("a", ""), ("", "c"),
                                              ("dir/", "sub"), ("nothing", "/"), ("ü/", "/"), ("empty/", "/"),
                                              ("empty/", ""), ("empty", "/"), ("dir/hollow/", "/"), ("a/c/", "/"),
                                              ("a/c/v", "")])
@pytest.mark.parametrize("max_keys", [1, 3, 1000])
def test_v2_paging_matches_model(s3, listed_bucket, prefix, delimiter, max_keys):
    kw = {"Prefix": prefix, "MaxKeys": max_keys}
    if delimiter:
        kw["Delimiter"] = delimiter
    contents, prefixes, pages = page_v2(s3, listed_bucket, **kw)
    assert (contents, prefixes) == model(prefix, delimiter)
    if max_keys == 1:
        assert pages >= len(contents) + len(prefixes)


def test_v2_start_after_and_owner(s3, listed_bucket, gateway):
    r = s3.list_objects_v2(Bucket=listed_bucket, StartAfter="a/c/d", FetchOwner=True)
    keys = [o["Key"] for o in r["Contents"]]
    assert keys == [k for k in model("", "")[0] if k.encode() > b"a/c/d"]
    assert all(o["Owner"]["ID"] == str(gateway.alice.uid) for o in r["Contents"])
    assert r["Contents"][0]["ETag"].strip('"') and r["Contents"][0]["Size"] == len(keys[0].encode())


def test_folder_markers_list_as_empty_objects(s3, listed_bucket):
    """An empty directory is its marker: size 0, the ETag of no bytes; once a key is under it, only the key."""
    r = s3.list_objects_v2(Bucket=listed_bucket, Prefix="empty/")
    (o,) = r["Contents"]
    assert (o["Key"], o["Size"], o["ETag"]) == ("empty/", 0, '"d41d8cd98f00b204e9800998ecf8427e"')
    head = s3.head_object(Bucket=listed_bucket, Key="empty/")
    assert head["ETag"] == o["ETag"] and head["ContentLength"] == 0
    s3.put_object(Bucket=listed_bucket, Key="dir/hollow/filled", Body=b"x")
    try:
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=listed_bucket, Prefix="dir/hollow/")["Contents"]]
        assert keys == ["dir/hollow/filled"]       # S3 would keep the marker too: here it is a directory
    finally:
        s3.delete_object(Bucket=listed_bucket, Key="dir/hollow/filled")
        s3.put_object(Bucket=listed_bucket, Key="dir/hollow/", Body=b"")   # deleting the last key removed it


def test_v2_zero_and_bad_max_keys(s3, listed_bucket):
    r = s3.list_objects_v2(Bucket=listed_bucket, MaxKeys=0)
    assert r["KeyCount"] == 0 and "Contents" not in r
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=listed_bucket, ContinuationToken="garbage!")
    assert e.value.response["Error"]["Code"] == "InvalidArgument"


def test_v1_marker_paging(s3, listed_bucket):
    for delimiter in ("", "/"):
        contents, prefixes, marker = [], [], ""
        while True:
            kw = {"Bucket": listed_bucket, "MaxKeys": 2, "Marker": marker}
            if delimiter:
                kw["Delimiter"] = delimiter
            r = s3.list_objects(**kw)
            contents += [o["Key"] for o in r.get("Contents", [])]
            prefixes += [p["Prefix"] for p in r.get("CommonPrefixes", [])]
            if not r["IsTruncated"]:
                break
            marker = r.get("NextMarker") or r["Contents"][-1]["Key"]
        assert (contents, prefixes) == model("", delimiter)


def test_encoding_type_url(s3, listed_bucket):
    # boto3 asks for encoding-type=url and decodes: the keys come back exactly
    r = s3.list_objects_v2(Bucket=listed_bucket, Prefix="sp ace/")
    assert [o["Key"] for o in r["Contents"]] == ["sp ace/+plus"]
    raw = s3.list_objects_v2(Bucket=listed_bucket, Prefix="sp ace/", EncodingType="url")   # caller decodes
    assert raw["Contents"][0]["Key"] == "sp%20ace/%2Bplus" and raw["Prefix"] == "sp%20ace/"


def test_hidden_uploads_dir_and_large_directory_paging(s3, bucket, fs):
    s3.create_multipart_upload(Bucket=bucket, Key="pending")
    with fs.open(f"/{bucket}/many.marker", "wb"):
        pass
    fs.makedirs(f"/{bucket}/flat", exist_ok=True)
    names = [f"f{i:04d}" for i in range(1200)]          # more than one readdir page (512) and one S3 page
    for n in names:
        with fs.open(f"/{bucket}/flat/{n}", "wb"):
            pass
    contents, _prefixes, pages = page_v2(s3, bucket, Prefix="flat/", MaxKeys=1000)
    assert contents == [f"flat/{n}" for n in names] and pages == 2
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["flat/"]
    assert [o["Key"] for o in top["Contents"]] == ["many.marker"]      # .s3-uploads never shows


@pytest.mark.parametrize("prefix", ["../", "../listing-model/", "a/../", "./", "a//", ".", ".."])
def test_prefixes_cannot_leave_the_bucket(s3, bucket, listed_bucket, prefix):
    s3.put_object(Bucket=bucket, Key="own", Body=b"1")
    r = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, Delimiter="/")
    assert r.get("Contents", []) == [] and r.get("CommonPrefixes", []) == []
    r = s3.list_objects_v2(Bucket=bucket, StartAfter=prefix)
    assert [o["Key"] for o in r.get("Contents", [])] == (["own"] if b"own" > prefix.encode() else [])
