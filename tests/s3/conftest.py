"""Fixtures for the S3 gateway: its own dev cluster (it bootstraps an admin), users with access keys,
and `threefs s3 serve` as a real subprocess."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from threefs.mgmtd.users import UsersClient
from threefs.proto import common_pb2 as cpb

boto3 = pytest.importorskip("boto3")
from botocore.config import Config
from s3_util import MIN_PART, VHOST_DOMAIN, cli


def start_cluster(root: Path, **spec):
    """tests/conftest.py's start_cluster, loaded by path (several conftest.py files share the name)."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec_ = importlib.util.spec_from_file_location("_threefs_tests_root_conftest_s3", path)
    module = importlib.util.module_from_spec(spec_)
    spec_.loader.exec_module(module)
    return module.start_cluster(root, **spec)


@dataclass
class Key:
    access: str
    secret: str
    uid: int


@dataclass
class Gateway:
    endpoint: str
    metrics: str
    proc: subprocess.Popen
    mgmtd: str
    admin_token: str
    alice: Key
    bob: Key

    def client(self, key: Key | None = None, **cfg):
        """A boto3 S3 client (path-style) signing with `key` (alice by default)."""
        key = key or self.alice
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=key.access,
                            aws_secret_access_key=key.secret, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}, **cfg))


def _users(address: str, fn):
    async def body():
        c = UsersClient(address)
        try:
            return await fn(c)
        finally:
            await c.close()
    return asyncio.run(body())


@pytest.fixture(scope="session")
def s3_cluster(tmp_path_factory):
    """A small cluster of its own: the gateway needs an admin token and this test bootstraps the admin."""
    dc = start_cluster(tmp_path_factory.mktemp("s3cluster"), storage_nodes=3, targets_per_node=1)
    yield dc
    dc.down()


@pytest.fixture(scope="session")
def gateway(s3_cluster) -> Gateway:
    m = s3_cluster.mgmtd_address
    admin = _users(m, lambda c: c.add_user(0, "root", root=True, admin=True))
    tok = admin.token
    _users(m, lambda c: c.add_user(5001, "alice", admin_token=tok))
    _users(m, lambda c: c.add_user(5002, "bob", admin_token=tok))
    out = cli("admin", "s3-key-add", "alice", "--json", "--mgmtd", m, "--token", tok)
    assert out.returncode == 0, out.stderr
    a = json.loads(out.stdout)
    alice = Key(a["access_key"], a["secret_key"], a["uid"])
    assert alice.uid == 5001
    b = _users(m, lambda c: c.add_s3_key(5002, "BOBKEY0001", "bob-secret-0001", admin_token=tok))
    bob = Key(b.access_key, b.secret_key, b.uid)
    proc = subprocess.Popen([sys.executable, "-m", "threefs", "s3", "serve", "--mgmtd", m, "--port", "0",
                             "--token", tok, "--min-part-size", str(MIN_PART), "--metrics-port", "0",
                             "--domain", VHOST_DOMAIN,
                             "--log-level", "WARNING"],
                            stdout=subprocess.PIPE, text=True)
    metrics = endpoint = ""
    for line in proc.stdout:
        if line.startswith("METRICS"):
            metrics = line.split()[2]
        if line.startswith("READY"):
            endpoint = "http://" + line.split()[2]
            break
    assert endpoint, "gateway did not start"
    yield Gateway(endpoint, metrics, proc, m, tok, alice, bob)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def fs(s3_cluster):
    """A native client (root) on the same cluster: the other side of the interop checks."""
    from threefs.client.fs import Client
    c = Client(s3_cluster.mgmtd_address, user=cpb.UserInfo(uid=0, gid=0))
    yield c
    c.close()


@pytest.fixture
def s3(gateway):
    return gateway.client()


@pytest.fixture
def bucket(s3) -> str:
    """A fresh bucket owned by alice."""
    name = "b-" + uuid.uuid4().hex[:12]
    s3.create_bucket(Bucket=name)
    return name
