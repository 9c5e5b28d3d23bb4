"""Client of the storage service: chunk writes to chain heads, batched reads from serving replicas.

Used by the file-system client (data path) and by meta (file length, chunk removal). Retries on
routing changes (chain-version mismatch, not head, uncommitted chunk, a dead or hung replica) after
refreshing routing info, within a bounded time, then raises a clear error (ETIMEDOUT or EIO). Every
update holds one of the client's channels for all its retries, so the targets execute it exactly once
(threefs.storage.channels); a call to a replica is abandoned as soon as its chain changes in routing
info, so a hung (SIGSTOPped) replica does not stall the caller until the RPC timeout.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import os
import random
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import crc32c

from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import cache_replica_among
from threefs.net.rpc import RpcClient
from threefs.proto import storage_pb2 as spb
from threefs.storage.channels import ChannelPool
from threefs.storage.fencing import call_fenced

SERVICE = "Storage"
RETRYABLE = {Code.ROUTING_VERSION_MISMATCH, Code.NOT_HEAD, Code.CHUNK_NOT_COMMIT, Code.UNAVAILABLE,
             Code.TARGET_OFFLINE, Code.TARGET_NOT_FOUND, Code.TIMEOUT, Code.CHUNK_NOT_CLEAN,
             Code.NO_SERVING_REPLICA, Code.BUSY}
# Read failures after which the next attempt prefers another serving replica.
SWITCH_REPLICA = {Code.UNAVAILABLE, Code.TIMEOUT, Code.TARGET_OFFLINE, Code.TARGET_NOT_FOUND}
MAX_BATCH_BYTES = 16 << 20
MAX_BATCH_IOS = 128


@dataclass
class ReadOp:
    """One chunk read: where the bytes come from and the buffer they land in."""

    chain_id: int
    chunk_id: bytes
    offset: int
    length: int
    dest: memoryview
    result: int = 0          # bytes read, or -errno once done
    chunk_len: int = -1      # committed chunk length reported by the replica (-1: chunk missing)
    relaxed: bool = False


class StorageClient:
    """Issues storage RPCs with routing-aware retries."""

    def __init__(self, mgmtd: MgmtdClient, rpc: RpcClient, *, retry_timeout: float = 30.0,
                 call_timeout: float = 30.0) -> None:
        self.mgmtd = mgmtd
        self.rpc = rpc
        self.retry_timeout = retry_timeout
        self.call_timeout = call_timeout
        self.client_id = os.urandom(16)
        self._request_ids = itertools.count(1)
        self.channels = ChannelPool()

    @asynccontextmanager
    async def _update_tag(self) -> AsyncIterator[spb.UpdateTag]:
        """The tag of one update: a channel held (and its next seqnum) until the update is done."""
        async with self.channels.hold() as (channel, seqnum):
            yield spb.UpdateTag(client_id=self.client_id, request_id=next(self._request_ids),
                                channel_id=channel, seqnum=seqnum)

    async def _call(self, routing, chain_ids: set[int], address: str, method: str, req, rsp_type, **kw):
        """An RPC abandoned (retryably) once one of `chain_ids` is reconfigured (threefs.storage.fencing)."""
        return await call_fenced(self.rpc, self.mgmtd, routing, chain_ids, address, method, req, rsp_type, **kw)

    async def _retrying(self, what: str, attempt):
        """Run `attempt(routing)` until it succeeds, retrying retryable errors with backoff."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_timeout
        delay = 0.005
        while True:
            routing = self.mgmtd.routing
            try:
                return await attempt(routing)
            except FSError as e:
                if e.code not in RETRYABLE:
                    raise
                if loop.time() + delay > deadline:
                    code = Code.TIMEOUT if e.code in (Code.TIMEOUT, Code.UNAVAILABLE) else Code.IO_ERROR
                    raise make_error(code, f"{what}: gave up after {self.retry_timeout:.0f}s: {e.strerror}") from e
                if e.code != Code.CHUNK_NOT_COMMIT:
                    try:
                        await self.mgmtd.refresh_if_older(routing.version)
                    except FSError:
                        pass
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)

    # ---- writes ------------------------------------------------------------------------
    async def write_chunk(self, chain_id: int, chunk_id: bytes, offset: int, data: memoryview | bytes | list,
                          chunk_size: int, *, create_only: bool = False) -> spb.WriteRsp:
        """Write `data` (bytes-like, or a list of them sent back to back) at `offset` of a chunk through
        the chain (acknowledged after the head commits).

        `create_only`: fail with EXISTS (FSError) when the chunk exists already, instead of writing."""
        if isinstance(data, list):
            checksum = 0
            for part in data:
                checksum = crc32c.crc32c(part, checksum)
            size = sum(memoryview(p).nbytes for p in data)
        else:
            checksum, size = crc32c.crc32c(data), memoryview(data).nbytes
        async with self._update_tag() as tag:
            retry = 0

            async def attempt(routing):
                nonlocal retry
                chain = routing.chain(chain_id)
                head = routing.head(chain_id)
                req = spb.WriteReq(from_client=True, tag=tag, retry=retry, io=spb.UpdateIO(
                    chain_id=chain_id, chain_ver=chain.chain_version, chunk_id=chunk_id, offset=offset,
                    length=size, chunk_size=chunk_size, type=spb.WRITE, checksum=checksum,
                    create_only=create_only))
                retry += 1
                rsp, _ = await self._call(routing, {chain_id}, routing.target_address(head), f"{SERVICE}.Write", req,
                                          spb.WriteRsp, payload=data, timeout=self.call_timeout)
                return rsp

            return await self._retrying(f"write chunk {chunk_id.hex()} on chain {chain_id}", attempt)

    async def write_chunk_if_absent(self, chain_id: int, chunk_id: bytes, data: memoryview | bytes,
                                    chunk_size: int) -> bool:
        """Write `data` at offset 0 of a chunk unless the chunk exists (create-only); False if it did."""
        try:
            await self.write_chunk(chain_id, chunk_id, 0, data, chunk_size, create_only=True)
        except FSError as e:
            if e.code != Code.EXISTS:
                raise
            return False
        return True

    async def truncate_chunk(self, chain_id: int, chunk_id: bytes, length: int, chunk_size: int,
                             only_extend: bool = False) -> int:
        async with self._update_tag() as tag:
            async def attempt(routing):
                chain = routing.chain(chain_id)
                req = spb.TruncateChunkReq(chain_id=chain_id, chain_ver=chain.chain_version, chunk_id=chunk_id,
                                           length=length, chunk_size=chunk_size, only_extend=only_extend, tag=tag)
                rsp, _ = await self._call(routing, {chain_id}, routing.target_address(routing.head(chain_id)),
                                          f"{SERVICE}.TruncateChunk", req, spb.TruncateChunkRsp,
                                          timeout=self.call_timeout)
                return rsp.length

            return await self._retrying(f"truncate chunk {chunk_id.hex()}", attempt)

    async def remove_chunks(self, chain_id: int, begin: bytes, end: bytes) -> int:
        """Remove every chunk with id in [begin, end) from the chain; returns how many."""
        total = 0
        while True:
            async with self._update_tag() as tag:
                async def attempt(routing):
                    chain = routing.chain(chain_id)
                    req = spb.RemoveChunksReq(chain_id=chain_id, chain_ver=chain.chain_version, begin=begin, end=end,
                                              max_num=32, tag=tag)
                    rsp, _ = await self._call(routing, {chain_id}, routing.target_address(routing.head(chain_id)),
                                              f"{SERVICE}.RemoveChunks", req, spb.RemoveChunksRsp,
                                              timeout=self.call_timeout)
                    return rsp

                rsp = await self._retrying(f"remove chunks on chain {chain_id}", attempt)
            total += rsp.removed
            if not rsp.more:
                return total

    async def sync_chain(self, chain_id: int) -> None:
        """Make every acknowledged update on the chain durable on every replica."""

        async def attempt(routing):
            chain = routing.chain(chain_id)
            req = spb.SyncChainReq(chain_id=chain_id, chain_ver=chain.chain_version, from_client=True)
            await self._call(routing, {chain_id}, routing.target_address(routing.head(chain_id)),
                             f"{SERVICE}.SyncChain", req, spb.SyncChainRsp, timeout=self.call_timeout)

        await self._retrying(f"sync chain {chain_id}", attempt)

    # ---- reads -------------------------------------------------------------------------
    async def read(self, ops: list[ReadOp]) -> None:
        """Run the reads, batched per storage node, filling each op's dest and result."""
        pending = list(ops)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_timeout
        delay = 0.002
        bad: dict[int, set[int]] = defaultdict(set)   # op index -> targets that returned corrupt data
        avoid: dict[int, set[int]] = defaultdict(set)  # op index -> targets that just failed (dead, hung, offline)
        index = {id(op): i for i, op in enumerate(ops)}
        while pending:
            routing = self.mgmtd.routing
            groups: dict[str, list[tuple[ReadOp, int]]] = defaultdict(list)
            load: dict[str, int] = defaultdict(int)
            failed: list[tuple[ReadOp, FSError]] = []
            for op in pending:
                try:
                    in_chain = routing.serving(op.chain_id)
                    serving = [t for t in in_chain if t not in bad[index[id(op)]]]
                    if not serving:
                        if bad[index[id(op)]]:
                            raise make_error(Code.CHECKSUM_MISMATCH,
                                             f"chunk {op.chunk_id.hex()}: every replica failed its checksum")
                        raise make_error(Code.NO_SERVING_REPLICA, f"chain {op.chain_id} has no serving replica")
                    serving = [t for t in serving if t not in avoid[index[id(op)]]] or serving
                    owner = cache_replica_among(in_chain, op.chunk_id)
                    if owner in serving:     # the replica that keeps the chunk in memory (the others wrote around it)
                        addr, tid = routing.target_address(owner), owner
                    else:
                        random.shuffle(serving)
                        addrs = [(routing.target_address(t), t) for t in serving]
                        addr, tid = min(addrs, key=lambda a: load[a[0]])
                    load[addr] += op.length
                    groups[addr].append((op, tid))
                except FSError as e:
                    failed.append((op, e))
            batches = []
            for addr, items in groups.items():
                cur: list[tuple[ReadOp, int]] = []
                size = 0
                for item in items:
                    if cur and (size + item[0].length > MAX_BATCH_BYTES or len(cur) >= MAX_BATCH_IOS):
                        batches.append((addr, cur))
                        cur, size = [], 0
                    cur.append(item)
                    size += item[0].length
                if cur:
                    batches.append((addr, cur))
            if len(batches) == 1:     # one node (a small read): no task and gather around it
                outcomes = [await self._batch(routing, *batches[0])]
            else:
                outcomes = await asyncio.gather(*(self._batch(routing, addr, items) for addr, items in batches))
            retry: list[ReadOp] = []
            retry_reason: FSError | None = None
            for (op, err) in failed:
                if err.code in RETRYABLE:
                    retry.append(op)
                    retry_reason = err
                else:
                    op.result = -err.errno
            for items_out in outcomes:
                for op, tid, err in items_out:
                    if err is None:
                        continue
                    if err.code == Code.CHECKSUM_MISMATCH:
                        bad[index[id(op)]].add(tid)
                        retry.append(op)
                    elif err.code in RETRYABLE:
                        if err.code in SWITCH_REPLICA:
                            avoid[index[id(op)]].add(tid)
                        retry.append(op)
                        retry_reason = err
                    else:
                        op.result = -err.errno
            pending = retry
            if pending:
                if loop.time() + delay > deadline:
                    gave_up = (errno.ETIMEDOUT if retry_reason is not None
                               and retry_reason.code in (Code.TIMEOUT, Code.UNAVAILABLE) else errno.EIO)
                    for op in pending:
                        op.result = -gave_up
                    return
                if retry_reason is not None and retry_reason.code != Code.CHUNK_NOT_COMMIT:
                    try:
                        await self.mgmtd.refresh_if_older(routing.version)
                    except FSError:
                        pass
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)
                elif retry_reason is not None:
                    await asyncio.sleep(0.001)

    async def _batch(self, routing, addr: str, items: list[tuple[ReadOp, int]]) -> list[tuple[ReadOp, int, FSError | None]]:
        req = spb.BatchReadReq()
        for op, _ in items:
            chain = routing.chain(op.chain_id)
            req.ios.append(spb.ReadIO(chain_id=op.chain_id, chain_ver=chain.chain_version, chunk_id=op.chunk_id,
                                      offset=op.offset, length=op.length, relaxed=op.relaxed))

        def sink(rsp: spb.BatchReadRsp) -> list[memoryview]:
            return [op.dest[:r.length] for (op, _), r in zip(items, rsp.results) if r.status == 0]

        try:
            rsp, _ = await self._call(routing, {op.chain_id for op, _ in items}, addr, f"{SERVICE}.BatchRead", req,
                                      spb.BatchReadRsp, sink=sink, timeout=self.call_timeout)
        except FSError as e:
            return [(op, tid, e) for op, tid in items]
        out: list[tuple[ReadOp, int, FSError | None]] = []
        for (op, tid), r in zip(items, rsp.results):
            if r.status == 0:
                op.result = r.length
                op.chunk_len = r.chunk_size
                out.append((op, tid, None))
            elif r.status == Code.CHUNK_NOT_FOUND:
                op.result = 0
                op.chunk_len = -1
                out.append((op, tid, None))
            else:
                out.append((op, tid, make_error(r.status, f"read of chunk {op.chunk_id.hex()} from target {tid}")))
        return out

    # ---- queries -----------------------------------------------------------------------
    async def query_last_chunk(self, chain_id: int, begin: bytes, end: bytes) -> spb.QueryLastChunkRsp:
        async def attempt(routing):
            chain = routing.chain(chain_id)
            req = spb.QueryLastChunkReq(chain_id=chain_id, chain_ver=chain.chain_version, begin=begin, end=end)
            target = routing.serving(chain_id)[-1] if routing.serving(chain_id) else routing.head(chain_id)
            rsp, _ = await self._call(routing, {chain_id}, routing.target_address(target),
                                      f"{SERVICE}.QueryLastChunk", req, spb.QueryLastChunkRsp,
                                      timeout=self.call_timeout)
            return rsp

        return await self._retrying(f"query last chunk on chain {chain_id}", attempt)

    async def query_chunk(self, target_id: int, chunk_id: bytes) -> spb.QueryChunkRsp:
        addr = self.mgmtd.routing.target_address(target_id)
        rsp, _ = await self.rpc.call(addr, f"{SERVICE}.QueryChunk", spb.QueryChunkReq(target_id=target_id, chunk_id=chunk_id),
                                     spb.QueryChunkRsp, timeout=self.call_timeout)
        return rsp

    async def space_info(self, address: str) -> spb.SpaceInfoRsp:
        rsp, _ = await self.rpc.call(address, f"{SERVICE}.SpaceInfo", spb.SpaceInfoReq(), spb.SpaceInfoRsp,
                                     timeout=self.call_timeout)
        return rsp
