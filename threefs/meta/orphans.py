"""find-orphaned-chunks: chunks on storage targets whose inode no longer exists (leaked by a crash
between chunk removal and inode deletion, or never collected).

Chunk metadata comes from every target's `GetAllChunkMeta`; inode ids decode from chunk ids. A
file's chunks are removed before its inode is deleted and written only after it is created, so a
chunk without an inode is garbage whenever it is observed.
"""
from __future__ import annotations

import asyncio

from threefs.common import placement
from threefs.common.errors import FSError
from threefs.kv import keys
from threefs.kv.engine import KVEngine
from threefs.mgmtd.client import MgmtdClient
from threefs.net.rpc import RpcClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp
from threefs.proto import storage_pb2 as spb

SCAN_TIMEOUT = 120.0


async def _existing(kv: KVEngine, inode_ids: set[int]) -> set[int]:
    txn = kv.transaction()
    try:
        return {i for i in inode_ids if await txn.snapshot_get(keys.inode_key(i)) is not None}
    finally:
        txn.cancel()


async def find_orphaned_chunks(kv: KVEngine, mgmtd: MgmtdClient, rpc: RpcClient) -> mp.FindOrphanedChunksRsp:
    """Scan every target of every chain; report chunks whose inode is absent."""
    routing = await mgmtd.refresh(force=True)
    rsp = mp.FindOrphanedChunksRsp()
    targets = [t for t in routing.targets.values() if t.chain_id]

    async def scan(t: cpb.TargetInfo):
        try:
            out, _ = await rpc.call(routing.target_address(t.target_id), "Storage.GetAllChunkMeta",
                                    spb.GetAllChunkMetaReq(target_id=t.target_id), spb.GetAllChunkMetaRsp,
                                    timeout=SCAN_TIMEOUT)
            return t, out.metas
        except FSError:
            return t, None

    results = await asyncio.gather(*(scan(t) for t in sorted(targets, key=lambda t: t.target_id)))
    found: list[tuple[cpb.TargetInfo, spb.ChunkMeta, int]] = []
    for t, metas in results:
        if metas is None:
            rsp.unreachable_targets.append(t.target_id)
            continue
        rsp.scanned_targets += 1
        for m in metas:
            rsp.scanned_chunks += 1
            found.append((t, m, placement.parse_chunk_id(m.chunk_id)[0]))
    alive = await _existing(kv, {inode for _, _, inode in found})
    for t, m, inode in found:
        if inode not in alive:
            rsp.chunks.append(mp.OrphanedChunk(target_id=t.target_id, chain_id=t.chain_id, chunk_id=m.chunk_id,
                                               inode=inode, size=m.size))
    return rsp
