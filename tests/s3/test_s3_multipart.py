"""Multipart uploads: the happy path, validation errors, copy parts, listings and abort."""
from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError
from s3_util import MIN_PART


def code(e: pytest.ExceptionInfo) -> tuple[str, int]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def md5n(parts: list[bytes]) -> str:
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def test_multipart_roundtrip(s3, bucket, fs):
    parts = [os.urandom(MIN_PART + 1000), os.urandom(MIN_PART * 2), os.urandom(777)]
    up = s3.create_multipart_upload(Bucket=bucket, Key="mp/obj", ContentType="application/x-mp",
                                    Metadata={"k": "v"})["UploadId"]
    etags = []
    for i, p in enumerate(parts, 1):
        etags.append(s3.upload_part(Bucket=bucket, Key="mp/obj", UploadId=up, PartNumber=i, Body=p)["ETag"])
    assert etags[0] == f'"{hashlib.md5(parts[0]).hexdigest()}"'
    listed = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=up)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == \
        [(i, e, len(p)) for i, (e, p) in enumerate(zip(etags, parts), 1)]
    page = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=up, MaxParts=2)
    assert page["IsTruncated"] and [p["PartNumber"] for p in page["Parts"]] == [1, 2]
    rest = s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=up, PartNumberMarker=page["NextPartNumberMarker"])
    assert [p["PartNumber"] for p in rest["Parts"]] == [3]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp/obj", up)]
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)          # in-progress uploads are invisible
    done = s3.complete_multipart_upload(Bucket=bucket, Key="mp/obj", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    assert done["ETag"] == f'"{md5n(parts)}"'
    data = b"".join(parts)
    assert fs.read_file(f"/{bucket}/mp/obj") == data
    got = s3.get_object(Bucket=bucket, Key="mp/obj")
    assert got["Body"].read() == data and got["ETag"] == done["ETag"]
    assert got["ContentType"] == "application/x-mp" and got["Metadata"] == {"k": "v"}
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert fs.listdir(f"/{bucket}/.s3-uploads") == []
    with pytest.raises(ClientError) as e:
        s3.list_parts(Bucket=bucket, Key="mp/obj", UploadId=up)
    assert code(e) == ("NoSuchUpload", 404)


def test_complete_validation(s3, bucket, fs):
    up = s3.create_multipart_upload(Bucket=bucket, Key="v")["UploadId"]
    e1 = s3.upload_part(Bucket=bucket, Key="v", UploadId=up, PartNumber=1, Body=b"x" * 100)["ETag"]
    e2 = s3.upload_part(Bucket=bucket, Key="v", UploadId=up, PartNumber=2, Body=b"y" * 100)["ETag"]

    def complete(parts):
        with pytest.raises(ClientError) as e:
            s3.complete_multipart_upload(Bucket=bucket, Key="v", UploadId=up, MultipartUpload={"Parts": parts})
        return code(e)

    assert complete([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]) == ("InvalidPartOrder", 400)
    assert complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 3, "ETag": e2}]) == ("InvalidPart", 400)
    assert complete([{"PartNumber": 1, "ETag": '"ffff"'}]) == ("InvalidPart", 400)
    assert complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]) == ("EntityTooSmall", 400)
    assert not fs.exists(f"/{bucket}/v")
    # the failed attempts left the upload intact: a single small (last) part completes
    r = s3.complete_multipart_upload(Bucket=bucket, Key="v", UploadId=up,
                                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}]})
    assert r["ETag"] == f'"{md5n([b"y" * 100])}"'
    assert s3.get_object(Bucket=bucket, Key="v")["Body"].read() == b"y" * 100


def test_bad_part_numbers_and_unknown_upload(s3, bucket):
    up = s3.create_multipart_upload(Bucket=bucket, Key="n")["UploadId"]
    for n in (0, 10001):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="n", UploadId=up, PartNumber=n, Body=b"1")
        assert code(e) == ("InvalidArgument", 400)
    for bad in ("0" * 32, "../../etc", up + "x"):
        with pytest.raises(ClientError) as e:
            s3.upload_part(Bucket=bucket, Key="n", UploadId=bad, PartNumber=1, Body=b"1")
        assert code(e) == ("NoSuchUpload", 404)
    with pytest.raises(ClientError) as e:          # an upload belongs to its key
        s3.upload_part(Bucket=bucket, Key="other", UploadId=up, PartNumber=1, Body=b"1")
    assert code(e) == ("NoSuchUpload", 404)


def test_abort(s3, bucket, fs):
    up = s3.create_multipart_upload(Bucket=bucket, Key="ab")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="ab", UploadId=up, PartNumber=1, Body=b"z" * 10)
    s3.abort_multipart_upload(Bucket=bucket, Key="ab", UploadId=up)
    assert fs.listdir(f"/{bucket}/.s3-uploads") == []
    with pytest.raises(ClientError) as e:
        s3.upload_part(Bucket=bucket, Key="ab", UploadId=up, PartNumber=2, Body=b"1")
    assert code(e) == ("NoSuchUpload", 404)
    s3.delete_bucket(Bucket=bucket)            # nothing in progress: the bucket is empty


def test_upload_in_progress_blocks_bucket_delete(s3, bucket):
    s3.create_multipart_upload(Bucket=bucket, Key="pending")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=bucket)
    assert code(e) == ("BucketNotEmpty", 409)


def test_upload_part_copy(s3, bucket):
    src = os.urandom(3 * MIN_PART)
    s3.put_object(Bucket=bucket, Key="source", Body=src)
    up = s3.create_multipart_upload(Bucket=bucket, Key="assembled")["UploadId"]
    p1 = s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up, PartNumber=1,
                             CopySource={"Bucket": bucket, "Key": "source"},
                             CopySourceRange=f"bytes=0-{MIN_PART * 2 - 1}")["CopyPartResult"]["ETag"]
    p2 = s3.upload_part(Bucket=bucket, Key="assembled", UploadId=up, PartNumber=2, Body=b"tail")["ETag"]
    with pytest.raises(ClientError) as e:
        s3.upload_part_copy(Bucket=bucket, Key="assembled", UploadId=up, PartNumber=3,
                            CopySource={"Bucket": bucket, "Key": "source"}, CopySourceRange="bytes=0-99999999")
    assert code(e) == ("InvalidRange", 416)
    s3.complete_multipart_upload(Bucket=bucket, Key="assembled", UploadId=up, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": p1}, {"PartNumber": 2, "ETag": p2}]})
    assert s3.get_object(Bucket=bucket, Key="assembled")["Body"].read() == src[:MIN_PART * 2] + b"tail"


def test_list_uploads_prefix_and_delimiter(s3, bucket):
    ids = {k: s3.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"] for k in ("x/1", "x/2", "y", "z/deep/1")}
    r = s3.list_multipart_uploads(Bucket=bucket, Delimiter="/")
    assert [u["Key"] for u in r["Uploads"]] == ["y"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["x/", "z/"]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="x/", MaxUploads=1)
    assert r["IsTruncated"] and [u["UploadId"] for u in r["Uploads"]] == [ids["x/1"]]
    r = s3.list_multipart_uploads(Bucket=bucket, Prefix="x/", KeyMarker=r["NextKeyMarker"])
    assert [u["Key"] for u in r["Uploads"]] == ["x/2"]
