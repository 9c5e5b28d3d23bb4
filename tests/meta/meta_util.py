"""An in-process cluster for the metadata suite: a real MgmtdServer, one StorageNode (chains of one
replica) and a MetaServer on one event loop in a background thread, talking over real sockets.

Tests use ordinary (sync) `Client`s against it and reach into the servers through `call()`.
"""
from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from threefs.client.fs import Client
from threefs.kv.engine import KVEngine, open_engine
from threefs.meta.config import MetaConfig
from threefs.meta.service import MetaServer
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.service import MgmtdServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp
from threefs.storage.service import StorageNode

T = TypeVar("T")
CHUNK = 64 << 10
STORAGE_NODE = 10001
META_NODE = 100

# KV engines the behavioural suite runs against: name -> URL for a scratch directory.
# An etcd engine joins by adding e.g. "etcd": lambda root: os.environ["THREEFS_TEST_ETCD"].
ENGINES: dict[str, Callable[[Path], str]] = {
    "memory": lambda root: "memory://",
    "rocksdb": lambda root: f"rocksdb://{root / 'meta-kv'}",
}

# Short intervals so GC, session pruning and retries happen within a test's patience.
TEST_CONFIG = MetaConfig(gc_interval=0.1, gc_retry_delay=0.3, gc_takeover=1.0, client_timeout=3.0,
                         session_scan_interval=0.2, idem_scan_interval=3600.0)


def wait_until(pred: Callable[[], bool], timeout: float = 30.0, what: str = "condition",
               interval: float = 0.02) -> None:
    """Poll `pred` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class InProcCluster:
    """mgmtd + storage + meta on one event loop (in a thread), with meta's KV at `kv_url`."""

    def __init__(self, root: Path, kv_url: str, *, config: MetaConfig = TEST_CONFIG, targets: int = 3,
                 stripe: int = 3) -> None:
        self.root = root
        self.kv_url = kv_url
        self.config = config
        self.n_targets = targets
        self.stripe = stripe
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="inproc-cluster", daemon=True)
        self._clients: list[Client] = []

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> InProcCluster:
        self.thread.start()
        try:
            self.call(self._start(), timeout=90)
        except BaseException:
            self.stop()
            raise
        return self

    async def _start(self) -> None:
        self.mgmtd_kv: KVEngine = open_engine("memory://")
        self.mgmtd = MgmtdServer(self.mgmtd_kv, heartbeat_fail_ms=30_000, check_interval=0.5)
        self.mgmtd_address = await self.mgmtd.start()
        target_ids = [STORAGE_NODE * 100 + i + 1 for i in range(self.n_targets)]
        dirs = {t: str(self.root / f"target-{t}") for t in target_ids}
        for d in dirs.values():
            os.makedirs(d, exist_ok=True)
        self.storage = StorageNode(STORAGE_NODE, dirs, self.mgmtd_address, heartbeat_interval=0.2, io_threads=2)
        await self.storage.start()
        m = MgmtdClient(self.mgmtd_address)
        try:
            await m.wait_for(lambda r: set(target_ids) <= {t.target_id for t in r.targets.values() if t.node_id}, 30)
            chains = []
            for i, t in enumerate(target_ids):
                c = cpb.ChainInfo(chain_id=i + 1)
                c.targets.append(cpb.ChainTarget(target_id=t))
                chains.append(c)
            await m.set_chains(chains)
            await m.set_chain_table(cpb.ChainTable(table_id=1, chain_ids=[c.chain_id for c in chains], desc="test"))
            self.kv: KVEngine = open_engine(self.kv_url)
            layout = cpb.Layout(table_id=1, chunk_size=CHUNK, stripe_size=self.stripe)
            self.meta = MetaServer(self.kv, META_NODE, self.mgmtd_address, default_layout=layout,
                                   heartbeat_interval=0.2, config=self.config)
            await self.meta.start()
            await m.wait_for(lambda r: any(n.type == cpb.META and n.status == cpb.HEARTBEAT_CONNECTED
                                           for n in r.nodes.values()), 30)
        finally:
            await m.close()

    def stop(self) -> None:
        for c in self._clients:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        if self.thread.is_alive():
            try:
                self.call(self._stop(), timeout=60)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self.thread.join(timeout=10)

    async def _stop(self) -> None:
        for name in ("meta", "storage", "mgmtd"):
            server = getattr(self, name, None)
            if server is not None:
                await server.stop()
        for name in ("kv", "mgmtd_kv"):
            kv = getattr(self, name, None)
            if kv is not None:
                await kv.close()

    # ---- helpers -----------------------------------------------------------------------------
    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run a coroutine on the cluster's loop (e.g. to inspect or drive the meta server)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def client(self, uid: int = 0, gid: int | None = None, groups: tuple[int, ...] = (), token: str = "") -> Client:
        """A sync client acting as uid/gid (closed with the cluster); renews its lease often."""
        user = cpb.UserInfo(uid=uid, gid=uid if gid is None else gid, groups=list(groups), token=token)
        c = Client(self.mgmtd_address, user=user, retry_timeout=10.0)
        c.aio.lease_interval = 0.3
        self._clients.append(c)
        return c

    def add_meta(self, node_id: int) -> MetaServer:
        """Start another meta server on the same KV engine (as several meta servers share etcd)."""
        async def start() -> MetaServer:
            layout = cpb.Layout(table_id=1, chunk_size=CHUNK, stripe_size=self.stripe)
            server = MetaServer(self.kv, node_id, self.mgmtd_address, default_layout=layout, heartbeat_interval=0.2,
                                config=self.config)
            await server.start()
            await server.mgmtd.wait_for(lambda r: r.nodes.get(node_id) is not None
                                        and r.nodes[node_id].status == cpb.HEARTBEAT_CONNECTED, 30)
            return server

        return self.call(start())

    def gc_drain(self, timeout: float = 60.0) -> int:
        """Collect every due GC entry now; returns entries still queued (busy files stay)."""
        return self.call(self.meta.gc.drain(timeout), timeout + 10)[1]

    def fsck(self) -> mp.FsckRsp:
        from threefs.meta.fsck import fsck
        return self.call(fsck(self.kv))

    def orphans(self) -> mp.FindOrphanedChunksRsp:
        from threefs.meta.orphans import find_orphaned_chunks
        return self.call(find_orphaned_chunks(self.kv, self.meta.mgmtd, self.meta.rpc))

    def chunks_of(self, inode_id: int) -> list[bytes]:
        """Chunk ids of `inode_id` present on any target."""
        from threefs.common import placement
        out = []
        for t in self.storage.service.targets.values():
            out += [m.chunk_id for m in t.engine.metas() if placement.parse_chunk_id(m.chunk_id)[0] == inode_id]
        return out


def expect_errno(err: int, fn: Callable[..., Any], *args, **kwargs) -> OSError:
    """Call fn and check it raises OSError with errno `err` (the error a POSIX file system gives)."""
    import errno as errno_mod
    try:
        fn(*args, **kwargs)
    except OSError as e:
        got = errno_mod.errorcode.get(e.errno, e.errno)
        assert e.errno == err, f"expected {errno_mod.errorcode[err]}, got {got}: {e}"
        return e
    raise AssertionError(f"expected {errno_mod.errorcode[err]}, but the call succeeded")


def threefs_cli(*args: str, check: bool = True, timeout: float = 120.0):
    """Run `python -m threefs ARGS`; returns the CompletedProcess (text output)."""
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "threefs", *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"threefs {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc
