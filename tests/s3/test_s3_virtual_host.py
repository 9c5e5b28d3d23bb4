"""Virtual-hosted-style addressing (Host: BUCKET.<--domain>) next to path style, on loopback.

No DNS is needed: the test resolves *.s3.localtest to 127.0.0.1 inside this process (urllib3 calls
socket.getaddrinfo at connect time); the gateway sees the Host header boto3 sends and signs."""
from __future__ import annotations

import socket
import uuid
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from s3_util import VHOST_DOMAIN


@pytest.fixture
def loopback_domain(monkeypatch):
    """Resolve the gateway's domain and every name below it to 127.0.0.1."""
    real = socket.getaddrinfo

    def fake(host, *args, **kwargs):
        if isinstance(host, str) and (host == VHOST_DOMAIN or host.endswith("." + VHOST_DOMAIN)):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.fixture
def vs3(gateway, loopback_domain):
    """A boto3 client addressing buckets as BUCKET.s3.localtest:PORT."""
    port = urlsplit(gateway.endpoint).port
    return boto3.client("s3", endpoint_url=f"http://{VHOST_DOMAIN}:{port}", aws_access_key_id=gateway.alice.access,
                        aws_secret_access_key=gateway.alice.secret, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "virtual"}, signature_version="s3v4",
                                      retries={"max_attempts": 1}))


def test_virtual_host_roundtrip(vs3, s3, fs):
    bucket = "vh-" + uuid.uuid4().hex[:10]
    events: list[str] = []
    vs3.meta.events.register("before-send.s3", lambda request, **kw: events.append(request.url))
    vs3.create_bucket(Bucket=bucket)
    vs3.put_object(Bucket=bucket, Key="dir/a b.txt", Body=b"hello")
    assert all(urlsplit(u).hostname == f"{bucket}.{VHOST_DOMAIN}" for u in events)
    assert urlsplit(events[-1]).path == "/dir/a%20b.txt"
    assert fs.read_file(f"/{bucket}/dir/a b.txt") == b"hello"
    assert vs3.get_object(Bucket=bucket, Key="dir/a b.txt")["Body"].read() == b"hello"
    assert [o["Key"] for o in vs3.list_objects_v2(Bucket=bucket)["Contents"]] == ["dir/a b.txt"]
    assert s3.get_object(Bucket=bucket, Key="dir/a b.txt")["Body"].read() == b"hello"     # path style still works
    assert bucket in [b["Name"] for b in vs3.list_buckets()["Buckets"]]
    up = vs3.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    e = vs3.upload_part(Bucket=bucket, Key="mp", UploadId=up, PartNumber=1, Body=b"xyz")["ETag"]
    vs3.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=up,
                                  MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]})
    assert vs3.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"xyz"
    with pytest.raises(ClientError) as err:
        vs3.head_bucket(Bucket="nobucket-" + uuid.uuid4().hex[:8])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
