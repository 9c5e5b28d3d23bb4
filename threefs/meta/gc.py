"""Background garbage collection of unlinked files and recursively removed directories.

Entries under the GC root name an inode whose last link is gone. Files: once no write session
remains, their chunks are removed from every chain of the stripe, then the inode and the entry go
in one transaction. Directories: children are unlinked (files queued, subdirectories queued as
directories) a page at a time until empty, then the directory inode is deleted.
"""
from __future__ import annotations

import asyncio
import logging

from threefs.common import placement
from threefs.common.errors import FSError
from threefs.kv import keys
from threefs.kv.engine import Transaction, run_txn
from threefs.meta.length import file_chains
from threefs.meta.ops.context import MetaContext
from threefs.meta.ops.remove import drop_link
from threefs.meta.schema import (DIRECTORY, GC_ROOT_ID, delete_dirent, delete_inode, list_dirents, load_dirent,
                                 load_inode, session_prefix)
from threefs.proto import meta_pb2 as mp

log = logging.getLogger(__name__)


class GarbageCollector:
    """Runs GC passes periodically; `run_once` is also used by tests and `admin gc`."""

    def __init__(self, ctx: MetaContext, *, interval: float = 0.5, batch: int = 256, concurrency: int = 8) -> None:
        self.ctx = ctx
        self.interval = interval
        self.batch = batch
        self.sem = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task | None = None
        self.removed_files = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except FSError as e:
                log.warning("gc pass failed: %s", e)
            except Exception:  # noqa: BLE001 - the collector must keep running
                log.exception("gc pass crashed")
            await asyncio.sleep(self.interval)

    async def pending(self) -> list[mp.DirEntry]:
        async def fn(txn: Transaction):
            return await list_dirents(txn, GC_ROOT_ID, "", self.batch)

        return await run_txn(self.ctx.kv, fn)

    async def run_once(self) -> int:
        """One pass over the GC queue; returns how many entries were finished."""
        entries = await self.pending()

        async def one(e: mp.DirEntry) -> int:
            async with self.sem:
                return await (self._collect_dir(e) if e.type == DIRECTORY else self._collect_file(e))

        return sum(await asyncio.gather(*(one(e) for e in entries)))

    async def _collect_file(self, e: mp.DirEntry) -> int:
        async def read(txn: Transaction):
            sessions = await txn.get_range(session_prefix(e.id), keys.prefix_end(session_prefix(e.id)), limit=1)
            return await load_inode(txn, e.id, snapshot=True), bool(sessions)

        inode, busy = await run_txn(self.ctx.kv, read)
        if busy:
            return 0
        if inode is not None and inode.layout.WhichOneof("chains") is not None:
            begin, end = placement.chunk_range(inode.id)
            for chain in file_chains(self.ctx.mgmtd, inode):
                await self.ctx.storage.remove_chunks(chain, begin, end)

        async def finish(txn: Transaction) -> int:
            if await txn.get_range(session_prefix(e.id), keys.prefix_end(session_prefix(e.id)), limit=1):
                return 0    # a writer re-opened it meanwhile (by inode); try again later
            if await load_dirent(txn, GC_ROOT_ID, e.name) is None:
                return 0
            delete_dirent(txn, GC_ROOT_ID, e.name)
            delete_inode(txn, e.id)
            return 1

        done = await run_txn(self.ctx.kv, finish)
        self.removed_files += done
        return done

    async def _collect_dir(self, e: mp.DirEntry) -> int:
        async def step(txn: Transaction) -> int:
            children = await list_dirents(txn, e.id, "", 64, snapshot=False)
            for c in children:
                child = await load_inode(txn, c.id)
                delete_dirent(txn, e.id, c.name)
                if child is not None:
                    await drop_link(txn, child, recursive_dir=child.type == DIRECTORY)
            if children:
                return 0
            delete_dirent(txn, GC_ROOT_ID, e.name)
            delete_inode(txn, e.id)
            return 1

        while True:
            if await run_txn(self.ctx.kv, step):
                return 1
