"""Other clients (aws CLI, s3fs), unsupported features answering NotImplemented, and metrics."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request

import pytest
from botocore.exceptions import ClientError


def aws(gateway, tmp_path, *args: str) -> subprocess.CompletedProcess:
    cfg = tmp_path / "aws-config"
    cfg.write_text("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n"
                   "  multipart_threshold = 5MB\n  multipart_chunksize = 5MB\n")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": gateway.alice.access, "AWS_SECRET_ACCESS_KEY": gateway.alice.secret,
           "AWS_CONFIG_FILE": str(cfg), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    r = subprocess.run([sys.executable, "-m", "awscli", "--endpoint-url", gateway.endpoint, *args],
                       capture_output=True, env=env, timeout=120, check=False)
    assert r.returncode == 0, r.stderr.decode()
    return r


def test_aws_cli(gateway, tmp_path, fs):
    pytest.importorskip("awscli")
    aws(gateway, tmp_path, "s3", "mb", "s3://cli-bucket")
    big = os.urandom(11 << 20)                                   # over the threshold: a 3-part upload
    (tmp_path / "big.bin").write_bytes(big)
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_bytes(b"one")
    (src / "sub" / "two.txt").write_bytes(b"two")
    aws(gateway, tmp_path, "s3", "cp", str(tmp_path / "big.bin"), "s3://cli-bucket/big.bin")
    assert fs.read_file("/cli-bucket/big.bin") == big
    head = aws(gateway, tmp_path, "s3api", "head-object", "--bucket", "cli-bucket", "--key", "big.bin")
    assert b'-3\\"' in head.stdout                                # multipart ETag md5-3
    aws(gateway, tmp_path, "s3", "sync", str(src), "s3://cli-bucket/tree")
    ls = aws(gateway, tmp_path, "s3", "ls", "--recursive", "s3://cli-bucket/").stdout.decode()
    assert "tree/one.txt" in ls and "tree/sub/two.txt" in ls and "big.bin" in ls
    aws(gateway, tmp_path, "s3", "cp", "s3://cli-bucket/big.bin", str(tmp_path / "back.bin"))
    assert hashlib.md5((tmp_path / "back.bin").read_bytes()).digest() == hashlib.md5(big).digest()
    aws(gateway, tmp_path, "s3", "rm", "--recursive", "s3://cli-bucket/")
    aws(gateway, tmp_path, "s3", "rb", "s3://cli-bucket")
    assert not fs.exists("/cli-bucket")


def test_s3fs(gateway, fs):
    s3fs = pytest.importorskip("s3fs")
    f = s3fs.S3FileSystem(key=gateway.alice.access, secret=gateway.alice.secret, skip_instance_cache=True,
                          use_listings_cache=False, client_kwargs={"endpoint_url": gateway.endpoint,
                                                                   "region_name": "us-east-1"},
                          config_kwargs={"s3": {"addressing_style": "path"}})
    f.mkdir("s3fs-bucket")
    f.pipe("s3fs-bucket/dir/a.txt", b"alpha")
    data = os.urandom(6 << 20)
    with f.open("s3fs-bucket/dir/big.bin", "wb", block_size=5 << 20) as out:   # multipart through s3fs
        out.write(data)
    assert fs.read_file("/s3fs-bucket/dir/big.bin") == data
    assert f.cat("s3fs-bucket/dir/a.txt") == b"alpha"
    assert sorted(f.ls("s3fs-bucket/dir", detail=False)) == ["s3fs-bucket/dir/a.txt", "s3fs-bucket/dir/big.bin"]
    assert f.info("s3fs-bucket/dir/a.txt")["size"] == 5
    with f.open("s3fs-bucket/dir/big.bin", "rb") as src:
        src.seek(1 << 20)
        assert src.read(1000) == data[1 << 20:(1 << 20) + 1000]
    assert f.find("s3fs-bucket") == ["s3fs-bucket/dir/a.txt", "s3fs-bucket/dir/big.bin"]
    f.rm("s3fs-bucket/dir", recursive=True)
    assert not fs.exists("/s3fs-bucket/dir")


@pytest.mark.parametrize("call", [
    lambda s3, b: s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"}),
    lambda s3, b: s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": []}),
    lambda s3, b: s3.put_object_tagging(Bucket=b, Key="k", Tagging={"TagSet": []}),
    lambda s3, b: s3.put_object_lock_configuration(Bucket=b, ObjectLockConfiguration={}),
    lambda s3, b: s3.list_object_versions(Bucket=b),
    lambda s3, b: s3.put_object_acl(Bucket=b, Key="k", ACL="public-read"),
    lambda s3, b: s3.put_object(Bucket=b, Key="sse", Body=b"1", ServerSideEncryption="AES256"),
    lambda s3, b: s3.put_bucket_policy(Bucket=b, Policy="{}"),
], ids=["versioning", "lifecycle", "tagging", "object-lock", "versions", "object-acl", "sse", "policy"])
def test_unsupported_features_answer_not_implemented(s3, bucket, fs, call):
    with pytest.raises(ClientError) as e:
        call(s3, bucket)
    assert e.value.response["Error"]["Code"] == "NotImplemented"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert not fs.exists(f"/{bucket}/sse")
    assert s3.get_bucket_versioning(Bucket=bucket).get("Status") is None      # nothing was silently enabled


def test_metrics_per_operation(gateway, s3, bucket):
    s3.put_object(Bucket=bucket, Key="m", Body=b"12345")
    s3.get_object(Bucket=bucket, Key="m")["Body"].read()
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="absent")
    text = urllib.request.urlopen(gateway.metrics, timeout=30).read().decode()
    assert 'threefs_s3_requests_total{op="PutObject",status="200"}' in text
    assert 'threefs_s3_requests_total{op="GetObject",status="404"}' in text
    assert 'threefs_s3_latency_seconds_count{op="GetObject"}' in text
    assert 'threefs_s3_bytes_total{direction="in",op="PutObject"}' in text


def test_s3_key_add_cli_errors(gateway):
    from s3_util import cli
    m, tok = gateway.mgmtd, gateway.admin_token
    missing = cli("admin", "s3-key-add", "nobody-here", "--mgmtd", m, "--token", tok)
    assert missing.returncode != 0 and "no user named" in missing.stderr
    no_uid = cli("admin", "s3-key-add", "4242", "--mgmtd", m, "--token", tok)
    assert no_uid.returncode != 0 and "does not exist" in no_uid.stderr
    dup = cli("admin", "s3-key-add", "bob", "--access-key", gateway.bob.access, "--mgmtd", m, "--token", tok)
    assert dup.returncode != 0 and "exists" in dup.stderr
    denied = cli("admin", "s3-key-add", "bob", "--mgmtd", m, "--token", "not-an-admin-token")
    assert denied.returncode != 0
    made = cli("admin", "s3-key-add", "5002", "--access-key", "BOBSECOND01", "--secret-key", "second-secret",
               "--mgmtd", m, "--token", tok)
    assert made.returncode == 0 and made.stdout.split() == ["BOBSECOND01", "second-secret"]
