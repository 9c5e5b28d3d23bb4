"""The data path of one open file: chunk-split writes to chain heads, batched reads, truncate.

Placement is computed here (DESIGN.md §3.5): chunk ids from (inode, index), chains from the layout
and the chain table pinned in it; large I/O is split per chunk and issued concurrently.
"""
from __future__ import annotations

import asyncio
import os

from threefs.common import placement
from threefs.common.buffers import byte_views, slice_views
from threefs.mgmtd.client import MgmtdClient
from threefs.proto import meta_pb2 as mp
from threefs.storage.client import ReadOp, StorageClient

MAX_INFLIGHT_WRITES = 16


def copy_content(content: bytes | bytearray, offset: int, dest: memoryview, n: int) -> int:
    """Copy `n` bytes at `offset` of an in-memory file content into `dest` (past its end: zeros)."""
    got = memoryview(content)[offset:offset + n]
    dest[:len(got)] = got
    if len(got) < n:
        dest[len(got):n] = bytes(n - len(got))
    return n


class FileIO:
    """Reads and writes of one inode's bytes through the storage chains."""

    def __init__(self, inode: mp.Inode, mgmtd: MgmtdClient, storage: StorageClient) -> None:
        self.inode = inode
        self.mgmtd = mgmtd
        self.storage = storage
        self.chunk_size = inode.layout.chunk_size
        self._chain_indexes: list[int] | None = None     # computed at the first storage I/O (see _indexes)
        self.touched_chains: set[int] = set()
        self._write_sem: asyncio.Semaphore | None = None
        self.inline: bytes | None = None     # the content, when meta keeps it inline (threefs.meta.inline)
        self._table_known = False

    async def ready(self) -> None:
        """Make sure routing info holds this file's chain table: one uploaded since this client's last
        poll is fetched now (chain_of would fail with EINVAL otherwise)."""
        if not self._table_known:
            await self.mgmtd.chain_table(self.inode.layout.table_id, self.inode.layout.table_version)
            self._table_known = True

    @property
    def _indexes(self) -> list[int]:
        """The file's chain-table indexes, in stripe order. Computed on first use: most small files never
        reach storage (meta keeps them inline). A file whose create has not reached meta yet (a deferred
        create) has no chains until it does; no storage I/O happens before (the mount makes the create first)."""
        if self._chain_indexes is None:
            layout = self.inode.layout
            if layout.WhichOneof("chains") is None:
                return []
            self._chain_indexes = placement.chain_indexes(layout)
        return self._chain_indexes

    @property
    def _sem(self) -> asyncio.Semaphore:
        if self._write_sem is None:
            self._write_sem = asyncio.Semaphore(MAX_INFLIGHT_WRITES)
        return self._write_sem

    def chain_of(self, index: int) -> int:
        table = self.mgmtd.routing.table(self.inode.layout.table_id, self.inode.layout.table_version)
        return placement.chain_of(self.inode.layout, index, table.chain_ids, self._indexes)

    def all_chains(self) -> list[int]:
        return sorted({self.chain_of(i) for i in range(len(self._indexes))})

    def _pieces(self, offset: int, length: int):
        """(chunk index, offset in chunk, offset in buffer, length) covering [offset, offset+length)."""
        cs = self.chunk_size
        pos, end = offset, offset + length
        while pos < end:
            idx, off = divmod(pos, cs)
            n = min(cs - off, end - pos)
            yield idx, off, pos - offset, n
            pos += n

    async def write(self, offset: int, data: memoryview | bytes | list) -> int:
        """Write `data` (bytes-like, or a list of them back to back: sent gathered, never joined) at
        `offset`; returns bytes written (all, or an exception)."""
        parts = byte_views(data)
        total = sum(p.nbytes for p in parts)
        await self.ready()

        async def one(idx: int, off: int, boff: int, n: int) -> None:
            chain = self.chain_of(idx)
            self.touched_chains.add(chain)
            piece = slice_views(parts, boff, n)
            async with self._sem:
                await self.storage.write_chunk(chain, placement.chunk_id(self.inode.id, idx), off,
                                               piece[0] if len(piece) == 1 else piece, self.chunk_size)

        await asyncio.gather(*(one(*p) for p in self._pieces(offset, total)))
        return total

    async def write_first_chunk_if_absent(self, data: bytes) -> None:
        """Put `data` (at most one chunk) at offset 0 unless chunk 0 exists already: a small file's inline
        content moving to storage, where an existing chunk holds that content or newer writes."""
        await self.ready()
        chain = self.chain_of(0)
        self.touched_chains.add(chain)
        await self.storage.write_chunk_if_absent(chain, placement.chunk_id(self.inode.id, 0), data, self.chunk_size)

    def read_ops(self, offset: int, dest: memoryview, n: int) -> list[ReadOp]:
        """Chunk reads covering [offset, offset+n) whose dests are slices of `dest` (bytes land in place)."""
        return [ReadOp(self.chain_of(idx), placement.chunk_id(self.inode.id, idx), off, ln, dest[boff:boff + ln])
                for idx, off, boff, ln in self._pieces(offset, n)]

    async def read_into(self, offset: int, dest: memoryview, file_length: int) -> int:
        """Read up to len(dest) bytes at `offset`, clipped to `file_length`; holes read as zeros."""
        n = max(0, min(len(dest), file_length - offset))
        if n == 0:
            return 0
        if self.inline is not None:
            return self.read_inline(offset, dest, n)
        await self.ready()
        ops = self.read_ops(offset, dest, n)
        await self.storage.read(ops)
        for op in ops:
            if op.result < 0:
                raise OSError(-op.result, f"read of chunk {op.chunk_id.hex()} failed: {os.strerror(-op.result)}")
            if op.result < op.length:
                op.dest[op.result:op.length] = bytes(op.length - op.result)
        for op in ops:
            # The read is over. asyncio.gather leaves reference cycles that hold the ops until the cyclic
            # GC runs; released now, their views no longer pin `dest` (a pooled buffer can be reused).
            try:
                op.dest.release()
            except BufferError:
                pass
        return n

    def read_inline(self, offset: int, dest: memoryview, n: int) -> int:
        """Copy `n` bytes at `offset` of the inline content into `dest` (past its end: zeros)."""
        return copy_content(self.inline, offset, dest, n)

    async def truncate(self, length: int, old_length: int) -> None:
        """Client-driven truncate (3FS §2.7): drop whole chunks past the end, trim or extend the last."""
        cs = self.chunk_size
        keep = -(-length // cs)        # chunks that still hold data
        begin = placement.chunk_id(self.inode.id, keep)
        _, end = placement.chunk_range(self.inode.id)
        await self.ready()
        await asyncio.gather(*(self.storage.remove_chunks(c, begin, end) for c in self.all_chains()))
        if length > 0:
            idx = (length - 1) // cs
            chain = self.chain_of(idx)
            self.touched_chains.add(chain)
            await self.storage.truncate_chunk(chain, placement.chunk_id(self.inode.id, idx), length - idx * cs, cs,
                                              only_extend=length > old_length)

    async def sync(self) -> None:
        """Make every chain this handle wrote to durable."""
        chains, self.touched_chains = self.touched_chains, set()
        await asyncio.gather(*(self.storage.sync_chain(c) for c in chains))
