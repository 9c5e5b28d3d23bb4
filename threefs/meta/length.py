"""Precise file length from storage: the last chunk on every chain of the file's stripe (3FS §2.7)."""
from __future__ import annotations

import asyncio

from threefs.common import placement
from threefs.mgmtd.client import MgmtdClient
from threefs.proto import meta_pb2 as mp
from threefs.storage.client import StorageClient


def file_chains(mgmtd: MgmtdClient, inode: mp.Inode) -> list[int]:
    """Distinct chain ids a file's chunks may live on."""
    layout = inode.layout
    table = mgmtd.routing.table(layout.table_id, layout.table_version)
    idx = placement.chain_indexes(layout)
    return sorted({placement.chain_of(layout, i, table.chain_ids, idx) for i in range(len(idx))})


async def precise_length(mgmtd: MgmtdClient, storage: StorageClient, inode: mp.Inode) -> int:
    """max over stripe chains of (last chunk index * chunk size + last chunk length)."""
    begin, end = placement.chunk_range(inode.id)
    results = await asyncio.gather(*(storage.query_last_chunk(c, begin, end) for c in file_chains(mgmtd, inode)))
    length = 0
    for rsp in results:
        if rsp.found:
            _, _, index = placement.parse_chunk_id(rsp.last_chunk_id)
            length = max(length, index * inode.layout.chunk_size + rsp.last_chunk_len)
    return length
