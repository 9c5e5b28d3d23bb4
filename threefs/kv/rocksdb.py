"""RocksKV: the embedded, durable engine on rocksdict with in-process OCC and group commit.

rocksdict has no transactions, so conflicts are checked in-process (the event loop is the single
committer) and each transaction becomes part of one synced `WriteBatch`. Commits that arrive
while a synced write is in flight are merged into the next batch, so many transactions share
one fsync; `commit()` returns only once its batch is durable. A batch of one commit is written
and fsynced from the event loop itself (the loop waits ~0.1 ms for the fsync instead of ~0.3 ms
for the round trip through the commit thread); larger batches go to the commit thread, so the
loop keeps taking requests while they are synced. A non-durable transaction
(`Transaction.durable = False`) that finds no batch in flight is written at once, from the event
loop, without fsync: the WAL write reaches the OS, so it survives a crash of this process, and
the next synced write (or `sync()`) makes it survive a machine crash too. Otherwise it joins the
next synced batch, so commits are applied in version order. After each batch the engine takes
a new read view (a rocksdb snapshot for point reads and an iterator for ranges: rocksdict
0.3.29's `Snapshot.iter` ignores the snapshot, while a plain iterator reads the state as of its
creation), so a read version only ever covers batches that are already in the database. A range
scan that no newer commit touched reads a fresh iterator bounded to its range instead, so that it
does not walk the tombstones of deleted rows beyond the range.
"""
from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from rocksdict import BlockBasedOptions, Cache, Options, ReadOptions, Rdict, RdictIter, Snapshot, WriteBatch, \
    WriteOptions

from threefs.common.errors import Code, FSError
from threefs.kv.engine import KVEngine
from threefs.kv.occ import ConflictTracker, OccTransaction, Writes
from threefs.kv.ranges import RangeSet
from threefs.common.wal_sync import WalSyncer


BLOCK_CACHE_BYTES = 64 << 20     # uncompressed blocks kept in memory (rocksdb's default is 32 MiB)
BLOOM_BITS_PER_KEY = 10            # ~1% false positives: a missing key (a new name) rarely reads a data block


def _options() -> Options:
    """Options for a metadata store: mostly point reads, many of keys that do not exist yet.

    Bloom filters answer those without reading the SST's data blocks (a create looks up its new
    name twice, and the keys it must not collide with); without them each such miss read and
    decompressed a block of every SST file whose key range covers it."""
    opts = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
    table.set_block_cache(Cache(BLOCK_CACHE_BYTES))
    opts.set_block_based_table_factory(table)
    return opts


class DatabaseLockedError(FSError):
    """The rocksdb directory is already open (its LOCK file is held), here or in another process."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(Code.BUSY, f"rocksdb database {path} is already open (LOCK held): {detail}", path)


class _View:
    """A read view of the database as of commit version `version`."""

    __slots__ = ("version", "snapshot", "iterator", "__weakref__")

    def __init__(self, version: int, db: Rdict) -> None:
        self.version = version
        self.snapshot: Snapshot | None = db.snapshot()
        self.iterator: RdictIter | None = db.iter()

    def release(self) -> None:
        self.snapshot = self.iterator = None


class _Pending:
    """One checked transaction waiting for its batch to be written."""

    __slots__ = ("version", "writes", "clears", "done")

    def __init__(self, version: int, writes: Writes, clears: RangeSet, done: asyncio.Future[None]) -> None:
        self.version, self.writes, self.clears, self.done = version, writes, clears, done


class RocksKV(KVEngine):
    """A rocksdb database directory used as a serializable transactional KV store."""

    def __init__(self, path: str | os.PathLike[str], max_log: int = 1_000_000) -> None:
        self.path = os.fspath(path)
        try:
            self._db = Rdict(self.path, _options())
        except Exception as e:
            if "lock" in str(e).lower():
                raise DatabaseLockedError(self.path, str(e)) from None
            raise FSError(Code.IO_ERROR, f"cannot open rocksdb database {self.path}: {e}", self.path) from e
        self._nosync = WriteOptions()
        self._sync = WriteOptions()
        self._sync.sync = True          # rocksdb's own WAL sync: for lone commits written from the event loop
        self._wal = WalSyncer(self.path)   # durable batches: unsynced write + fsync without the GIL
        self._unsynced = False          # WAL writes since the last fsync
        self.tracker = ConflictTracker(max_log)
        self.stats = {"commits": 0, "batches": 0}
        self._views: weakref.WeakSet[_View] = weakref.WeakSet()
        self._view = self._new_view()
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="rocksdb-commit")
        self._closed = False

    def _new_view(self) -> _View:
        view = _View(self.tracker.applied, self._db)
        self._views.add(view)
        return view

    def transaction(self) -> RocksTransaction:
        if self._closed:
            raise FSError(Code.UNAVAILABLE, f"kv engine {self.path} is closed")
        return RocksTransaction(self, self._view)

    async def close(self) -> None:
        """Wait for pending commits, drop all read views, and release the database lock."""
        if self._closed:
            return
        self._closed = True
        while self._writer is not None:
            await asyncio.shield(self._writer)
        for view in list(self._views):
            view.release()
        self._view.release()
        if self._unsynced:
            self._wal.sync()
        self._wal.close()
        self._db.close()
        self._executor.shutdown()

    def bounded_iter(self, begin: bytes, end: bytes) -> RdictIter:
        """A fresh iterator over [begin, end) of the current state.

        The view's own iterator has no bounds, so a seek walks every tombstone past `end` up to
        the next live key (ms per scan once many rows were deleted, e.g. closed write sessions).
        A scan uses this one instead when no commit newer than its view touched the range, where
        the current state and the view agree."""
        ro = ReadOptions()
        ro.set_iterate_lower_bound(begin)
        ro.set_iterate_upper_bound(end)
        return self._db.iter(ro)

    def write_now(self, version: int, writes: Writes, clears: RangeSet) -> bool:
        """Write a non-durable commit at once, unsynced, if no batch is queued or in flight (keeps version order)."""
        if self._writer is not None or self._queue or self._closed:
            return False
        try:
            self._db.write(self._batch([(writes, clears)]), self._nosync)
        except Exception as e:
            raise FSError(Code.IO_ERROR, f"rocksdb commit to {self.path} failed: {e}") from e
        self._unsynced = True
        self._applied(version, 1)
        return True

    async def sync(self) -> None:
        """fsync the WAL if non-durable commits were written since the last synced one.

        Unsynced writes happen only while no batch is in flight, so a batch in flight now was written
        after them and its synced write covers them (unless it failed); otherwise the WAL is flushed
        and synced."""
        if not self._unsynced or self._closed:
            return
        if self._writer is not None:
            await asyncio.shield(self._writer)
            if not self._unsynced or self._closed:
                return
        self._unsynced = False
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._wal.sync)
        except Exception as e:
            self._unsynced = True
            raise FSError(Code.IO_ERROR, f"rocksdb WAL sync of {self.path} failed: {e}") from e

    def _applied(self, version: int, commits: int) -> None:
        """Publish a written batch: advance the applied version and take a new read view."""
        self.tracker.applied = version
        self._view = self._new_view()
        self.stats["batches"] += 1
        self.stats["commits"] += commits

    async def enqueue(self, item: _Pending) -> None:
        """Queue a checked commit for the next batch and wait until that batch is durable."""
        if self._closed and self._writer is None:
            raise FSError(Code.UNAVAILABLE, f"kv engine {self.path} is closed")
        self._queue.append(item)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_batches())
        await item.done

    async def _write_batches(self) -> None:
        """Write queued commits as synced batches, one at a time, until the queue is empty."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    if len(batch) == 1:
                        # a lone commit (nothing else arrived meanwhile): write and fsync right here;
                        # the hop to the commit thread and back cost twice the fsync (~0.2 ms). The
                        # loop waits for the fsync either way, so rocksdb's synced write (which keeps
                        # the GIL through it) is fine here, and ~40 us cheaper than write + WalSyncer.
                        self._write_synced(batch)
                    else:
                        await loop.run_in_executor(self._executor, self._write, batch)
                except Exception as e:
                    error = FSError(Code.IO_ERROR, f"rocksdb commit to {self.path} failed: {e}")
                    for item in batch:
                        if not item.done.done():
                            item.done.set_exception(error)
                    continue
                self._applied(batch[-1].version, len(batch))
                for item in batch:
                    if not item.done.done():
                        item.done.set_result(None)
        finally:
            self._writer = None

    def _write(self, batch: list[_Pending]) -> None:
        """Write one WriteBatch and fsync the WAL (runs in the commit thread; syncs earlier unsynced
        writes too). rocksdict's own synced write would hold the GIL through the fsync (common/wal_sync.py)."""
        self._db.write(self._batch_of(batch), self._nosync)
        self._wal.sync()
        self._unsynced = False

    def _write_synced(self, batch: list[_Pending]) -> None:
        """Write one WriteBatch with rocksdb's synced write: it syncs every live WAL file, so earlier
        unsynced writes are durable with it (runs on the event loop, see _write_batches)."""
        self._db.write(self._batch_of(batch), self._sync)
        self._unsynced = False

    def _batch_of(self, batch: list[_Pending]) -> WriteBatch:
        return self._batch([(item.writes, item.clears) for item in batch])

    @staticmethod
    def _batch(parts: list[tuple[Writes, RangeSet]]) -> WriteBatch:
        wb = WriteBatch(raw_mode=True)
        for writes, clears in parts:
            for b, e in clears:
                wb.delete_range(b, e)
            for k, v in writes.items():
                if v is None:
                    wb.delete(k)
                else:
                    wb.put(k, v)
        return wb


class RocksTransaction(OccTransaction):
    """A transaction reading one rocksdb view and committing through the group committer."""

    def __init__(self, engine: RocksKV, view: _View) -> None:
        super().__init__(engine.tracker)
        self._engine = engine
        self._view = view

    async def _sync_earlier(self) -> None:
        await self._engine.sync()

    def _db_get(self, key: bytes) -> bytes | None:
        snapshot = self._view.snapshot
        if snapshot is None:
            raise FSError(Code.UNAVAILABLE, f"kv engine {self._engine.path} is closed")
        try:
            return snapshot[key]
        except Exception as e:
            if str(e) == "key not found":
                return None
            raise FSError(Code.IO_ERROR, f"rocksdb read from {self._engine.path} failed: {e}") from e

    def _db_scan(self, begin: bytes, end: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        view = self._view
        if view.iterator is None:
            raise FSError(Code.UNAVAILABLE, f"kv engine {self._engine.path} is closed")
        if self._engine.tracker.untouched_since(view.version, begin, end):
            it = self._engine.bounded_iter(begin, end)
        else:
            it = view.iterator
        if reverse:
            it.seek_for_prev(end)
            if it.valid() and it.key() >= end:
                it.prev()
            while it.valid() and (k := it.key()) >= begin:
                yield k, it.value()
                it.prev()
        else:
            it.seek(begin)
            while it.valid() and (k := it.key()) < end:
                yield k, it.value()
                it.next()
        it.status()

    async def _apply(self, version: int, writes: Writes, clears: RangeSet) -> None:
        if not self.durable and self._engine.write_now(version, writes, clears):
            return
        done = asyncio.get_running_loop().create_future()
        await self._engine.enqueue(_Pending(version, writes, clears, done))
