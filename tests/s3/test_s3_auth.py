"""SigV4 in headers and presigned URLs, payload modes, and anonymous access."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from s3_util import presigned_url, signed_request


def code(e: pytest.ExceptionInfo) -> tuple[str, int]:
    r = e.value.response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"]


def _client(gateway, access: str, secret: str):
    return boto3.client("s3", endpoint_url=gateway.endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"},
                                                               retries={"max_attempts": 1}))


def test_unknown_access_key(gateway, bucket):
    with pytest.raises(ClientError) as e:
        _client(gateway, "NOSUCHKEY123", "whatever-secret").list_objects_v2(Bucket=bucket)
    assert code(e) == ("InvalidAccessKeyId", 403)


def test_wrong_secret(gateway, bucket, fs):
    with pytest.raises(ClientError) as e:
        _client(gateway, gateway.alice.access, "wrong-secret").put_object(Bucket=bucket, Key="k", Body=b"1")
    assert code(e) == ("SignatureDoesNotMatch", 403)
    assert not fs.exists(f"/{bucket}/k")


def test_clock_skew(gateway, bucket):
    old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    status, body, _ = signed_request(gateway.endpoint, "GET", f"/{bucket}", gateway.alice.access,
                                     gateway.alice.secret, when=old)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body


def test_tampered_payload_hash(gateway, bucket, fs):
    status, body, _ = signed_request(gateway.endpoint, "PUT", f"/{bucket}/t", gateway.alice.access,
                                     gateway.alice.secret, body=b"real body",
                                     payload=hashlib.sha256(b"other body").hexdigest())
    assert status == 400 and b"XAmzContentSHA256Mismatch" in body
    assert not fs.exists(f"/{bucket}/t")


def test_unsigned_payload(gateway, bucket, s3):
    status, _, headers = signed_request(gateway.endpoint, "PUT", f"/{bucket}/unsigned", gateway.alice.access,
                                        gateway.alice.secret, body=b"no payload hash", payload="UNSIGNED-PAYLOAD")
    assert status == 200 and headers["etag"] == f'"{hashlib.md5(b"no payload hash").hexdigest()}"'
    assert s3.get_object(Bucket=bucket, Key="unsigned")["Body"].read() == b"no payload hash"


def test_aws_chunked_streaming(gateway, bucket, s3, fs):
    data = os.urandom(300_000)
    hdr = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    status, body, _ = signed_request(gateway.endpoint, "PUT", f"/{bucket}/chunked", gateway.alice.access,
                                     gateway.alice.secret, body=data, headers=hdr,
                                     payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    assert status == 200, body
    assert s3.get_object(Bucket=bucket, Key="chunked")["Body"].read() == data
    status, body, _ = signed_request(gateway.endpoint, "PUT", f"/{bucket}/forged", gateway.alice.access,
                                     gateway.alice.secret, body=data, headers=hdr,
                                     payload="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", corrupt=True)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert not fs.exists(f"/{bucket}/forged")


def test_presigned_get_and_put(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="shared", Body=b"presigned content")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "shared"}, ExpiresIn=300)
    assert urllib.request.urlopen(url, timeout=30).read() == b"presigned content"
    put = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "uploaded"}, ExpiresIn=300)
    req = urllib.request.Request(put, data=b"via presigned put", method="PUT")
    assert urllib.request.urlopen(req, timeout=30).status == 200
    assert s3.get_object(Bucket=bucket, Key="uploaded")["Body"].read() == b"via presigned put"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"), timeout=30)
    assert e.value.code == 403


def test_signature_v2_is_refused_not_anonymous(gateway, bucket):
    url = boto3.client("s3", endpoint_url=gateway.endpoint, aws_access_key_id=gateway.alice.access,
                       aws_secret_access_key=gateway.alice.secret, region_name="us-east-1",
                       config=Config(signature_version="s3", s3={"addressing_style": "path"})
                       ).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "k"})
    assert "Signature=" in url and "X-Amz-" not in url
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    assert e.value.code == 400 and b"signature version 2" in e.value.read()


def test_expired_presign(gateway, bucket, s3):
    s3.put_object(Bucket=bucket, Key="old", Body=b"1")
    made = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    url = presigned_url(gateway.endpoint, "GET", f"/{bucket}/old", gateway.alice.access, gateway.alice.secret,
                        made, 3600)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    assert e.value.code == 403 and b"expired" in e.value.read()
    fresh = presigned_url(gateway.endpoint, "GET", f"/{bucket}/old", gateway.alice.access, gateway.alice.secret,
                          made, 3 * 3600)
    assert urllib.request.urlopen(fresh, timeout=30).read() == b"1"


def test_anonymous_refused_unless_public_read(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="doc", Body=b"public?")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{gateway.endpoint}/{bucket}/doc", timeout=30)
    assert e.value.code == 403 and b"AccessDenied" in e.value.read()
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    assert urllib.request.urlopen(f"{gateway.endpoint}/{bucket}/doc", timeout=30).read() == b"public?"
    listing = urllib.request.urlopen(f"{gateway.endpoint}/{bucket}?list-type=2", timeout=30).read()
    assert b"<Key>doc</Key>" in listing
    req = urllib.request.Request(f"{gateway.endpoint}/{bucket}/anon", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 403
    grants = s3.get_bucket_acl(Bucket=bucket)["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{gateway.endpoint}/{bucket}/doc", timeout=30)
    assert e.value.code == 403


def test_public_read_bucket_created_with_acl(gateway, s3):
    s3.create_bucket(Bucket="pub-bucket-acl", ACL="public-read")
    s3.put_object(Bucket="pub-bucket-acl", Key="a", Body=b"open")
    assert urllib.request.urlopen(f"{gateway.endpoint}/pub-bucket-acl/a", timeout=30).read() == b"open"


@pytest.mark.parametrize("good", [True, False])
def test_unsigned_trailer_checksum(gateway, bucket, s3, fs, good):
    data = os.urandom(100_000)
    _put_with_crc32_trailer(gateway, bucket, s3, fs, data, _crc32_b64(data if good else b"other"), 60_000, good)


def _put_with_crc32_trailer(gateway, bucket, s3, fs, data: bytes, crc: str, piece: int, good: bool) -> None:
    """PUT `data` aws-chunked in `piece`-byte chunks with `crc` as its trailing x-amz-checksum-crc32:
    stored when `good`, refused with BadDigest (and nothing stored) otherwise."""
    body = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (data[i:i + piece]
                                                                         for i in range(0, len(data), piece)))
    body += f"0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n".encode()
    hdr = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data)),
           "x-amz-trailer": "x-amz-checksum-crc32"}
    status, rsp, _ = signed_request(gateway.endpoint, "PUT", f"/{bucket}/trailer", gateway.alice.access,
                                    gateway.alice.secret, body=body, headers=hdr,
                                    payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    if good:
        assert status == 200, rsp
        assert s3.get_object(Bucket=bucket, Key="trailer")["Body"].read() == data
    else:
        assert status == 400 and b"BadDigest" in rsp
        assert not fs.exists(f"/{bucket}/trailer")


# Bodies of several gateway blocks (4 MiB), hashed on worker threads while the next block arrives: a bad
# digest of any kind must still fail with its S3 error and leave neither the object nor a temporary.
BIG = (9 << 20) + 12345


def _crc32_b64(data: bytes) -> str:
    import base64
    import zlib
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


@pytest.mark.parametrize("bad", [None, "sha256", "md5", "crc32"])
def test_large_body_digests(gateway, bucket, s3, fs, bad):
    import base64
    data = os.urandom(BIG)
    other = data[:-1] + bytes([data[-1] ^ 1])          # differs in the last byte only (the last, short block)
    hdr = {"content-md5": base64.b64encode(hashlib.md5(other if bad == "md5" else data).digest()).decode(),
           "x-amz-checksum-crc32": _crc32_b64(other if bad == "crc32" else data)}
    status, rsp, headers = signed_request(gateway.endpoint, "PUT", f"/{bucket}/big", gateway.alice.access,
                                          gateway.alice.secret, body=data, headers=hdr,
                                          payload=hashlib.sha256(other if bad == "sha256" else data).hexdigest())
    if bad is None:
        assert status == 200, rsp
        assert headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        got = s3.get_object(Bucket=bucket, Key="big")
        assert got["ETag"] == headers["etag"] and got["Body"].read() == data
    else:
        want = "XAmzContentSHA256Mismatch" if bad == "sha256" else "BadDigest"
        assert status == 400 and f"<Code>{want}</Code>".encode() in rsp, rsp
        assert not fs.exists(f"/{bucket}/big")
    assert [n for n in fs.listdir(f"/{bucket}/.s3-uploads")] == []


@pytest.mark.parametrize("good", [True, False])
def test_large_body_trailer_checksum(gateway, bucket, s3, fs, good):
    data = os.urandom(BIG)
    _put_with_crc32_trailer(gateway, bucket, s3, fs, data, _crc32_b64(data if good else data[:-1] + b"\0"),
                            (1 << 20) + 7, good)


def test_undeclared_trailer_checksum_is_refused(gateway, bucket, fs):
    data = os.urandom(100_000)
    body = f"{len(data):x}\r\n".encode() + data + b"\r\n" + \
        f"0\r\nx-amz-checksum-crc32:{_crc32_b64(data)}\r\n\r\n".encode()
    hdr = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
    status, rsp, _ = signed_request(gateway.endpoint, "PUT", f"/{bucket}/undeclared", gateway.alice.access,
                                    gateway.alice.secret, body=body, headers=hdr,
                                    payload="STREAMING-UNSIGNED-PAYLOAD-TRAILER")
    assert status == 400 and b"InvalidRequest" in rsp, rsp
    assert not fs.exists(f"/{bucket}/undeclared")
