"""S3 buckets and objects through boto3 against `threefs s3 serve`, checked against the file system."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import uuid

import pytest
from botocore.exceptions import ClientError


def code(e: pytest.ExceptionInfo) -> tuple[str, int]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def test_bucket_lifecycle(gateway, s3, fs):
    name = "life-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=name)
    assert fs.stat(f"/{name}").st_uid == gateway.alice.uid
    assert name in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert s3.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert s3.get_bucket_location(Bucket=name).get("LocationConstraint") is None
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert code(e) == ("BucketAlreadyOwnedByYou", 409)
    with pytest.raises(ClientError) as e:
        gateway.client(gateway.bob).create_bucket(Bucket=name)
    assert code(e) == ("BucketAlreadyExists", 409)
    s3.put_object(Bucket=name, Key="k", Body=b"x")
    with pytest.raises(ClientError) as e:
        s3.delete_bucket(Bucket=name)
    assert code(e) == ("BucketNotEmpty", 409)
    s3.delete_object(Bucket=name, Key="k")
    s3.delete_bucket(Bucket=name)
    assert not fs.exists(f"/{name}")
    with pytest.raises(ClientError) as e:
        s3.head_bucket(Bucket=name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as e:
        s3.list_objects_v2(Bucket=name)
    assert code(e) == ("NoSuchBucket", 404)


@pytest.mark.parametrize("name", ["ab", "Upper-case", "a..b", "192.168.1.1", "-lead", "x" * 64, "under_score"])
def test_bucket_name_rules(s3, fs, name):
    with pytest.raises(ClientError) as e:
        s3.create_bucket(Bucket=name)
    assert code(e) == ("InvalidBucketName", 400)
    assert not fs.exists("/" + name)


def test_put_get_head_delete_with_metadata(s3, bucket, fs):
    data = os.urandom(200_000)
    md5 = hashlib.md5(data).hexdigest()
    put = s3.put_object(Bucket=bucket, Key="dir/sub/obj.bin", Body=data, ContentType="application/x-test",
                        Metadata={"Owner": "alice", "n": "1"}, CacheControl="max-age=5")
    assert put["ETag"] == f'"{md5}"'
    assert fs.read_file(f"/{bucket}/dir/sub/obj.bin") == data          # keys with slashes are nested dirs
    head = s3.head_object(Bucket=bucket, Key="dir/sub/obj.bin")
    assert head["ContentLength"] == len(data) and head["ETag"] == f'"{md5}"'
    assert head["ContentType"] == "application/x-test" and head["CacheControl"] == "max-age=5"
    assert head["Metadata"] == {"owner": "alice", "n": "1"}
    got = s3.get_object(Bucket=bucket, Key="dir/sub/obj.bin")
    assert got["Body"].read() == data and got["Metadata"]["owner"] == "alice"
    part = s3.get_object(Bucket=bucket, Key="dir/sub/obj.bin", Range="bytes=1000-1999")
    assert part["ContentRange"] == f"bytes 1000-1999/{len(data)}" and part["Body"].read() == data[1000:2000]
    assert s3.get_object(Bucket=bucket, Key="dir/sub/obj.bin", Range="bytes=-10")["Body"].read() == data[-10:]
    assert s3.get_object(Bucket=bucket, Key="dir/sub/obj.bin", Range="bytes=199990-")["Body"].read() == data[-10:]
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/sub/obj.bin", Range=f"bytes={len(data)}-")
    assert code(e) == ("InvalidRange", 416)
    s3.delete_object(Bucket=bucket, Key="dir/sub/obj.bin")
    assert not fs.exists(f"/{bucket}/dir")                                # empty implied prefixes vanish
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="dir/sub/obj.bin")
    assert code(e) == ("NoSuchKey", 404)
    s3.delete_object(Bucket=bucket, Key="dir/sub/obj.bin")                # idempotent


def test_overwrite_and_empty_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"first version")
    s3.put_object(Bucket=bucket, Key="k", Body=b"")
    r = s3.get_object(Bucket=bucket, Key="k")
    assert r["Body"].read() == b"" and r["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'


def test_large_object_streams(s3, bucket):
    data = os.urandom(9 << 20)
    s3.put_object(Bucket=bucket, Key="big", Body=data)
    assert s3.get_object(Bucket=bucket, Key="big")["Body"].read() == data
    assert s3.get_object(Bucket=bucket, Key="big", Range="bytes=4194000-4194999")["Body"].read() == \
        data[4194000:4195000]


@pytest.mark.parametrize("key", ["a/../b", "a//b", "./x", "/lead", ".s3-uploads/x", "a/./b", "x" * 300])
def test_keys_that_cannot_map_are_rejected(s3, bucket, fs, key):
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key=key, Body=b"data")
    assert code(e)[1] == 400 and code(e)[0] in ("InvalidObjectName", "KeyTooLongError")
    assert [n for n in fs.listdir(f"/{bucket}") if n != ".s3-uploads"] == []


def test_key_below_object_is_rejected_cleanly(s3, bucket):
    s3.put_object(Bucket=bucket, Key="file", Body=b"1")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="file/child", Body=b"2")
    assert code(e) == ("InvalidObjectName", 400)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="file/child")
    assert code(e) == ("NoSuchKey", 404)
    assert s3.get_object(Bucket=bucket, Key="file")["Body"].read() == b"1"


def test_content_md5(s3, bucket, fs):
    good = base64.b64encode(hashlib.md5(b"payload").digest()).decode()
    s3.put_object(Bucket=bucket, Key="ok", Body=b"payload", ContentMD5=good)
    bad = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"payload", ContentMD5=bad)
    assert code(e) == ("BadDigest", 400)
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="bad", Body=b"payload", ContentMD5="not-base64!")
    assert code(e) == ("InvalidDigest", 400)
    assert not fs.exists(f"/{bucket}/bad")
    assert [n for n in fs.listdir(f"/{bucket}/.s3-uploads")] == []     # temporaries are removed


def test_failed_put_keeps_the_previous_object(s3, bucket):
    s3.put_object(Bucket=bucket, Key="keep", Body=b"original")
    bad = base64.b64encode(hashlib.md5(b"zzz").digest()).decode()
    with pytest.raises(ClientError):
        s3.put_object(Bucket=bucket, Key="keep", Body=b"replacement", ContentMD5=bad)
    assert s3.get_object(Bucket=bucket, Key="keep")["Body"].read() == b"original"


def test_conditional_get(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="c", Body=b"cond")["ETag"]
    mtime = s3.head_object(Bucket=bucket, Key="c")["LastModified"]
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag)["Body"].read() == b"cond"
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfMatch='"0000"')
    assert code(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfNoneMatch=etag)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket=bucket, Key="c", IfModifiedSince=mtime + dt.timedelta(seconds=5))
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert s3.get_object(Bucket=bucket, Key="c", IfModifiedSince=mtime - dt.timedelta(hours=1))["ETag"] == etag
    with pytest.raises(ClientError) as e:
        s3.get_object(Bucket=bucket, Key="c", IfUnmodifiedSince=mtime - dt.timedelta(hours=1))
    assert code(e) == ("PreconditionFailed", 412)
    # If-Match true wins over a failing If-Unmodified-Since (RFC 7232 order, as S3)
    assert s3.get_object(Bucket=bucket, Key="c", IfMatch=etag,
                         IfUnmodifiedSince=mtime - dt.timedelta(hours=1))["ETag"] == etag


def test_conditional_put(s3, bucket):
    s3.put_object(Bucket=bucket, Key="once", Body=b"1", IfNoneMatch="*")
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="once", Body=b"2", IfNoneMatch="*")
    assert code(e) == ("PreconditionFailed", 412)
    assert s3.get_object(Bucket=bucket, Key="once")["Body"].read() == b"1"


def test_copy_object(s3, bucket, gateway):
    src = s3.put_object(Bucket=bucket, Key="src/a", Body=b"copy me", ContentType="text/x-src",
                        Metadata={"m": "v"})["ETag"]
    other = "cp-" + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=other)
    r = s3.copy_object(Bucket=other, Key="dst/b", CopySource={"Bucket": bucket, "Key": "src/a"})
    assert r["CopyObjectResult"]["ETag"] == src
    h = s3.head_object(Bucket=other, Key="dst/b")
    assert h["ContentType"] == "text/x-src" and h["Metadata"] == {"m": "v"}
    s3.copy_object(Bucket=bucket, Key="src/a", CopySource=f"{bucket}/src/a", MetadataDirective="REPLACE",
                   ContentType="text/new", Metadata={"z": "1"})
    h = s3.head_object(Bucket=bucket, Key="src/a")
    assert h["ContentType"] == "text/new" and h["Metadata"] == {"z": "1"}
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="src/a", CopySource=f"{bucket}/src/a")
    assert code(e) == ("InvalidRequest", 400)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/src/a", CopySourceIfMatch='"nope"')
    assert code(e) == ("PreconditionFailed", 412)
    with pytest.raises(ClientError) as e:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/missing")
    assert code(e) == ("NoSuchKey", 404)


def test_delete_objects(s3, bucket, fs):
    keys = [f"d/{i}" for i in range(20)]
    for k in keys:
        s3.put_object(Bucket=bucket, Key=k, Body=b"1")
    r = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys + ["absent", "a/../b"]]})
    assert sorted(d["Key"] for d in r["Deleted"]) == sorted(keys + ["absent"])
    assert [(x["Key"], x["Code"]) for x in r["Errors"]] == [("a/../b", "InvalidObjectName")]
    assert not fs.exists(f"/{bucket}/d")
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert "Deleted" not in quiet
    with pytest.raises(ClientError) as e:
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": f"k{i}"} for i in range(1001)]})
    assert code(e) == ("MalformedXML", 400)


def test_interop_with_native_client(s3, bucket, fs):
    s3.put_object(Bucket=bucket, Key="from-s3/obj", Body=b"written over S3")
    assert fs.read_file(f"/{bucket}/from-s3/obj") == b"written over S3"
    fs.makedirs(f"/{bucket}/from-fs", exist_ok=True)
    fs.write_file(f"/{bucket}/from-fs/file.txt", b"written through the file system")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="from-fs/")
    assert [(o["Key"], o["Size"]) for o in listed["Contents"]] == [("from-fs/file.txt", 31)]
    got = s3.get_object(Bucket=bucket, Key="from-fs/file.txt")
    assert got["Body"].read() == b"written through the file system"
    assert got["ETag"] == listed["Contents"][0]["ETag"]
    # a file rewritten outside S3 no longer reports the ETag S3 stored for the old bytes
    old = s3.head_object(Bucket=bucket, Key="from-s3/obj")["ETag"]
    fs.write_file(f"/{bucket}/from-s3/obj", b"changed")
    assert s3.head_object(Bucket=bucket, Key="from-s3/obj")["ETag"] != old


def test_permissions_follow_the_mapped_user(gateway, s3, bucket, fs):
    bob = gateway.client(gateway.bob)
    s3.put_object(Bucket=bucket, Key="private", Body=b"alice's")
    assert fs.stat(f"/{bucket}/private").st_uid == gateway.alice.uid
    with pytest.raises(ClientError) as e:
        bob.put_object(Bucket=bucket, Key="intrusion", Body=b"x")
    assert code(e) == ("AccessDenied", 403)
    assert not fs.exists(f"/{bucket}/intrusion")
    with pytest.raises(ClientError) as e:
        bob.put_object(Bucket=bucket, Key="big-intrusion", Body=b"x" * (2 << 20))
    assert code(e) == ("AccessDenied", 403)
    with pytest.raises(ClientError) as e:
        bob.create_multipart_upload(Bucket=bucket, Key="mp-intrusion")
    assert code(e) == ("AccessDenied", 403)
    assert fs.listdir(f"/{bucket}/.s3-uploads") == []
    with pytest.raises(ClientError) as e:
        bob.delete_object(Bucket=bucket, Key="private")
    assert code(e) == ("AccessDenied", 403)
    assert bob.get_object(Bucket=bucket, Key="private")["Body"].read() == b"alice's"   # mode 0644
    fs.chmod(f"/{bucket}/private", 0o600)
    with pytest.raises(ClientError) as e:
        bob.get_object(Bucket=bucket, Key="private")
    assert code(e) == ("AccessDenied", 403)


def test_directory_marker_keys(s3, bucket, fs):
    s3.put_object(Bucket=bucket, Key="folder/", Body=b"")
    assert fs.isdir(f"/{bucket}/folder")
    assert s3.head_object(Bucket=bucket, Key="folder/")["ContentLength"] == 0
    with pytest.raises(ClientError) as e:
        s3.put_object(Bucket=bucket, Key="folder2/", Body=b"data")
    assert code(e) == ("InvalidObjectName", 400)
    s3.delete_object(Bucket=bucket, Key="folder/")
    assert not fs.exists(f"/{bucket}/folder")


@pytest.mark.parametrize("key", ["sp ace/+plus=eq&amp", "ü/ñ/日本", "q?uestion#hash%pct", "t~ilde!'()*,;:@$"])
def test_awkward_keys_roundtrip(s3, bucket, fs, key):
    s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    assert fs.read_file(f"/{bucket}/{key}") == key.encode()
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == [key]
    s3.copy_object(Bucket=bucket, Key=key + ".copy", CopySource={"Bucket": bucket, "Key": key})
    assert s3.get_object(Bucket=bucket, Key=key + ".copy")["Body"].read() == key.encode()


def test_aws_chunked_content_encoding_is_not_stored(gateway, bucket, s3):
    from s3_util import signed_request
    hdr = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5"}
    status, body, _ = signed_request(gateway.endpoint, "PUT", f"/{bucket}/enc", gateway.alice.access,
                                     gateway.alice.secret, body=b"hello", headers=hdr,
                                     payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    assert status == 200, body
    head = s3.head_object(Bucket=bucket, Key="enc")
    assert "ContentEncoding" not in head and head["ContentLength"] == 5


def test_object_requests_on_a_missing_bucket(s3, fs):
    for call in (lambda: s3.put_object(Bucket="no-such-bucket-x", Key="k", Body=b"1"),
                 lambda: s3.get_object(Bucket="no-such-bucket-x", Key="k"),
                 lambda: s3.create_multipart_upload(Bucket="no-such-bucket-x", Key="k")):
        with pytest.raises(ClientError) as e:
            call()
        assert code(e) == ("NoSuchBucket", 404)
    with pytest.raises(ClientError) as e:
        s3.head_object(Bucket="no-such-bucket-x", Key="k")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert not fs.exists("/no-such-bucket-x")


def test_interrupted_put_leaves_nothing(gateway, bucket, s3, fs):
    import hashlib as _h
    import socket
    import time
    from urllib.parse import urlsplit

    import s3_util
    s3.put_object(Bucket=bucket, Key="victim", Body=b"old")
    host = urlsplit(gateway.endpoint).netloc
    amz = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    scope = f"{amz[:8]}/us-east-1/s3/aws4_request"
    h = {"host": host, "x-amz-date": amz, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": "1048576"}
    signed = sorted(h)
    creq = "\n".join(["PUT", f"/{bucket}/victim", "", "".join(f"{k}:{h[k]}\n" for k in signed), ";".join(signed),
                      "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, _h.sha256(creq.encode()).hexdigest()])
    sig = s3_util._sign(s3_util._key(gateway.alice.secret, amz[:8]), sts)
    h["authorization"] = (f"AWS4-HMAC-SHA256 Credential={gateway.alice.access}/{scope}, "
                          f"SignedHeaders={';'.join(signed)}, Signature={sig}")
    def puts_done() -> float:       # PutObject requests finished (any status), cleanup included
        import re
        import urllib.request
        text = urllib.request.urlopen(gateway.metrics, timeout=30).read().decode()
        return sum(float(v) for v in re.findall(r'^threefs_s3_requests_total\{op="PutObject",[^}]*\} (\S+)$', text,
                                                re.MULTILINE))

    before = puts_done()
    with socket.create_connection(host.split(":")) as sock:
        head = f"PUT /{bucket}/victim HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        sock.sendall(head.encode() + b"x" * 100_000)          # a tenth of the declared body, then hang up
    deadline = time.monotonic() + 20
    while puts_done() == before and time.monotonic() < deadline:
        time.sleep(0.05)            # polling for the interrupted request to end (it may not have begun yet)
    assert fs.listdir(f"/{bucket}/.s3-uploads") == []
    assert s3.get_object(Bucket=bucket, Key="victim")["Body"].read() == b"old"
