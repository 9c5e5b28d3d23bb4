"""Fixtures: a small dev cluster with users root/alice/bob and a `threefs hdfs serve` process in front of it."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from hdfs_util import ALICE, BOB, Gateway, start_gateway

from threefs.cli.devcluster import ClusterSpec, DevCluster
from threefs.client.fs import Client
from threefs.mgmtd.users import UsersClient
from threefs.proto import common_pb2 as cpb


def start_small_cluster(root: Path) -> DevCluster:
    """Two storage nodes, 2-replica chains, 64 KiB chunks (as tests/conftest.py's start_cluster, smaller)."""
    dc = DevCluster(root, ClusterSpec(base_port=0, storage_nodes=2, targets_per_node=2, replicas=2,
                                      chunk_size=64 << 10, heartbeat_interval=0.2, gc_interval=0.1))
    try:
        dc.up(timeout=60)
    except BaseException:
        dc.down()
        raise
    return dc


@pytest.fixture(scope="session")
def hdfs_cluster(tmp_path_factory):
    dc = start_small_cluster(tmp_path_factory.mktemp("hdfs-cluster"))
    yield dc
    dc.down()


@pytest.fixture(scope="session")
def hdfs_users(hdfs_cluster) -> dict[str, str]:
    """Users in mgmtd's table: name -> token (root is an admin and may act as any uid)."""
    async def add() -> dict[str, str]:
        uc = UsersClient(hdfs_cluster.mgmtd_address)
        try:
            root = await uc.add_user(0, "root", root=True, admin=True)
            out = {"root": root.token}
            for uid, name in ((ALICE, "alice"), (BOB, "bob")):
                out[name] = (await uc.add_user(uid, name, admin_token=root.token)).token
            return out
        finally:
            await uc.close()

    return asyncio.run(add())


@pytest.fixture(scope="session")
def gateway(hdfs_cluster, hdfs_users) -> Iterator[Gateway]:
    gw = start_gateway(hdfs_cluster.mgmtd_address, "--token", hdfs_users["root"])
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def root_client(hdfs_cluster) -> Iterator[Client]:
    """The native Python client acting as uid 0."""
    c = Client(hdfs_cluster.mgmtd_address, user=cpb.UserInfo(uid=0, gid=0))
    yield c
    c.close()


@pytest.fixture
def hdir(root_client, request) -> str:
    """A fresh directory per test, owned by alice."""
    path = "/h/" + request.node.name.replace("[", "-").replace("]", "").replace("/", "_")[:80]
    root_client.makedirs(path, 0o755, exist_ok=True)
    root_client.chmod(path, 0o755)
    root_client.chown(path, ALICE, ALICE)
    return path
