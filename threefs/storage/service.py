"""The storage service: targets with chunk engines, CRAQ writes down the chain, reads of committed data.

Write path (3FS §4.3): the head locks the chunk, applies the update as pending version u, forwards it
to its successor with u, and commits u only after the successor replied (the tail commits first);
the client is acknowledged after the head committed. Every message carries the chain version and a
target rejects a version that differs from its routing view.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient, RpcServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb
from threefs.proto import storage_pb2 as spb
from threefs.storage.chunk_engine import ChunkEngine
from threefs.storage.chunk_locks import ChunkLocks

log = logging.getLogger(__name__)
SERVICE = "Storage"
METHODS = {
    "Write": spb.WriteReq,
    "BatchRead": spb.BatchReadReq,
    "QueryLastChunk": spb.QueryLastChunkReq,
    "RemoveChunks": spb.RemoveChunksReq,
    "TruncateChunk": spb.TruncateChunkReq,
    "SyncChain": spb.SyncChainReq,
    "QueryChunk": spb.QueryChunkReq,
    "GetAllChunkMeta": spb.GetAllChunkMetaReq,
    "SpaceInfo": spb.SpaceInfoReq,
}


@dataclass
class Target:
    """One local target: its id, directory and chunk engine."""

    target_id: int
    path: Path
    engine: ChunkEngine
    disk_index: int = 0


class StorageService:
    """Handlers of the Storage RPC service on one node."""

    def __init__(self, node_id: int, targets: list[Target], mgmtd: MgmtdClient, rpc: RpcClient,
                 *, io_threads: int = 8, forward_timeout: float = 30.0) -> None:
        self.node_id = node_id
        self.targets = {t.target_id: t for t in targets}
        self.mgmtd = mgmtd
        self.rpc = rpc
        self.locks = ChunkLocks()
        self.pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="storage-io")
        self.forward_timeout = forward_timeout

    async def _io(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kw))

    # ---- routing checks -----------------------------------------------------------------
    async def _target_for(self, chain_id: int, chain_ver: int) -> tuple[Target, Routing]:
        """The local target of `chain_id`, after checking the request's chain version."""
        routing = self.mgmtd.routing
        chain = routing.chains.get(chain_id)
        if chain is None or chain.chain_version < chain_ver:
            routing = await self.mgmtd.refresh()
            chain = routing.chains.get(chain_id)
        if chain is None:
            raise make_error(Code.ROUTING_VERSION_MISMATCH, f"chain {chain_id} unknown to storage node {self.node_id}")
        if chain.chain_version != chain_ver:
            raise make_error(Code.ROUTING_VERSION_MISMATCH,
                             f"chain {chain_id} is at version {chain.chain_version}, request has {chain_ver}")
        for ct in chain.targets:
            t = self.targets.get(ct.target_id)
            if t is not None:
                return t, routing
        raise make_error(Code.TARGET_NOT_FOUND, f"storage node {self.node_id} holds no target of chain {chain_id}")

    def _target(self, target_id: int) -> Target:
        t = self.targets.get(target_id)
        if t is None:
            raise make_error(Code.TARGET_NOT_FOUND, f"target {target_id} is not on storage node {self.node_id}")
        return t

    # ---- the update path ----------------------------------------------------------------
    async def Write(self, req: spb.WriteReq, payload: memoryview | None):
        return await self.write(req, payload), None

    async def write(self, req: spb.WriteReq, payload: memoryview | None) -> spb.WriteRsp:
        """Apply a client write (at the head) or a forwarded update, then forward and commit."""
        io = req.io
        target, routing = await self._target_for(io.chain_id, io.chain_ver)
        state = routing.public_state(io.chain_id, target.target_id)
        if req.from_client:
            if routing.head(io.chain_id) != target.target_id:
                raise make_error(Code.NOT_HEAD, f"target {target.target_id} is not the head of chain {io.chain_id}")
        elif state not in (cpb.SERVING, cpb.SYNCING):
            raise make_error(Code.TARGET_OFFLINE, f"target {target.target_id} is {cpb.PublicTargetState.Name(state)}")
        data = payload if payload is not None else memoryview(b"")
        async with self.locks.hold(io.chunk_id):
            await self._target_for(io.chain_id, io.chain_ver)
            return await self._update_locked(target, req, data)

    async def _update_locked(self, target: Target, req: spb.WriteReq, data: memoryview) -> spb.WriteRsp:
        io = req.io
        eng = target.engine
        meta = await self._io(eng.get, io.chunk_id)
        full_replace = io.is_syncing
        if req.from_client:
            commit_ver = meta.commit_ver if meta else 0
            update_ver = commit_ver + 1
            # A pending version left by a failed earlier update: discard it and push this update
            # down the chain as a full-chunk replacement, so every replica ends identical.
            leftover = meta is not None and meta.update_ver != meta.commit_ver
        else:
            update_ver = io.update_ver
            leftover = False
            if meta is not None and not full_replace:
                if update_ver <= meta.commit_ver:      # already committed here: stale duplicate
                    return self._rsp(meta, committed=True, chain_ver=io.chain_ver)
                if update_ver == meta.update_ver and meta.update_ver != meta.commit_ver:
                    return await self._forward_and_commit(target, req, data, meta, update_ver)
        kw = dict(update_ver=update_ver, chain_ver=io.chain_ver, kind=io.type, offset=io.offset,
                  length=io.length, chunk_size=io.chunk_size, client_id=req.tag.client_id,
                  request_id=req.tag.request_id)
        if io.type == spb.WRITE:
            kw.update(data=data, data_crc=io.checksum)
        if leftover:
            await self._io(eng.abort, io.chunk_id)
        new = await self._io(eng.update, io.chunk_id, full_replace=full_replace, **kw)
        return await self._forward_and_commit(target, req, data, new, update_ver, force_replace=leftover)

    async def _forward_and_commit(self, target: Target, req: spb.WriteReq, data: memoryview,
                                  pending: spb.ChunkMeta, update_ver: int, *, force_replace: bool = False) -> spb.WriteRsp:
        io = req.io
        eng = target.engine
        routing = self.mgmtd.routing
        succ = routing.successor(io.chain_id, target.target_id)
        commit_chain_ver = io.chain_ver
        if succ is not None:
            fwd = spb.WriteReq()
            fwd.CopyFrom(req)
            fwd.from_client = False
            fwd.io.update_ver = update_ver
            payload: memoryview | bytes = data
            syncing = routing.public_state(io.chain_id, succ) == cpb.SYNCING
            if pending.removing:
                fwd.io.is_syncing = False
            elif force_replace or syncing or io.is_syncing:
                content = bytearray(pending.pending_size)
                n, _ = await self._io(eng.read, io.chunk_id, 0, len(content), memoryview(content), relaxed=True)
                payload = memoryview(content)[:n]
                fwd.io.type = spb.WRITE
                fwd.io.is_syncing = True
                fwd.io.offset = 0
                fwd.io.length = n
                fwd.io.checksum = pending.pending_checksum
            rsp, _ = await self.rpc.call(routing.target_address(succ), f"{SERVICE}.Write", fwd, spb.WriteRsp,
                                         payload=payload, timeout=self.forward_timeout)
            if not pending.removing and rsp.checksum != pending.pending_checksum:
                raise make_error(Code.CHECKSUM_MISMATCH,
                                 f"chunk {io.chunk_id.hex()}: successor {succ} checksum {rsp.checksum:#x} != {pending.pending_checksum:#x}")
            commit_chain_ver = min(commit_chain_ver, rsp.commit_chain_ver) if rsp.commit_chain_ver else commit_chain_ver
        committed = await self._io(eng.commit, io.chunk_id, update_ver, io.chain_ver)
        if committed is None:   # removal committed
            return spb.WriteRsp(commit_ver=update_ver, update_ver=update_ver, commit_chain_ver=commit_chain_ver)
        return self._rsp(committed, committed=True, chain_ver=commit_chain_ver)

    @staticmethod
    def _rsp(meta: spb.ChunkMeta, *, committed: bool, chain_ver: int) -> spb.WriteRsp:
        return spb.WriteRsp(length=meta.size, commit_ver=meta.commit_ver, update_ver=meta.update_ver,
                            checksum=meta.checksum, commit_chain_ver=chain_ver)

    # ---- reads ---------------------------------------------------------------------------
    async def BatchRead(self, req: spb.BatchReadReq, payload):
        results = await asyncio.gather(*(self._read_one(io) for io in req.ios))
        rsp = spb.BatchReadRsp()
        out: list[memoryview] = []
        for res, data in results:
            rsp.results.append(res)
            if data is not None:
                out.append(data)
        return rsp, out

    async def _read_one(self, io: spb.ReadIO) -> tuple[spb.ReadResult, memoryview | None]:
        try:
            target, routing = await self._target_for(io.chain_id, io.chain_ver)
            if routing.public_state(io.chain_id, target.target_id) != cpb.SERVING:
                raise make_error(Code.TARGET_OFFLINE, f"target {target.target_id} is not serving")
            buf = bytearray(io.length)
            n, meta = await self._io(target.engine.read, io.chunk_id, io.offset, io.length, memoryview(buf),
                                     relaxed=io.relaxed)
            return (spb.ReadResult(status=0, length=n, commit_ver=meta.commit_ver, chunk_size=meta.size,
                                   checksum=meta.checksum), memoryview(buf)[:n])
        except FSError as e:
            return spb.ReadResult(status=int(e.code)), None

    # ---- other chain operations ----------------------------------------------------------
    async def QueryLastChunk(self, req: spb.QueryLastChunkReq, payload):
        target, _ = await self._target_for(req.chain_id, req.chain_ver)
        metas = await self._io(target.engine.metas, req.begin, req.end, reverse=True, limit=0)
        rsp = spb.QueryLastChunkRsp()
        for m in metas:
            if m.commit_ver == 0:
                continue
            rsp.total_num += 1
            if not rsp.found:
                rsp.found = True
                rsp.last_chunk_id = m.chunk_id
                rsp.last_chunk_len = m.size
        return rsp, None

    async def RemoveChunks(self, req: spb.RemoveChunksReq, payload):
        target, routing = await self._target_for(req.chain_id, req.chain_ver)
        if routing.head(req.chain_id) != target.target_id:
            raise make_error(Code.NOT_HEAD, f"target {target.target_id} is not the head of chain {req.chain_id}")
        limit = req.max_num or 32
        metas = await self._io(target.engine.metas, req.begin, req.end, limit=limit + 1)
        removed = 0
        for m in metas[:limit]:
            w = spb.WriteReq(from_client=True, tag=req.tag)
            w.io.CopyFrom(spb.UpdateIO(chain_id=req.chain_id, chain_ver=req.chain_ver, chunk_id=m.chunk_id,
                                       type=spb.REMOVE))
            async with self.locks.hold(m.chunk_id):
                await self._update_locked(target, w, memoryview(b""))
            removed += 1
        return spb.RemoveChunksRsp(removed=removed, more=len(metas) > limit), None

    async def TruncateChunk(self, req: spb.TruncateChunkReq, payload):
        w = spb.WriteReq(from_client=True, tag=req.tag)
        w.io.CopyFrom(spb.UpdateIO(chain_id=req.chain_id, chain_ver=req.chain_ver, chunk_id=req.chunk_id,
                                   length=req.length, chunk_size=req.chunk_size,
                                   type=spb.EXTEND if req.only_extend else spb.TRUNCATE))
        rsp = await self.write(w, None)
        return spb.TruncateChunkRsp(length=rsp.length), None

    async def SyncChain(self, req: spb.SyncChainReq, payload):
        target, routing = await self._target_for(req.chain_id, req.chain_ver)
        await self._io(target.engine.sync)
        succ = routing.successor(req.chain_id, target.target_id)
        if succ is not None:
            fwd = spb.SyncChainReq(chain_id=req.chain_id, chain_ver=req.chain_ver, from_client=False)
            await self.rpc.call(routing.target_address(succ), f"{SERVICE}.SyncChain", fwd, spb.SyncChainRsp,
                                timeout=self.forward_timeout)
        return spb.SyncChainRsp(), None

    async def QueryChunk(self, req: spb.QueryChunkReq, payload):
        t = self._target(req.target_id)
        meta = await self._io(t.engine.get, req.chunk_id)
        if meta is None:
            return spb.QueryChunkRsp(found=False), None
        meta.target_id = t.target_id
        return spb.QueryChunkRsp(found=True, meta=meta), None

    async def GetAllChunkMeta(self, req: spb.GetAllChunkMetaReq, payload):
        t = self._target(req.target_id)
        metas = await self._io(t.engine.metas)
        return spb.GetAllChunkMetaRsp(metas=metas), None

    async def SpaceInfo(self, req: spb.SpaceInfoReq, payload):
        rsp = spb.SpaceInfoRsp()
        for t in self.targets.values():
            cap, used, free, chunks = await self._io(t.engine.space)
            rsp.targets.append(spb.TargetSpace(target_id=t.target_id, capacity=cap, used=used, free=free, chunks=chunks))
        return rsp, None


class StorageNode:
    """A storage process: RPC server, chunk engines, heartbeats and routing refresh."""

    def __init__(self, node_id: int, target_dirs: dict[int, str], mgmtd_addresses: str | list[str], *,
                 host: str = "127.0.0.1", port: int = 0, heartbeat_interval: float = 1.0,
                 io_threads: int = 8) -> None:
        self.node_id = node_id
        self.host, self.port = host, port
        self.heartbeat_interval = heartbeat_interval
        self.mgmtd = MgmtdClient(mgmtd_addresses)
        self.rpc = RpcClient()
        targets = [Target(tid, Path(p), ChunkEngine(p, tid), disk_index=0) for tid, p in sorted(target_dirs.items())]
        self.service = StorageService(node_id, targets, self.mgmtd, self.rpc, io_threads=io_threads)
        self.server = RpcServer(host, port)
        self.server.register_service(SERVICE, self.service, METHODS)
        self._tasks: list[asyncio.Task] = []
        self._hb_version = 0

    async def start(self) -> str:
        self.address = await self.server.start()
        try:
            await self._heartbeat()
        except FSError as e:
            log.warning("mgmtd not reachable yet (will keep trying): %s", e)
        self.mgmtd.start_polling(self.heartbeat_interval)
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        log.info("storage node %d serving on %s", self.node_id, self.address)
        return self.address

    async def _heartbeat(self) -> None:
        self._hb_version += 1
        req = mpb.HeartbeatReq(node_id=self.node_id, type=cpb.STORAGE, address=self.address,
                               hostname=socket.gethostname(), pid=os.getpid(), hb_version=self._hb_version)
        routing = self.mgmtd.routing
        for t in self.service.targets.values():
            info = routing.targets.get(t.target_id)
            chain = routing.chains.get(info.chain_id) if info else None
            req.targets.append(mpb.LocalTargetReport(
                target_id=t.target_id, local_state=cpb.UPTODATE, disk_index=t.disk_index,
                chain_version=chain.chain_version if chain else 0))
        rsp = await self.mgmtd.heartbeat(req)
        if rsp.routing_version > self.mgmtd.routing.version:
            await self.mgmtd.refresh()

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                await self._heartbeat()
            except FSError as e:
                log.warning("heartbeat to mgmtd failed: %s", e)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.server.stop()
        await self.rpc.close()
        await self.mgmtd.close()
        self.service.pool.shutdown(wait=True)
        for t in self.service.targets.values():
            t.engine.close()
