"""The meta RPC service: each namespace operation runs as one retried serializable transaction."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from threefs.common.errors import FSError
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.meta.gc import GarbageCollector
from threefs.meta.length import precise_length
from threefs.meta.ops import create as create_op
from threefs.meta.ops import list as list_op
from threefs.meta.ops import mkdirs as mkdirs_op
from threefs.meta.ops import remove as remove_op
from threefs.meta.ops import rename as rename_op
from threefs.meta.ops import stat as stat_op
from threefs.meta.ops import sync as sync_op
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import DIRECTORY, GC_ROOT_ID, ROOT_ID, load_inode, now_ns, store_inode
from threefs.mgmtd.client import MgmtdClient
from threefs.net.rpc import RpcClient, RpcServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp
from threefs.proto import mgmtd_pb2 as mpb
from threefs.storage.client import StorageClient

log = logging.getLogger(__name__)
SERVICE = "Meta"
METHODS = {
    "Stat": mp.StatReq, "BatchStat": mp.BatchStatReq, "Create": mp.CreateReq, "Open": mp.OpenReq,
    "Mkdirs": mp.MkdirsReq, "List": mp.ListReq, "Remove": mp.RemoveReq, "Rename": mp.RenameReq,
    "Sync": mp.SyncReq, "Close": mp.CloseReq, "StatFs": mp.StatFsReq,
}


async def ensure_root(kv: KVEngine, default_layout: cpb.Layout) -> None:
    """Create the root and GC-root directories on first start (init-cluster's job in 3FS)."""

    async def fn(txn: Transaction) -> None:
        now = now_ns()
        if await load_inode(txn, ROOT_ID) is None:
            root = mp.Inode(id=ROOT_ID, type=DIRECTORY, perm=0o755, nlink=1, atime_ns=now, mtime_ns=now,
                            ctime_ns=now, parent=ROOT_ID, name="/")
            root.layout.CopyFrom(default_layout)
            store_inode(txn, root)
        if await load_inode(txn, GC_ROOT_ID) is None:
            store_inode(txn, mp.Inode(id=GC_ROOT_ID, type=DIRECTORY, perm=0o700, nlink=1, atime_ns=now,
                                      mtime_ns=now, ctime_ns=now, parent=ROOT_ID, name="gc-root"))

    await run_txn(kv, fn)


class MetaService:
    """Handlers of the Meta RPC service."""

    def __init__(self, ctx: MetaContext) -> None:
        self.ctx = ctx

    async def _txn(self, fn: Callable[[Transaction], Awaitable]):
        return await run_txn(self.ctx.kv, fn)

    async def Stat(self, req: mp.StatReq, payload):
        return await self._txn(lambda txn: stat_op.stat(txn, req)), None

    async def BatchStat(self, req: mp.BatchStatReq, payload):
        return await self._txn(lambda txn: stat_op.batch_stat(txn, req)), None

    async def Create(self, req: mp.CreateReq, payload):
        return await self._txn(lambda txn: create_op.create(self.ctx, txn, req)), None

    async def Open(self, req: mp.OpenReq, payload):
        return await self._txn(lambda txn: create_op.open_(self.ctx, txn, req)), None

    async def Mkdirs(self, req: mp.MkdirsReq, payload):
        return await self._txn(lambda txn: mkdirs_op.mkdirs(self.ctx, txn, req)), None

    async def List(self, req: mp.ListReq, payload):
        return await self._txn(lambda txn: list_op.list_(txn, req)), None

    async def Remove(self, req: mp.RemoveReq, payload):
        return await self._txn(lambda txn: remove_op.remove(self.ctx, txn, req)), None

    async def Rename(self, req: mp.RenameReq, payload):
        return await self._txn(lambda txn: rename_op.rename(self.ctx, txn, req)), None

    async def _precise(self, inode_id: int, needed: bool) -> int | None:
        if not needed:
            return None
        inode = await self._txn(lambda txn: load_inode(txn, inode_id, snapshot=True))
        if inode is None or inode.layout.WhichOneof("chains") is None:
            return None
        return await precise_length(self.ctx.mgmtd, self.ctx.storage, inode)

    async def Sync(self, req: mp.SyncReq, payload):
        precise = await self._precise(req.inode, req.update_length and not req.HasField("length_hint"))
        return await self._txn(lambda txn: sync_op.sync(txn, req, precise)), None

    async def Close(self, req: mp.CloseReq, payload):
        precise = await self._precise(req.inode, req.update_length and not req.HasField("length_hint"))
        return await self._txn(lambda txn: sync_op.close(txn, req, precise)), None

    async def StatFs(self, req: mp.StatFsReq, payload):
        routing = self.ctx.mgmtd.routing
        nodes = routing.nodes_of_type(cpb.STORAGE)
        rsp = mp.StatFsRsp()
        infos = await asyncio.gather(*(self.ctx.storage.space_info(n.address) for n in nodes
                                       if n.status == cpb.HEARTBEAT_CONNECTED), return_exceptions=True)
        seen_fs: set[tuple[int, int]] = set()
        for info in infos:
            if isinstance(info, BaseException):
                continue
            for t in info.targets:
                # targets sharing one file system (the dev cluster) are counted once
                key = (t.capacity, t.free // (1 << 30))
                if key in seen_fs:
                    continue
                seen_fs.add(key)
                rsp.capacity += t.capacity
                rsp.free += t.free
                rsp.used += t.used
        return rsp, None


class MetaServer:
    """A meta process: RPC server, KV engine, routing, storage client, GC and heartbeats."""

    def __init__(self, kv: KVEngine, node_id: int, mgmtd_addresses: str | list[str], *, host: str = "127.0.0.1",
                 port: int = 0, default_layout: cpb.Layout | None = None, heartbeat_interval: float = 1.0,
                 gc_interval: float = 0.5) -> None:
        self.kv = kv
        self.node_id = node_id
        self.mgmtd = MgmtdClient(mgmtd_addresses)
        self.rpc = RpcClient()
        self.storage = StorageClient(self.mgmtd, self.rpc)
        self.ctx = MetaContext(kv=kv, mgmtd=self.mgmtd, storage=self.storage, node_id=node_id)
        self.default_layout = default_layout or cpb.Layout(table_id=1, chunk_size=1 << 20, stripe_size=4)
        self.service = MetaService(self.ctx)
        self.gc = GarbageCollector(self.ctx, interval=gc_interval)
        self.server = RpcServer(host, port)
        self.server.register_service(SERVICE, self.service, METHODS)
        self.heartbeat_interval = heartbeat_interval
        self._tasks: list[asyncio.Task] = []
        self._hb = 0

    async def start(self) -> str:
        await ensure_root(self.kv, self.default_layout)
        self.address = await self.server.start()
        try:
            await self.mgmtd.refresh()
        except FSError as e:
            log.warning("mgmtd not reachable yet: %s", e)
        await self._heartbeat()
        self.mgmtd.start_polling(self.heartbeat_interval)
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        self.gc.start()
        log.info("meta node %d serving on %s", self.node_id, self.address)
        return self.address

    async def _heartbeat(self) -> None:
        self._hb += 1
        try:
            await self.mgmtd.heartbeat(mpb.HeartbeatReq(node_id=self.node_id, type=cpb.META, address=self.address,
                                                        hostname=socket.gethostname(), pid=os.getpid(),
                                                        hb_version=self._hb))
        except FSError as e:
            log.warning("heartbeat to mgmtd failed: %s", e)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._heartbeat()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.gc.stop()
        await self.server.stop()
        await self.rpc.close()
        await self.mgmtd.close()
