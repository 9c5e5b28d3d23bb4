"""Fixtures of the metadata suite: in-process clusters over each KV engine, clients, per-test dirs."""
from __future__ import annotations

import pytest

from meta_util import ENGINES, TEST_CONFIG, InProcCluster


@pytest.fixture(scope="session", params=sorted(ENGINES))
def meta_cluster(request, tmp_path_factory) -> InProcCluster:
    """mgmtd + storage + meta in this process, meta's KV on each engine in turn."""
    root = tmp_path_factory.mktemp(f"meta-{request.param}")
    c = InProcCluster(root, ENGINES[request.param](root), config=TEST_CONFIG).start()
    c.engine = request.param
    yield c
    c.stop()


@pytest.fixture(scope="session")
def fs(meta_cluster):
    """A root client of the in-process cluster."""
    return meta_cluster.client(uid=0)


@pytest.fixture
def wd(fs, request) -> str:
    """A fresh world-writable directory per test."""
    path = "/" + request.node.name.replace("[", "-").replace("]", "").replace("/", "_")[:120]
    fs.mkdir(path, 0o777)
    fs.chmod(path, 0o777)
    return path
