"""Background garbage collection of unlinked files and recursively removed directory trees (3FS §2.9).

Each pass reads the due prefix of every kind in the GC queue (gc_queue.py). A file is collected
only when no write session is open on it (else its entry is re-queued `retry_delay` later): its
chunks are removed from every chain of its stripe, then one transaction deletes the inode and the
entry. A directory's children are unlinked a page per transaction (files and subdirectories go to
the queue themselves), then the directory inode and its entry are deleted. With several meta
servers, an entry is collected by its rendezvous-hash owner among the live meta servers, or by
anyone once it is `takeover` seconds overdue; collecting the same entry twice is harmless.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from threefs.common import placement
from threefs.common.periodic import PeriodicWorker
from threefs.kv import keys
from threefs.kv.engine import Transaction, run_txn
from threefs.meta.gc_queue import KINDS, drop_link, entry_name, parse_entry_name
from threefs.meta.length import file_chains
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import (
    GC_ROOT_ID,
    delete_dirent,
    delete_inode,
    list_dirents,
    load_dirent,
    load_inode,
    store_dirent,
)
from threefs.meta.sessions import has_sessions
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

log = logging.getLogger(__name__)
DIR_PAGE = 64


def _now_us() -> int:
    return time.time_ns() // 1000


class GarbageCollector(PeriodicWorker):
    """Runs GC passes periodically; `run_once`/`drain` also serve the admin `gc-run` command."""

    name = "gc"

    def __init__(self, ctx: MetaContext, *, interval: float = 0.5, delay: float = 0.0, retry_delay: float = 5.0,
                 takeover: float = 30.0, batch: int = 256, file_concurrency: int = 16,
                 dir_concurrency: int = 4) -> None:
        self.ctx = ctx
        super().__init__(interval)
        self.delay_us = int(delay * 1e6)
        self.retry_delay_us = int(retry_delay * 1e6)
        self.takeover_us = int(takeover * 1e6)
        self.batch = batch
        self.file_sem = asyncio.Semaphore(file_concurrency)
        self.dir_sem = asyncio.Semaphore(dir_concurrency)
        self._pass = asyncio.Lock()
        self.collected_files = 0
        self.collected_dirs = 0
        self.postponed = 0

    async def entries(self, limit: int = 0, *, due_only: bool = False) -> list[mp.DirEntry]:
        """Queued entries (only those due for collection with `due_only`), kind by kind."""
        cutoff = _now_us() - self.delay_us

        async def read(txn: Transaction) -> list[mp.DirEntry]:
            out: list[mp.DirEntry] = []
            for kind in KINDS:
                begin = keys.dirent_key(GC_ROOT_ID, f"{kind}-")
                end = keys.dirent_key(GC_ROOT_ID, f"{kind}-{cutoff + 1:020d}" if due_only else f"{kind}.")
                rows = await txn.get_range(begin, end, limit=limit - len(out) if limit else 0, snapshot=True)
                prefix = keys.dirent_prefix(GC_ROOT_ID)
                for k, v in rows:
                    e = mp.DirEntry.FromString(v)
                    e.parent, e.name = GC_ROOT_ID, k[len(prefix):].decode()
                    out.append(e)
                if limit and len(out) >= limit:
                    break
            return out

        return await run_txn(self.ctx.kv, read)

    def _mine(self, e: mp.DirEntry) -> bool:
        metas = [n.node_id for n in self.ctx.mgmtd.routing.nodes_of_type(cpb.META)
                 if n.status == cpb.HEARTBEAT_CONNECTED]
        if self.ctx.node_id not in metas:
            return True
        owner = max(metas, key=lambda n: hashlib.blake2b(n.to_bytes(8, "little") + e.id.to_bytes(8, "little"),
                                                         digest_size=8).digest())
        return owner == self.ctx.node_id or parse_entry_name(e.name)[1] < _now_us() - self.delay_us - self.takeover_us

    # ---- passes --------------------------------------------------------------------------------
    async def run_once(self) -> int:
        """One pass over the due entries this server owns; returns how many were finished."""
        async with self._pass:
            entries = [e for e in await self.entries(self.batch, due_only=True) if self._mine(e)]

            async def one(e: mp.DirEntry) -> int:
                if e.type == mp.DIRECTORY:
                    async with self.dir_sem:
                        return await self._collect_dir(e)
                async with self.file_sem:
                    return await self._collect_file(e)

            results = await asyncio.gather(*(one(e) for e in entries), return_exceptions=True)
            done = 0
            for e, r in zip(entries, results, strict=True):
                if isinstance(r, BaseException):
                    log.warning("gc of %s (inode %#x) failed, will retry: %s", e.name, e.id, r)
                else:
                    done += r
            return done

    async def drain(self, timeout: float) -> tuple[int, int]:
        """Run passes until nothing due is left or `timeout` passes: (collected, entries still queued)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        collected = 0
        while True:
            collected += await self.run_once()
            due = await self.entries(1, due_only=True)
            if not due or loop.time() > deadline:
                return collected, len(await self.entries())
            await asyncio.sleep(min(0.05, self.interval))

    async def _postpone(self, e: mp.DirEntry) -> None:
        """Re-queue an entry `retry_delay` later (its file is still open for writing)."""
        kind, _, inode_id = parse_entry_name(e.name)

        async def move(txn: Transaction) -> None:
            cur = await load_dirent(txn, GC_ROOT_ID, e.name)
            if cur is None:
                return
            delete_dirent(txn, GC_ROOT_ID, e.name)
            cur.name = entry_name(kind, _now_us() + self.retry_delay_us, inode_id)
            store_dirent(txn, cur)

        await run_txn(self.ctx.kv, move)
        self.postponed += 1

    async def _collect_file(self, e: mp.DirEntry) -> int:
        async def read(txn: Transaction):
            return await load_inode(txn, e.id, snapshot=True), await has_sessions(txn, e.id, snapshot=True)

        inode, busy = await run_txn(self.ctx.kv, read)
        if busy:
            await self._postpone(e)
            return 0
        # an inline file still fresh never had a chunk (threefs.meta.inline): nothing to remove on storage
        if (inode is not None and inode.nlink == 0 and inode.layout.WhichOneof("chains") is not None
                and not (inode.inline and inode.fresh)):
            begin, end = placement.chunk_range(inode.id)
            await asyncio.gather(*(self.ctx.storage.remove_chunks(c, begin, end)
                                   for c in await file_chains(self.ctx.mgmtd, inode)))

        async def finish(txn: Transaction) -> int:
            if await load_dirent(txn, GC_ROOT_ID, e.name) is None:
                return 0                       # another meta server finished it
            if await has_sessions(txn, e.id):
                return -1                      # opened by inode meanwhile: try again later
            delete_dirent(txn, GC_ROOT_ID, e.name)
            cur = await load_inode(txn, e.id)
            if cur is not None and cur.nlink == 0:
                delete_inode(txn, e.id)
            elif cur is not None:
                log.error("GC entry %s names inode %#x which still has %d links; dropping the entry",
                          e.name, e.id, cur.nlink)
            return 1

        done = await run_txn(self.ctx.kv, finish)
        if done < 0:
            await self._postpone(e)
            return 0
        self.collected_files += done
        return done

    async def _collect_dir(self, e: mp.DirEntry) -> int:
        async def step(txn: Transaction) -> int | None:
            if await load_dirent(txn, GC_ROOT_ID, e.name) is None:
                return 0
            children = await list_dirents(txn, e.id, "", DIR_PAGE, snapshot=False)
            for c in children:
                delete_dirent(txn, e.id, c.name)
                child = await load_inode(txn, c.id)
                if child is not None:
                    drop_link(txn, child, e.gc_info)
            if children:
                return None
            delete_dirent(txn, GC_ROOT_ID, e.name)
            delete_inode(txn, e.id)
            return 1

        while True:
            done = await run_txn(self.ctx.kv, step)
            if done is not None:
                self.collected_dirs += done
                return done
