"""Shared fixtures: a real dev cluster (processes on loopback) in a temporary directory."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from threefs.cli.devcluster import ClusterSpec, DevCluster


def start_cluster(root: Path, **spec) -> DevCluster:
    """Start a dev cluster with short intervals suited to tests; the caller stops it."""
    params = dict(base_port=0, storage_nodes=3, targets_per_node=2, replicas=3, chunk_size=64 << 10,
                  heartbeat_interval=0.2, gc_interval=0.1)
    params.update(spec)
    dc = DevCluster(root, ClusterSpec(**params))
    try:
        dc.up(timeout=60)
    except BaseException:
        dc.down()
        raise
    return dc


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> DevCluster:
    """One cluster shared by the integration tests that don't break it (small chunks: 64 KiB)."""
    dc = start_cluster(tmp_path_factory.mktemp("cluster"))
    os.environ["THREEFS_MGMTD"] = dc.mgmtd_address
    yield dc
    dc.down()


@pytest.fixture(scope="session")
def client(cluster):
    from threefs.client.fs import Client
    c = Client(cluster.mgmtd_address)
    yield c
    c.close()


@pytest.fixture
def workdir(client, request) -> str:
    """A fresh directory per test."""
    path = "/t-" + request.node.name.replace("[", "-").replace("]", "").replace("/", "_")[:80]
    client.makedirs(path, exist_ok=True)
    return path
