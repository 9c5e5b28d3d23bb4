"""`threefs up` as `make up` runs it: FUSE mount, S3 and WebHDFS endpoints over one namespace."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/fuse"), reason="no /dev/fuse on this machine")


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "threefs", *args], capture_output=True, text=True, timeout=timeout)


def test_up_serves_one_namespace_through_mount_s3_and_webhdfs(tmp_path):
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    data = str(tmp_path / "dc")
    r = _cli("up", "--data-dir", data, "--base-port", "0", "--targets-per-node", "1", "--json")
    assert r.returncode == 0, r.stderr
    try:
        st = json.loads(r.stdout)
        assert {p["role"] for p in st["processes"]} == {"mgmtd", "storage", "meta", "s3", "hdfs", "fuse"}
        assert all(p["pid"] for p in st["processes"])
        mnt = st["mount"]
        assert os.path.ismount(mnt)
        assert all(p["metrics"] for p in st["processes"] if p["role"] != "fuse")
        with urllib.request.urlopen(next(p["metrics"] for p in st["processes"] if p["role"] == "meta"), timeout=10) as m:
            assert b"threefs_rpc_requests_total" in m.read()

        os.makedirs(f"{mnt}/bkt/sub")
        with open(f"{mnt}/bkt/sub/from-fuse.txt", "wb") as f:
            f.write(b"written through the mount")
        s3 = boto3.client("s3", endpoint_url=st["s3"], aws_access_key_id=st["s3_access_key"],
                          aws_secret_access_key=st["s3_secret_key"], region_name="us-east-1",
                          config=Config(signature_version="s3v4"))
        assert s3.get_object(Bucket="bkt", Key="sub/from-fuse.txt")["Body"].read() == b"written through the mount"
        s3.put_object(Bucket="bkt", Key="from-s3.bin", Body=b"\x00written over s3\xff")
        with urllib.request.urlopen(f"{st['webhdfs']}/bkt/from-s3.bin?op=OPEN&user.name=root", timeout=10) as h:
            assert h.read() == b"\x00written over s3\xff"
        with open(f"{mnt}/bkt/from-s3.bin", "rb") as f:
            assert f.read() == b"\x00written over s3\xff"

        # WebHDFS CREATE (two-step: 307 to the gateway itself, then the data) read through mount and S3
        create = f"{st['webhdfs']}/bkt/from-hdfs.txt?op=CREATE&user.name=root&overwrite=true"
        req = urllib.request.Request(create, method="PUT")
        try:
            urllib.request.urlopen(req, timeout=10)
            raise AssertionError("CREATE must redirect")
        except urllib.error.HTTPError as e:
            assert e.code == 307
            location = e.headers["Location"]
        put = urllib.request.Request(location, data=b"written over webhdfs", method="PUT")
        with urllib.request.urlopen(put, timeout=10) as created:
            assert created.status == 201
        with open(f"{mnt}/bkt/from-hdfs.txt", "rb") as f:
            assert f.read() == b"written over webhdfs"
        assert s3.get_object(Bucket="bkt", Key="from-hdfs.txt")["Body"].read() == b"written over webhdfs"

        again = _cli("up", "--data-dir", data, "--json")            # idempotent: same processes
        assert again.returncode == 0, again.stderr
        assert [p["pid"] for p in json.loads(again.stdout)["processes"]] == [p["pid"] for p in st["processes"]]
    finally:
        down = _cli("down", "--data-dir", data)
    assert down.returncode == 0, down.stderr
    assert not os.path.ismount(mnt)
    st = json.loads(_cli("status", "--data-dir", data, "--json").stdout)
    assert not any(p["pid"] for p in st["processes"])
