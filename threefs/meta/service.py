"""The meta RPC service: each namespace operation runs as one retried serializable transaction.

Handlers resolve the caller first (auth.py), then run the operation: mutations with `run_txn`
(whole-operation retry on conflict), reads in a transaction that never commits. Operations that
need storage (precise length, truncate, GC, orphan scan) do their I/O outside any transaction.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

from threefs.common.errors import Code, FSError, make_error
from threefs.kv.engine import KVEngine, Transaction, TransactionConflict, run_txn
from threefs.meta.auth import Authenticator, Caller
from threefs.meta.config import MetaConfig
from threefs.meta.dir_leases import LeaseExpirer, with_recalls
from threefs.meta.fsck import fsck
from threefs.meta.gc import GarbageCollector
from threefs.meta.idem import IdemExpirer
from threefs.meta.inline import migrate, with_migrations
from threefs.meta.length import precise_length, truncate_chunks
from threefs.meta.ops import allocate_inodes as allocate_inodes_op
from threefs.meta.ops import batch_stat as batch_stat_op
from threefs.meta.ops import create as create_op
from threefs.meta.ops import getrealpath as getrealpath_op
from threefs.meta.ops import hardlink as hardlink_op
from threefs.meta.ops import list as list_op
from threefs.meta.ops import list_sessions as list_sessions_op
from threefs.meta.ops import lookup as lookup_op
from threefs.meta.ops import mkdirs as mkdirs_op
from threefs.meta.ops import open as open_op
from threefs.meta.ops import prune_session as prune_session_op
from threefs.meta.ops import remove as remove_op
from threefs.meta.ops import rename as rename_op
from threefs.meta.ops import renew_client as renew_client_op
from threefs.meta.ops import setattr as setattr_op
from threefs.meta.ops import stat as stat_op
from threefs.meta.ops import statfs as statfs_op
from threefs.meta.ops import symlink as symlink_op
from threefs.meta.ops import sync as sync_op
from threefs.meta.ops import truncate as truncate_op
from threefs.meta.ops import xattr as xattr_op
from threefs.meta.ops.context import MetaContext
from threefs.meta.orphans import find_orphaned_chunks
from threefs.meta.schema import DIRECTORY, GC_ROOT_ID, ROOT_ID, load_inode, now_ns, store_inode
from threefs.meta.sessions import SessionPruner
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.users import UsersClient
from threefs.net.rpc import RpcClient, RpcServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp
from threefs.proto import mgmtd_pb2 as mpb
from threefs.storage.client import StorageClient

log = logging.getLogger(__name__)
SERVICE = "Meta"
T = TypeVar("T")
GC_RUN_TIMEOUT = 60.0

# method -> (request type, operation): one read-write transaction per request
MUTATIONS = {
    "Create": (mp.CreateReq, create_op.create),
    "Open": (mp.OpenReq, open_op.open_),
    "Mkdirs": (mp.MkdirsReq, mkdirs_op.mkdirs),
    "Symlink": (mp.SymlinkReq, symlink_op.symlink),
    "HardLink": (mp.HardLinkReq, hardlink_op.hardlink),
    "Remove": (mp.RemoveReq, remove_op.remove),
    "Rename": (mp.RenameReq, rename_op.rename),
    "SetAttr": (mp.SetAttrReq, setattr_op.setattr_),
    "PruneSession": (mp.PruneSessionReq, prune_session_op.prune_session),
    "RenewClient": (mp.RenewClientReq, renew_client_op.renew_client),
    "SetXattr": (mp.SetXattrReq, xattr_op.set_xattr),
    "RemoveXattr": (mp.RemoveXattrReq, xattr_op.remove_xattr),
    "AllocateInodes": (mp.AllocateInodesReq, allocate_inodes_op.allocate_inodes),
}
# method -> (request type, operation): read-only, never commits
READS = {
    "Stat": (mp.StatReq, stat_op.stat),
    "BatchStat": (mp.BatchStatReq, batch_stat_op.batch_stat),
    "BatchStatByPath": (mp.BatchStatByPathReq, batch_stat_op.batch_stat_by_path),
    "Lookup": (mp.LookupReq, lookup_op.lookup),
    "List": (mp.ListReq, list_op.list_),
    "GetRealPath": (mp.GetRealPathReq, getrealpath_op.getrealpath),
    "GetXattr": (mp.GetXattrReq, xattr_op.get_xattr),
    "ListXattr": (mp.ListXattrReq, xattr_op.list_xattr),
}
ADMIN_READS = {
    "ListSessions": (mp.ListSessionsReq, list_sessions_op.list_sessions),
}
# handled by MetaService methods of the same name
CUSTOM = {
    "Sync": mp.SyncReq, "Close": mp.CloseReq, "Truncate": mp.TruncateReq, "StatFs": mp.StatFsReq,
    "GcList": mp.GcListReq, "GcRun": mp.GcRunReq, "Fsck": mp.FsckReq, "FindOrphanedChunks": mp.FindOrphanedChunksReq,
}
# mutations whose commit need only survive a crash of the meta process, not of the machine (DESIGN §8:
# only fsync/close promise that); a later durable commit (a file's sync/close, fsyncdir) covers them
PROCESS_DURABLE = {"Create", "Open", "PruneSession", "RenewClient"}
METHODS = {name: spec[0] for name, spec in {**MUTATIONS, **READS, **ADMIN_READS}.items()} | CUSTOM


async def run_read(kv: KVEngine, fn: Callable[[Transaction], Awaitable[T]], *, retries: int = 5) -> T:
    """Run a read-only operation in a transaction that is never committed."""
    for attempt in range(retries + 1):
        txn = kv.transaction()
        try:
            return await fn(txn)
        except TransactionConflict:
            if attempt >= retries:
                raise
        finally:
            txn.cancel()
    raise AssertionError("unreachable")


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

    def __init__(self, ctx: MetaContext, auth: Authenticator, gc: GarbageCollector, rpc: RpcClient) -> None:
        self.ctx = ctx
        self.auth = auth
        self.gc = gc
        self.rpc = rpc              # directory lease recalls (threefs.meta.dir_leases)

    def handlers(self) -> dict[str, Callable]:
        """Every method name -> its `(request, payload) -> (response, None)` handler."""
        out: dict[str, Callable] = {}
        for name, (_, op) in MUTATIONS.items():
            out[name] = self._mutation(op, durable=name not in PROCESS_DURABLE)
        for name, (_, op) in READS.items():
            out[name] = self._read(op, admin=False)
        for name, (_, op) in ADMIN_READS.items():
            out[name] = self._read(op, admin=True)
        for name in CUSTOM:
            out[name] = getattr(self, name)
        return out

    async def _caller(self, req) -> Caller:
        """Resolve the caller and put the effective user into the request the operation sees."""
        caller = await self.auth.caller(req.base.user)
        req.base.user.CopyFrom(caller.user)
        return caller

    async def _admin(self, req) -> Caller:
        caller = await self._caller(req)
        if not caller.admin:
            raise make_error(Code.NOT_PERMITTED, "an administrator is required (uid 0, or an admin token)")
        return caller

    def _mutation(self, op, *, durable: bool = True):
        async def handle(req, payload):
            await self._caller(req)
            sync = durable or (isinstance(req, mp.CreateReq) and req.sync)      # a deferred create at a close

            def run():
                return run_txn(self.ctx.kv, lambda txn: op(self.ctx, txn, req), durable=sync)
            return await with_recalls(self.ctx.kv, self.rpc, lambda: with_migrations(self.ctx, run)), None
        return handle

    def _read(self, op, *, admin: bool):
        async def handle(req, payload):
            await (self._admin(req) if admin else self._caller(req))
            return await run_read(self.ctx.kv, lambda txn: op(self.ctx, txn, req)), None
        return handle

    async def _precise(self, inode_id: int, needed: bool) -> int | None:
        if not needed:
            return None
        inode = await run_read(self.ctx.kv, lambda txn: load_inode(txn, inode_id, snapshot=True))
        if inode is None or inode.inline or inode.layout.WhichOneof("chains") is None:
            return None                   # an inline file's length is its content's (meta.inline)
        return await precise_length(self.ctx.mgmtd, self.ctx.storage, inode)

    async def Sync(self, req: mp.SyncReq, payload):
        await self._caller(req)
        precise = await self._precise(req.inode, req.update_length and not req.HasField("length_hint"))
        return await run_txn(self.ctx.kv, lambda txn: sync_op.sync(self.ctx, txn, req, precise)), None

    async def Close(self, req: mp.CloseReq, payload):
        await self._caller(req)
        precise = await self._precise(req.inode, req.update_length and not req.HasField("length_hint"))
        return await run_txn(self.ctx.kv, lambda txn: sync_op.close(self.ctx, txn, req, precise)), None

    async def Truncate(self, req: mp.TruncateReq, payload):
        await self._caller(req)
        inode = await run_read(self.ctx.kv, lambda txn: truncate_op.check(self.ctx, txn, req))
        if inode.inline or inode.fresh:
            await migrate(self.ctx, inode.id)      # then cut the chunk like any other file's
            inode = await run_read(self.ctx.kv, lambda txn: truncate_op.check(self.ctx, txn, req))
        if inode.layout.WhichOneof("chains") is not None:
            await truncate_chunks(self.ctx.mgmtd, self.ctx.storage, inode, req.length)
        return await run_txn(self.ctx.kv, lambda txn: truncate_op.apply(self.ctx, txn, inode.id, req.length)), None

    async def StatFs(self, req: mp.StatFsReq, payload):
        await self._caller(req)
        return await statfs_op.statfs(self.ctx, req), None

    async def GcList(self, req: mp.GcListReq, payload):
        await self._admin(req)
        limit = req.limit or 1000
        entries = await self.gc.entries(limit + 1)
        rsp = mp.GcListRsp(more=len(entries) > limit)
        rsp.entries.extend(entries[:limit])
        for e in entries[:limit]:
            rsp.inodes.append(await run_read(self.ctx.kv, lambda txn, i=e.id: load_inode(txn, i, snapshot=True))
                              or mp.Inode(id=e.id))
        return rsp, None

    async def GcRun(self, req: mp.GcRunReq, payload):
        await self._admin(req)
        collected, pending = await self.gc.drain(GC_RUN_TIMEOUT)
        return mp.GcRunRsp(collected=collected, pending=pending), None

    async def Fsck(self, req: mp.FsckReq, payload):
        await self._admin(req)
        return await fsck(self.ctx.kv), None

    async def FindOrphanedChunks(self, req: mp.FindOrphanedChunksReq, payload):
        await self._admin(req)
        return await find_orphaned_chunks(self.ctx.kv, self.ctx.mgmtd, self.ctx.storage.rpc), None


class MetaServer:
    """A meta process: RPC server, KV engine, routing, storage client, GC, session pruning, heartbeats."""

    def __init__(self, kv: KVEngine, node_id: int, mgmtd_addresses: str | list[str], *, host: str = "127.0.0.1",
                 port: int = 0, default_layout: cpb.Layout | None = None, heartbeat_interval: float = 1.0,
                 gc_interval: float = 0.5, config: MetaConfig | None = None) -> None:
        self.kv = kv
        self.node_id = node_id
        self.config = config or MetaConfig(gc_interval=gc_interval)
        self.mgmtd = MgmtdClient(mgmtd_addresses)
        self.users = UsersClient(mgmtd_addresses)
        self.rpc = RpcClient()
        self.storage = StorageClient(self.mgmtd, self.rpc)
        self.ctx = MetaContext(kv=kv, mgmtd=self.mgmtd, storage=self.storage, node_id=node_id, config=self.config)
        self.default_layout = default_layout or cpb.Layout(table_id=1, chunk_size=4 << 20, stripe_size=4)
        c = self.config
        self.auth = Authenticator(self.users, enabled=c.authenticate, ttl=c.auth_cache_ttl)
        self.gc = GarbageCollector(self.ctx, interval=c.gc_interval, delay=c.gc_delay, retry_delay=c.gc_retry_delay,
                                   takeover=c.gc_takeover)
        self.sessions = SessionPruner(kv, client_timeout=c.client_timeout, interval=c.session_scan_interval)
        self.idem = IdemExpirer(kv, ttl=c.idem_ttl, interval=c.idem_scan_interval)
        self.leases = LeaseExpirer(kv, interval=c.dir_lease_scan_interval)
        self.service = MetaService(self.ctx, self.auth, self.gc, self.rpc)
        self.server = RpcServer(host, port)
        for name, handler in self.service.handlers().items():
            self.server.register(f"{SERVICE}.{name}", METHODS[name], handler)
        self.heartbeat_interval = heartbeat_interval
        self._tasks: list[asyncio.Task] = []
        self._hb = 0

    async def start(self) -> str:
        await ensure_root(self.kv, self.default_layout)
        try:
            await self.mgmtd.refresh()      # before serving: requests that need chain tables find them
        except FSError as e:
            log.warning("mgmtd not reachable yet: %s", e)    # they fetch on demand (MgmtdClient.chain_table)
        self.address = await self.server.start()
        await self._heartbeat()
        self.mgmtd.start_polling(self.heartbeat_interval)
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        self.gc.start()
        self.sessions.start()
        self.idem.start()
        self.leases.start()
        log.info("meta node %d serving on %s (authentication %s)", self.node_id, self.address,
                 "on" if self.config.authenticate else "off")
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
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.gc.stop()
        await self.sessions.stop()
        await self.idem.stop()
        await self.leases.stop()
        await self.server.stop()
        await self.rpc.close()
        await self.users.close()
        await self.mgmtd.close()
