"""Meta before its first routing fetch (just restarted, or mgmtd unreachable): operations that need a chain
table fetch routing info on demand, or fail with UNAVAILABLE, which clients retry; never with a false
"chain table does not exist" (EINVAL to an application's fsync after a meta restart)."""
from __future__ import annotations

import os
import socket

import pytest

from meta_util import CHUNK, InProcCluster
from threefs.common.errors import Code, FSError
from threefs.meta.length import precise_length
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient
from threefs.storage.client import StorageClient


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_precise_length_before_the_first_routing_fetch(meta_cluster: InProcCluster, fs, wd) -> None:
    data = os.urandom(3 * CHUNK + 5)
    with fs.open(f"{wd}/f", "wb") as f:
        f.write(data)
    inode = fs.stat(f"{wd}/f").inode

    async def fresh_meta_view() -> tuple[int, int]:
        mgmtd = MgmtdClient(meta_cluster.mgmtd_address)      # as a meta server that has just started
        rpc = RpcClient()
        try:
            assert mgmtd.routing.version == 0
            length = await precise_length(mgmtd, StorageClient(mgmtd, rpc), inode)
            return length, mgmtd.routing.version
        finally:
            await rpc.close()
            await mgmtd.close()

    length, version = meta_cluster.call(fresh_meta_view())
    assert length == len(data)
    assert version > 0


def test_chain_tables_without_a_reachable_mgmtd_are_unavailable_not_missing(meta_cluster: InProcCluster) -> None:
    async def lookups() -> tuple[FSError, FSError, int]:
        dead = MgmtdClient(f"127.0.0.1:{_closed_port()}", timeout=2.0)
        live = MgmtdClient(meta_cluster.mgmtd_address)
        try:
            with pytest.raises(FSError) as unreachable:
                await dead.chain_table(1)
            with pytest.raises(FSError) as missing:
                await live.chain_table(999)                   # reachable mgmtd, no such table: a real EINVAL
            return unreachable.value, missing.value, len((await live.chain_table(1)).chain_ids)
        finally:
            await dead.close()
            await live.close()

    unreachable, missing, chains = meta_cluster.call(lookups())
    assert unreachable.code == Code.UNAVAILABLE and "no routing info from mgmtd yet" in str(unreachable)
    assert missing.code == Code.INVALID_ARGUMENT and "chain table 999 does not exist" in str(missing)
    assert chains > 0


def test_a_client_without_the_files_chain_table_fetches_it(meta_cluster: InProcCluster, wd) -> None:
    c = meta_cluster.client(uid=0)
    data = os.urandom(2 * CHUNK + 7)
    with c.open(f"{wd}/g", "wb") as f:
        f.write(data)
    # Each handle below meets routing info without the file's chain table (as a client whose last poll
    # predates a table uploaded since) at its first I/O.
    with c.open(f"{wd}/g", "rb") as f:
        c.aio.mgmtd.routing = Routing()
        assert f.read() == data
    with c.open(f"{wd}/g", "r+b") as f:
        c.aio.mgmtd.routing = Routing()
        f.write(b"new")
        f.flush()
    assert c.aio.mgmtd.routing.version > 0
    with c.open(f"{wd}/g", "rb") as f:
        assert f.read() == b"new" + data[3:]
