"""The storage service: targets with chunk engines, CRAQ writes down the chain, reads of committed data.

Write path (3FS §4.3): the head locks the chunk, applies the update as pending version u, forwards it
to its successor with u, and commits u only after the successor replied (the tail commits first);
the client is acknowledged after the head committed. Every message carries the chain version and a
target rejects a version that differs from its routing view. When the successor fails, the forward is
retried with backoff against the successor of the newest routing info (bounded in time); a SYNCING
successor gets full-chunk replacements. Client updates are executed exactly once per channel seqnum
(threefs.storage.channels); resync of a rejoining target is in threefs.storage.resync.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from threefs.common.buffers import uninitialized_bytearray
from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient, RpcServer
from threefs.proto import common_pb2 as cpb
from threefs.proto import mgmtd_pb2 as mpb
from threefs.proto import storage_pb2 as spb
from threefs.storage.channels import ChannelCache
from threefs.storage.chunk_engine import DIRECT_MIN, ChunkEngine, UnavailableEngine, WouldBlock
from threefs.storage.chunk_locks import ChunkLocks
from threefs.storage.fencing import call_fenced
from threefs.storage.map_cache import DEFAULT_CAPACITY, MapCache
from threefs.storage.resync import Resyncer
from threefs.storage.target_state import next_local_state

INLINE_UPDATE = 64 << 10   # updates touching at most this much chunk data run on the event loop
SMALL_READ = 256 << 10   # reads up to this size are copied (one pread) rather than mapped (mmap, mincore, munmap)
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
    "SyncStart": spb.SyncStartReq,
    "SyncDone": spb.SyncDoneReq,
    "OfflineTarget": spb.OfflineTargetReq,
    "DropMappings": spb.DropMappingsReq,
}
# Forward failures worth retrying against a (possibly new) successor.
FORWARD_RETRYABLE = {Code.UNAVAILABLE, Code.TIMEOUT, Code.ROUTING_VERSION_MISMATCH, Code.TARGET_OFFLINE,
                     Code.TARGET_NOT_FOUND, Code.NOT_HEAD, Code.BUSY, Code.CHUNK_NOT_COMMIT}
# Successor replies meaning "my copy of the chunk is not the base of your update": resend it whole.
NEEDS_FULL_REPLACE = {Code.CHUNK_MISSING_UPDATE, Code.CHUNK_NOT_CLEAN, Code.CHUNK_STALE_UPDATE}


@dataclass
class Target:
    """One local target: its id, directory, chunk engine and local state."""

    target_id: int
    path: Path
    engine: ChunkEngine
    disk_index: int = 0
    local_state: int = cpb.LOCAL_OFFLINE
    sticky_offline: bool = False      # admin offline-target / I/O error: stays OFFLINE until restart
    inflight: int = 0                 # updates running on this target
    promoting: bool = False           # ONLINE -> UPTODATE in progress (force-commit of pending versions)


@dataclass(frozen=True)
class StorageConfig:
    """Timing of forwarding retries, resync and stall detection (3FS: 100 ms .. 1 s backoff, 60 s total),
    whether large cold reads bypass the page cache, and how many chunk mappings reads keep."""

    forward_timeout: float = 30.0
    forward_first_delay: float = 0.1
    forward_max_delay: float = 1.0
    forward_retry_total: float = 60.0
    resync_interval: float = 0.5
    resync_retry_gap: float = 1.0
    stall_threshold: float = 1.0      # an event-loop gap this long (SIGSTOP, freeze) forces a routing refresh
    resync_rate: float = 0.0          # bytes/s of resync writes this node sends (0: unlimited)
    direct_reads: bool = True         # large reads that miss the page cache skip it (O_DIRECT), as in 3FS
    mapped_chunks: int = DEFAULT_CAPACITY   # chunks (of all targets) whose page-cache mapping is kept between reads
    reserved_space: int | None = None   # free bytes per target file system that chunk data may not take (None:
                                        # chunk_engine.default_reserve)


class StorageService:
    """Handlers of the Storage RPC service on one node."""

    def __init__(self, node_id: int, targets: list[Target], mgmtd: MgmtdClient, rpc: RpcClient,
                 *, io_threads: int = 8, forward_timeout: float | None = None,
                 config: StorageConfig | None = None) -> None:
        cfg = config or StorageConfig()
        if forward_timeout is not None:
            cfg = dataclasses.replace(cfg, forward_timeout=forward_timeout)
        self.config = cfg
        self.node_id = node_id
        self.targets = {t.target_id: t for t in targets}
        self.mgmtd = mgmtd
        self.rpc = rpc
        self.locks = ChunkLocks()
        self.pool = ThreadPoolExecutor(max_workers=io_threads, thread_name_prefix="storage-io")
        self.client_updates = ChannelCache()      # (client, chain, channel) -> result at the head
        self.forwarded_updates = ChannelCache()   # (client, chain, channel, chunk) -> result downstream
        self.resyncer = Resyncer(self, interval=cfg.resync_interval, retry_gap=cfg.resync_retry_gap,
                                 rate=cfg.resync_rate)
        self.on_local_change: list[Callable[[], None]] = []   # after a local state changed: heartbeat now
        self._tick = time.monotonic()
        self._verify: asyncio.Task | None = None
        self._background: set[asyncio.Task] = set()
        self.stats = {"forward_retries": 0, "full_replace_fallbacks": 0, "force_committed": 0}
        self.requests_in_flight: Callable[[], int] = lambda: 0   # set by the node to its RPC server's count

    async def _io(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(*args, **kw))

    # ---- freshness of the routing view -----------------------------------------------------
    def tick(self) -> None:
        """Called by the watchdog: the loop ran recently (unless a stall is pending verification)."""
        if time.monotonic() - self._tick <= self.config.stall_threshold:
            self._tick = time.monotonic()
        else:
            self._start_verify()

    def _start_verify(self) -> asyncio.Task:
        if self._verify is None or self._verify.done():
            self._verify = asyncio.create_task(self._reverify())
            self._verify.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._verify

    async def _reverify(self) -> None:
        log.warning("storage node %d: event loop stalled for %.1fs; refreshing routing before serving",
                    self.node_id, time.monotonic() - self._tick)
        await self.mgmtd.refresh(force=True)
        self._tick = time.monotonic()

    async def ensure_fresh(self) -> None:
        """After a stall (SIGSTOP, frozen VM) the routing view may be stale: refresh it before serving."""
        if time.monotonic() - self._tick > self.config.stall_threshold:
            try:
                await asyncio.shield(self._start_verify())
            except FSError as e:
                raise make_error(Code.ROUTING_VERSION_MISMATCH,
                                 f"storage node {self.node_id} cannot confirm its routing view: {e}") from e

    # ---- routing checks -----------------------------------------------------------------
    async def _target_for(self, chain_id: int, chain_ver: int) -> tuple[Target, Routing]:
        """The local target of `chain_id`, after checking the request's chain version."""
        await self.ensure_fresh()
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
        """A local target by id (TARGET_NOT_FOUND if this node does not hold it)."""
        t = self.targets.get(target_id)
        if t is None:
            raise make_error(Code.TARGET_NOT_FOUND, f"target {target_id} is not on storage node {self.node_id}")
        return t

    @staticmethod
    def _offline(target: Target, what: str) -> FSError:
        return make_error(Code.TARGET_OFFLINE, f"target {target.target_id} is "
                          f"{cpb.LocalTargetState.Name(target.local_state)} locally; cannot {what}")

    # ---- local target states ---------------------------------------------------------------
    def apply_routing(self, routing: Routing) -> None:
        """Move local states by what the routing info says about each target (target_state rules)."""
        changed = False
        for t in self.targets.values():
            info = routing.targets.get(t.target_id)
            public = None
            if info is not None and info.chain_id and info.chain_id in routing.chains:
                public = routing.public_state(info.chain_id, t.target_id)
            new = next_local_state(t.local_state, public, sticky=t.sticky_offline, draining=t.inflight > 0)
            if new == t.local_state:
                continue
            if t.local_state == cpb.ONLINE and new == cpb.UPTODATE:
                if not t.promoting:
                    t.promoting = True
                    task = asyncio.get_running_loop().create_task(self._promote(t))
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                continue
            log.info("target %d: local %s -> %s (public %s)", t.target_id, cpb.LocalTargetState.Name(t.local_state),
                     cpb.LocalTargetState.Name(new), cpb.PublicTargetState.Name(public) if public else "none")
            t.local_state = new
            changed = True
        if changed:
            self._local_changed()
        self.resyncer.poke()

    def _local_changed(self) -> None:
        """Tell the node (heartbeat at once) that a local state changed."""
        for cb in self.on_local_change:
            cb()

    async def _promote(self, t: Target) -> None:
        """ONLINE target seen SERVING (e.g. a returning LASTSRV): force-commit pending versions, UPTODATE."""
        try:
            metas = await self._io(t.engine.metas)
            n = 0
            for m in metas:
                if m.commit_ver != m.update_ver or m.state != spb.COMMIT:
                    async with self.locks.hold(m.chunk_id):
                        await self._io(t.engine.commit, m.chunk_id, m.update_ver, m.chain_ver, force=True)
                    n += 1
            self.stats["force_committed"] += n
            if t.local_state == cpb.ONLINE:
                info = self.mgmtd.routing.targets.get(t.target_id)
                if info is not None and self.mgmtd.routing.public_state(info.chain_id, t.target_id) == cpb.SERVING:
                    log.info("target %d: SERVING while ONLINE: force-committed %d pending chunks, now UPTODATE",
                             t.target_id, n)
                    t.local_state = cpb.UPTODATE
                    self._local_changed()
        except FSError as e:
            log.warning("target %d: force-commit of pending chunks failed: %s", t.target_id, e)
        finally:
            t.promoting = False

    def set_offline(self, t: Target, why: str, *, sticky: bool) -> None:
        """Take a local target out of service (sticky: until the process restarts, e.g. offline-target)."""
        if t.local_state != cpb.LOCAL_OFFLINE or (sticky and not t.sticky_offline):
            log.warning("target %d goes OFFLINE: %s", t.target_id, why)
        t.local_state = cpb.LOCAL_OFFLINE
        t.sticky_offline = t.sticky_offline or sticky
        self._local_changed()

    # ---- the update path ----------------------------------------------------------------
    async def Write(self, req: spb.WriteReq, payload: memoryview | None):
        return await self.write(req, payload), None

    async def write(self, req: spb.WriteReq, payload: memoryview | None) -> spb.WriteRsp:
        """Apply a client write (at the head) or a forwarded update, then forward and commit."""
        io = req.io
        target, routing = await self._target_for(io.chain_id, io.chain_ver)
        data = payload if payload is not None else memoryview(b"")
        tag = req.tag
        if req.from_client:
            if target.local_state != cpb.UPTODATE:
                raise self._offline(target, "take client writes")
            if routing.head(io.chain_id) != target.target_id:
                raise make_error(Code.NOT_HEAD, f"target {target.target_id} is not the head of chain {io.chain_id}")
            key = (bytes(tag.client_id), io.chain_id, tag.channel_id)
            return await self.client_updates.run(key, tag.seqnum, lambda: self._locked_update(target, req, data))
        state = routing.public_state(io.chain_id, target.target_id)
        if state not in (cpb.SERVING, cpb.SYNCING) or target.local_state == cpb.LOCAL_OFFLINE:
            raise make_error(Code.TARGET_OFFLINE, f"target {target.target_id} is {cpb.PublicTargetState.Name(state)}"
                             f"/{cpb.LocalTargetState.Name(target.local_state)}")
        key = (bytes(tag.client_id), io.chain_id, tag.channel_id, bytes(io.chunk_id))
        return await self.forwarded_updates.run(key, tag.seqnum, lambda: self._locked_update(target, req, data),
                                                version=io.update_ver * 2 + io.is_syncing)

    async def _locked_update(self, target: Target, req: spb.WriteReq, data: memoryview) -> spb.WriteRsp:
        """Run one update under its chunk lock (every replica applies a chunk's updates in head order)."""
        io = req.io
        target.inflight += 1
        try:
            async with self.locks.hold(io.chunk_id):
                await self._target_for(io.chain_id, io.chain_ver)   # re-check after waiting for the lock
                if target.local_state == cpb.LOCAL_OFFLINE:
                    raise self._offline(target, "apply updates")
                try:
                    return await self._update_locked(target, req, data)
                except FSError as e:
                    if e.code == Code.IO_ERROR:       # a failing disk: out of service until a restart
                        self.set_offline(target, f"I/O error: {e.strerror}", sticky=True)
                    raise
        finally:
            target.inflight -= 1

    async def _update_locked(self, target: Target, req: spb.WriteReq, data: memoryview) -> spb.WriteRsp:
        """Apply the update as a pending version by the §4.4 version rules, then forward and commit."""
        io = req.io
        eng = target.engine
        meta = eng.get(io.chunk_id)   # a RocksDB point lookup: cheaper than a thread hop
        full_replace = io.is_syncing
        if req.from_client:
            if io.create_only and meta is not None and not meta.removing:
                raise make_error(Code.EXISTS, f"chunk {io.chunk_id.hex()} exists (create-only write)")
            commit_ver = meta.commit_ver if meta else 0
            update_ver = commit_ver + 1
            # A pending version left by a failed earlier update: discard it and push this update
            # down the chain as a full-chunk replacement, so every replica ends identical.
            leftover = meta is not None and (meta.update_ver != meta.commit_ver or meta.state != spb.COMMIT)
        else:
            update_ver = io.update_ver
            leftover = False
            if meta is not None and not full_replace:
                if update_ver <= meta.commit_ver:      # already committed here: stale duplicate
                    return self._rsp(meta, chain_ver=io.chain_ver)
                if update_ver == meta.update_ver and meta.update_ver != meta.commit_ver:
                    return await self._forward_and_commit(target, req, data, meta, update_ver)
        kw = {"update_ver": update_ver, "chain_ver": io.chain_ver, "kind": io.type, "offset": io.offset,
              "length": io.length, "chunk_size": io.chunk_size, "client_id": req.tag.client_id,
              "request_id": req.tag.request_id}
        if io.type == spb.WRITE:
            kw.update(data=data, data_crc=io.checksum)
        if leftover:
            await self._io(eng.abort, io.chunk_id)
        else:
            kw["current"] = meta   # read above under the chunk lock
        if len(data) >= DIRECT_MIN:
            if self.mgmtd.routing.cache_replica(io.chain_id, io.chunk_id) != target.target_id:
                kw["direct"] = True    # another replica keeps this chunk in memory and serves its reads
            elif len(data) > SMALL_READ:
                kw["keep_mapped"] = True   # this one does: its reads are served from a mapping (read_view)
        if len(data) <= INLINE_UPDATE and (meta is None or meta.size <= INLINE_UPDATE):
            # A small update (a new small file's chunk, a short append) costs less than the hop to an
            # I/O thread and back (futex wake-ups and GIL hand-offs): it runs on the loop.
            new = eng.update(io.chunk_id, full_replace=full_replace, **kw)
        else:
            new = await self._io(eng.update, io.chunk_id, full_replace=full_replace, **kw)
        return await self._forward_and_commit(target, req, data, new, update_ver, force_replace=leftover)

    async def _forward_and_commit(self, target: Target, req: spb.WriteReq, data: memoryview,
                                  pending: spb.ChunkMeta, update_ver: int, *, force_replace: bool = False) -> spb.WriteRsp:
        """Forward pending version `update_ver` to the successor (retrying through failures), then commit."""
        io = req.io
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.forward_retry_total
        delay = self.config.forward_first_delay
        replace = force_replace or io.is_syncing
        while True:
            routing = self.mgmtd.routing
            chain = routing.chains.get(io.chain_id)
            me = routing.public_state(io.chain_id, target.target_id) if chain is not None else cpb.PUBLIC_INVALID
            if me not in (cpb.SERVING, cpb.SYNCING) or target.local_state == cpb.LOCAL_OFFLINE:
                raise make_error(Code.TARGET_OFFLINE, f"target {target.target_id} left chain {io.chain_id} "
                                 f"while forwarding chunk {io.chunk_id.hex()}")
            chain_ver = chain.chain_version
            succ = routing.successor(io.chain_id, target.target_id)
            if succ is None:
                break
            full = replace or routing.public_state(io.chain_id, succ) == cpb.SYNCING
            try:
                rsp = await self._forward(routing, target, succ, req, data, pending, update_ver, chain_ver, full)
            except FSError as e:
                if e.code in NEEDS_FULL_REPLACE and not full:
                    log.warning("chunk %s: successor %d answered %s to update %d; resending it whole",
                                io.chunk_id.hex(), succ, e.code.name, update_ver)
                    self.stats["full_replace_fallbacks"] += 1
                    replace = True
                    continue
                if e.code not in FORWARD_RETRYABLE or loop.time() + delay > deadline:
                    raise
                self.stats["forward_retries"] += 1
                log.info("forward of chunk %s v%d to target %d failed (%s); retrying in %.2fs",
                         io.chunk_id.hex(), update_ver, succ, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.forward_max_delay)
                try:
                    await self.mgmtd.refresh_if_older(routing.version)
                except FSError:
                    pass
                continue
            if not pending.removing and rsp.checksum != pending.pending_checksum:
                raise make_error(Code.CHECKSUM_MISMATCH,
                                 f"chunk {io.chunk_id.hex()}: successor {succ} checksum {rsp.checksum:#x} != {pending.pending_checksum:#x}")
            break
        commit_chain_ver = io.commit_chain_ver if io.is_syncing and io.commit_chain_ver else chain_ver
        if (pending.commit_ver == 0 and not pending.removing) or max(pending.size, pending.pending_size) <= INLINE_UPDATE:
            # a first version (one metadata put, no old file to unlink) or a small chunk: on the loop
            committed = target.engine.commit(io.chunk_id, update_ver, commit_chain_ver)
        else:
            committed = await self._io(target.engine.commit, io.chunk_id, update_ver, commit_chain_ver)
        if committed is None:   # removal committed
            return spb.WriteRsp(commit_ver=update_ver, update_ver=update_ver, commit_chain_ver=chain_ver)
        return self._rsp(committed, chain_ver=chain_ver)

    async def _forward(self, routing: Routing, target: Target, succ: int, req: spb.WriteReq, data: memoryview,
                       pending: spb.ChunkMeta, update_ver: int, chain_ver: int, full: bool) -> spb.WriteRsp:
        """One forward of the pending version to `succ` (whole chunk if `full`)."""
        io = req.io
        fwd = spb.WriteReq()
        fwd.CopyFrom(req)
        fwd.from_client = False
        fwd.io.update_ver = update_ver
        fwd.io.chain_ver = chain_ver
        payload: memoryview | bytes = data
        if full:
            fwd.io.is_syncing = True
            fwd.io.commit_chain_ver = io.commit_chain_ver if io.is_syncing else 0
            if pending.removing:
                fwd.io.type = spb.REMOVE
                payload = b""
            else:
                content = bytearray(pending.pending_size)
                n, _ = await self._io(target.engine.read, io.chunk_id, 0, len(content), memoryview(content),
                                      relaxed=True)
                payload = memoryview(content)[:n]
                fwd.io.type = spb.WRITE
                fwd.io.offset = 0
                fwd.io.length = n
                fwd.io.checksum = pending.pending_checksum
        return await self.call_fenced(routing, io.chain_id, routing.target_address(succ), f"{SERVICE}.Write", fwd,
                                      spb.WriteRsp, payload=payload, timeout=self.config.forward_timeout)

    async def call_fenced(self, routing: Routing, chain_id: int, address: str, method: str, req, rsp_type, **kw):
        """An RPC to a peer replica, abandoned once the chain is reconfigured (threefs.storage.fencing)."""
        rsp, _ = await call_fenced(self.rpc, self.mgmtd, routing, {chain_id}, address, method, req, rsp_type, **kw)
        return rsp

    @staticmethod
    def _rsp(meta: spb.ChunkMeta, *, chain_ver: int) -> spb.WriteRsp:
        return spb.WriteRsp(length=meta.size, commit_ver=meta.commit_ver, update_ver=meta.update_ver,
                            checksum=meta.checksum, commit_chain_ver=chain_ver)

    # ---- resync ---------------------------------------------------------------------------
    async def sync_one(self, target: Target, chain_id: int, chain_ver: int, succ: int, chunk_id: bytes) -> None:
        """Send one chunk to the syncing successor as it is now (full replace, or remove if gone)."""
        async with self.locks.hold(chunk_id):
            routing = self.mgmtd.routing
            chain = routing.chains.get(chain_id)
            if (chain is None or chain.chain_version != chain_ver
                    or routing.successor(chain_id, target.target_id) != succ):
                raise make_error(Code.ROUTING_VERSION_MISMATCH, f"chain {chain_id} changed during resync")
            meta = await self._io(target.engine.get, chunk_id)
            io = spb.UpdateIO(chain_id=chain_id, chain_ver=chain_ver, chunk_id=chunk_id, is_syncing=True,
                              chunk_size=max(meta.size if meta else 0, 1))
            payload: memoryview | bytes = b""
            if meta is None or meta.commit_ver == 0:
                io.type = spb.REMOVE
                io.update_ver = 1
            else:
                content = bytearray(meta.size)
                n, got = await self._io(target.engine.read, chunk_id, 0, meta.size, memoryview(content))
                if got.commit_ver != meta.commit_ver:
                    raise make_error(Code.CHUNK_NOT_COMMIT, f"chunk {chunk_id.hex()} changed during resync")
                payload = memoryview(content)[:n]
                io.type = spb.WRITE
                io.update_ver = meta.commit_ver
                io.length = n
                io.checksum = meta.checksum
                io.commit_chain_ver = meta.chain_ver
                io.chunk_size = max(n, 1)
            req = spb.WriteReq(io=io, from_client=False)
            rsp = await self.call_fenced(routing, chain_id, routing.target_address(succ), f"{SERVICE}.Write", req,
                                         spb.WriteRsp, payload=payload, timeout=self.config.forward_timeout)
            if io.type == spb.WRITE and rsp.checksum != meta.checksum:
                raise make_error(Code.CHECKSUM_MISMATCH, f"resync of chunk {chunk_id.hex()}: target {succ} "
                                 f"has checksum {rsp.checksum:#x}, expected {meta.checksum:#x}")

    async def _syncing_target(self, chain_id: int, chain_ver: int, target_id: int) -> Target:
        """The local target `target_id`, which must be SYNCING in chain `chain_id` at `chain_ver`."""
        target, routing = await self._target_for(chain_id, chain_ver)
        if target.target_id != target_id:
            raise make_error(Code.TARGET_NOT_FOUND, f"target {target_id} is not on storage node {self.node_id}")
        state = routing.public_state(chain_id, target_id)
        if state != cpb.SYNCING or target.local_state == cpb.LOCAL_OFFLINE:
            raise make_error(Code.TARGET_OFFLINE, f"target {target_id} is {cpb.PublicTargetState.Name(state)}/"
                             f"{cpb.LocalTargetState.Name(target.local_state)}, not syncing")
        return target

    async def SyncStart(self, req: spb.SyncStartReq, payload):
        """Resync step 1 on the syncing target: the metadata of all its chunks."""
        target = await self._syncing_target(req.chain_id, req.chain_ver, req.target_id)
        metas = await self._io(target.engine.metas)
        return spb.SyncStartRsp(metas=metas), None

    async def SyncDone(self, req: spb.SyncDoneReq, payload):
        """Resync's last step: the syncing target is UPTODATE (reported at once; mgmtd makes it SERVING)."""
        target = await self._syncing_target(req.chain_id, req.chain_ver, req.target_id)
        if target.local_state != cpb.UPTODATE:
            log.info("target %d: resync of chain %d done, now UPTODATE", target.target_id, req.chain_id)
            target.local_state = cpb.UPTODATE
            self._local_changed()
        return spb.SyncDoneRsp(), None

    async def OfflineTarget(self, req: spb.OfflineTargetReq, payload):
        """Admin offline-target: the target stops serving until this process restarts."""
        t = self._target(req.target_id)
        self.set_offline(t, "offline-target request", sticky=True)
        return spb.OfflineTargetRsp(local_state=t.local_state), None

    async def DropMappings(self, req: spb.DropMappingsReq, payload):
        """Admin drop-cache: unmap every chunk kept mapped (recently written or read), so that the kernel
        may drop their pages (it keeps mapped pages through `echo 3 > /proc/sys/vm/drop_caches`)."""
        released = sum(t.engine.release_mappings() for t in self.targets.values()
                       if not isinstance(t.engine, UnavailableEngine))
        return spb.DropMappingsRsp(released=released), None

    # ---- reads ---------------------------------------------------------------------------
    async def BatchRead(self, req: spb.BatchReadReq, payload):
        """Serve page-cache hits in order on the loop, then the reads that need the disk concurrently."""
        results: list[tuple[spb.ReadResult, memoryview | None] | None] = []
        slow: list[int] = []
        for io in req.ios:
            res = await self._read_one(io, nowait=True)
            if res is None:
                slow.append(len(results))
            results.append(res)
        if len(slow) == 1:          # one read from the disk (a random read): no task and gather around it
            io = req.ios[slow[0]]
            # Alone on an idle node, a small disk read runs right here: the hop to an I/O thread and
            # back costs ~150 us on these VMs, half of a cold 128 KiB read. Nothing else waits meanwhile.
            inline = io.length <= SMALL_READ and self.requests_in_flight() <= 1
            results[slow[0]] = await self._read_one(io, nowait=False, inline=inline)
        elif slow:
            done = await asyncio.gather(*(self._read_one(req.ios[i], nowait=False) for i in slow))
            for i, res in zip(slow, done):
                results[i] = res
        rsp = spb.BatchReadRsp()
        out: list[memoryview] = []
        for res, data in results:
            rsp.results.append(res)
            if data is not None:
                out.append(data)
        return rsp, out

    async def _read_one(self, io: spb.ReadIO, *, nowait: bool,
                        inline: bool = False) -> tuple[spb.ReadResult, memoryview | None] | None:
        """One read; with `nowait`, None when it needs the disk (then it is retried on an I/O thread,
        or with `inline` on the event loop)."""
        try:
            target, routing = await self._target_for(io.chain_id, io.chain_ver)
            if routing.public_state(io.chain_id, target.target_id) != cpb.SERVING:
                raise make_error(Code.TARGET_OFFLINE, f"target {target.target_id} is not serving")
            if target.local_state != cpb.UPTODATE:
                raise self._offline(target, "serve reads")
            if nowait:  # a page-cache hit costs less than the hop to a thread
                try:
                    if not io.relaxed and io.length > SMALL_READ:  # committed bytes: sent straight from the page cache
                        view, meta = target.engine.read_view(io.chunk_id, io.offset, io.length)
                        return self._read_result(meta, len(view)), view
                    buf = uninitialized_bytearray(io.length)  # only the n bytes read are sent
                    n, meta = target.engine.read(io.chunk_id, io.offset, io.length, memoryview(buf),
                                                 relaxed=io.relaxed, nowait=True)
                except WouldBlock:
                    return None
            else:
                if self.config.direct_reads and not io.relaxed and io.length > SMALL_READ:   # skips the page cache
                    got = await self._io(target.engine.read_direct, io.chunk_id, io.offset, io.length)
                    if got is not None:
                        return self._read_result(got[1], len(got[0])), got[0]
                buf = uninitialized_bytearray(io.length)
                args = (io.chunk_id, io.offset, io.length, memoryview(buf))
                n, meta = (target.engine.read(*args, relaxed=io.relaxed) if inline
                           else await self._io(target.engine.read, *args, relaxed=io.relaxed))
            return self._read_result(meta, n), memoryview(buf)[:n]
        except FSError as e:
            return spb.ReadResult(status=int(e.code)), None

    @staticmethod
    def _read_result(meta: spb.ChunkMeta, n: int) -> spb.ReadResult:
        return spb.ReadResult(status=0, length=n, commit_ver=meta.commit_ver, chunk_size=meta.size,
                              checksum=meta.checksum)

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
        if target.local_state != cpb.UPTODATE:
            raise self._offline(target, "remove chunks")
        if routing.head(req.chain_id) != target.target_id:
            raise make_error(Code.NOT_HEAD, f"target {target.target_id} is not the head of chain {req.chain_id}")
        key = (bytes(req.tag.client_id), req.chain_id, req.tag.channel_id)
        rsp = await self.client_updates.run(key, req.tag.seqnum, lambda: self._remove_chunks(target, req))
        return rsp, None

    async def _remove_chunks(self, target: Target, req: spb.RemoveChunksReq) -> spb.RemoveChunksRsp:
        limit = req.max_num or 32
        metas = await self._io(target.engine.metas, req.begin, req.end, limit=limit + 1)
        removed = 0
        for m in metas[:limit]:
            w = spb.WriteReq(from_client=True, tag=req.tag)
            w.io.CopyFrom(spb.UpdateIO(chain_id=req.chain_id, chain_ver=req.chain_ver, chunk_id=m.chunk_id,
                                       type=spb.REMOVE))
            await self._locked_update(target, w, memoryview(b""))
            removed += 1
        return spb.RemoveChunksRsp(removed=removed, more=len(metas) > limit)

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
            await self.call_fenced(routing, req.chain_id, routing.target_address(succ), f"{SERVICE}.SyncChain", fwd,
                                   spb.SyncChainRsp, timeout=self.config.forward_timeout)
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


def open_target(target_id: int, path: str, maps: MapCache, cfg: StorageConfig) -> Target:
    """A target with its chunk engine; one whose store cannot be opened (a failed disk, corrupt metadata)
    stays OFFLINE until the process restarts, and the node serves its other targets (3FS takes a failed
    disk's targets offline the same way). A store locked by another process is a configuration error."""
    try:
        return Target(target_id, Path(path), ChunkEngine(path, target_id, maps=maps, reserved=cfg.reserved_space))
    except (FSError, OSError) as e:
        if isinstance(e, FSError) and e.code == Code.BUSY:
            raise
        reason = e.strerror if isinstance(e, FSError) and e.strerror else str(e)
        log.error("target %d at %s cannot be opened and stays OFFLINE until this node restarts: %s",
                  target_id, path, reason)
        return Target(target_id, Path(path), UnavailableEngine(path, target_id, reason),  # type: ignore[arg-type]
                      sticky_offline=True)


class StorageNode:
    """A storage process: RPC server, chunk engines, heartbeats, routing refresh, resync and watchdog."""

    def __init__(self, node_id: int, target_dirs: dict[int, str], mgmtd_addresses: str | list[str], *,
                 host: str = "127.0.0.1", port: int = 0, heartbeat_interval: float = 1.0,
                 io_threads: int = 8, config: StorageConfig | None = None) -> None:
        self.node_id = node_id
        self.host, self.port = host, port
        self.heartbeat_interval = heartbeat_interval
        self.mgmtd = MgmtdClient(mgmtd_addresses)
        self.rpc = RpcClient()
        cfg = config or StorageConfig()
        maps = MapCache(cfg.mapped_chunks)     # one for all targets (map_cache)
        targets = [open_target(tid, p, maps, cfg) for tid, p in sorted(target_dirs.items())]
        if all(isinstance(t.engine, UnavailableEngine) for t in targets):
            raise make_error(Code.IO_ERROR, "no target of this node can be opened: "
                             + "; ".join(t.engine.reason for t in targets))
        self.service = StorageService(node_id, targets, self.mgmtd, self.rpc, io_threads=io_threads, config=config)
        self.server = RpcServer(host, port)
        self.server.register_service(SERVICE, self.service, METHODS)
        self.service.requests_in_flight = lambda: self.server.in_flight
        self._tasks: list[asyncio.Task] = []
        self._hb_version = 0
        self._hb_wake: asyncio.Event | None = None

    async def start(self) -> str:
        self._hb_wake = asyncio.Event()
        self.service.on_local_change.append(self._hb_wake.set)
        self.address = await self.server.start()
        try:
            await self.mgmtd.refresh(force=True)
        except FSError as e:
            log.warning("mgmtd not reachable yet (will keep trying): %s", e)
        # Every target starts OFFLINE: it rejoins once routing info shows mgmtd has taken it out of its chain.
        self.service.apply_routing(self.mgmtd.routing)
        self.mgmtd.listeners.append(self.service.apply_routing)
        try:
            await self._heartbeat()
        except FSError as e:
            log.warning("first heartbeat failed (will keep trying): %s", e)
        self.mgmtd.start_polling(self.heartbeat_interval)
        self._tasks.append(asyncio.create_task(self._heartbeat_loop()))
        self._tasks.append(asyncio.create_task(self.service.resyncer.run()))
        self._tasks.append(asyncio.create_task(self._watchdog()))
        log.info("storage node %d serving on %s", self.node_id, self.address)
        return self.address

    async def _heartbeat(self) -> None:
        self._hb_version += 1
        req = mpb.HeartbeatReq(node_id=self.node_id, type=cpb.STORAGE, address=self.address,
                               hostname=socket.gethostname(), pid=os.getpid(), hb_version=self._hb_version,
                               timestamp_ms=int(time.time() * 1000))
        routing = self.mgmtd.routing
        for t in self.service.targets.values():
            info = routing.targets.get(t.target_id)
            chain = routing.chains.get(info.chain_id) if info else None
            req.targets.append(mpb.LocalTargetReport(
                target_id=t.target_id, local_state=t.local_state, disk_index=t.disk_index,
                chain_version=chain.chain_version if chain else 0))
        # A heartbeat stuck on a reconnecting channel must not outlive the next one (mgmtd restarts).
        rsp = await self.mgmtd.heartbeat(req, timeout=max(0.5, min(5.0, 2 * self.heartbeat_interval)))
        if rsp.routing_version > self.mgmtd.routing.version:
            await self.mgmtd.refresh()

    async def _heartbeat_loop(self) -> None:
        assert self._hb_wake is not None
        while True:
            try:
                await asyncio.wait_for(self._hb_wake.wait(), self.heartbeat_interval)
            except TimeoutError:
                pass
            self._hb_wake.clear()
            self.service.apply_routing(self.mgmtd.routing)     # e.g. drained targets may rejoin now
            try:
                await self._heartbeat()
            except FSError as e:
                log.warning("heartbeat to mgmtd failed: %s", e)
            except Exception:
                log.exception("heartbeat to mgmtd failed")

    async def _watchdog(self) -> None:
        """Tick every 100 ms; a longer gap means the process was stopped or frozen (see ensure_fresh)."""
        while True:
            await asyncio.sleep(0.1)
            self.service.tick()

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await self.service.resyncer.stop()
        await self.server.stop()
        await self.rpc.close()
        await self.mgmtd.close()
        self.service.pool.shutdown(wait=True)
        for t in self.service.targets.values():
            t.engine.close()
