"""File length from storage (3FS §2.7): precise length, and the chunk side of a truncate.

Both run outside any transaction (no storage I/O inside one); the caller then applies the result
with the VersionedLength rules in a transaction (ops/sync.py, ops/truncate.py).
"""
from __future__ import annotations

import asyncio

from threefs.common import placement
from threefs.mgmtd.client import MgmtdClient
from threefs.proto import meta_pb2 as mp
from threefs.storage.client import StorageClient


async def file_chains(mgmtd: MgmtdClient, inode: mp.Inode) -> list[int]:
    """Distinct chain ids a file's chunks may live on."""
    layout = inode.layout
    table = await mgmtd.chain_table(layout.table_id, layout.table_version)
    idx = placement.chain_indexes(layout)
    return sorted({placement.chain_of(layout, i, table.chain_ids, idx) for i in range(len(idx))})


async def chain_of_chunk(mgmtd: MgmtdClient, inode: mp.Inode, index: int) -> int:
    table = await mgmtd.chain_table(inode.layout.table_id, inode.layout.table_version)
    return placement.chain_of(inode.layout, index, table.chain_ids)


async def precise_length(mgmtd: MgmtdClient, storage: StorageClient, inode: mp.Inode) -> int:
    """max over stripe chains of (last chunk index * chunk size + last chunk length)."""
    begin, end = placement.chunk_range(inode.id)
    chains = await file_chains(mgmtd, inode)
    results = await asyncio.gather(*(storage.query_last_chunk(c, begin, end) for c in chains))
    length = 0
    for rsp in results:
        if rsp.found:
            _, _, index = placement.parse_chunk_id(rsp.last_chunk_id)
            length = max(length, index * inode.layout.chunk_size + rsp.last_chunk_len)
    return length


async def truncate_chunks(mgmtd: MgmtdClient, storage: StorageClient, inode: mp.Inode, length: int) -> None:
    """Remove chunks wholly past `length` on every chain, then cut (or extend) the last chunk to it.

    Whether the last chunk grows or shrinks is decided against the precise length on storage, not
    the inode's (which may lag behind writers that have not closed yet).
    """
    current = await precise_length(mgmtd, storage, inode)
    cs = inode.layout.chunk_size
    keep = -(-length // cs)
    begin = placement.chunk_id(inode.id, keep)
    _, end = placement.chunk_range(inode.id)
    await asyncio.gather(*(storage.remove_chunks(c, begin, end) for c in await file_chains(mgmtd, inode)))
    if length > 0:
        idx = (length - 1) // cs
        await storage.truncate_chunk(await chain_of_chunk(mgmtd, inode, idx), placement.chunk_id(inode.id, idx),
                                     length - idx * cs, cs, only_extend=length > current)
