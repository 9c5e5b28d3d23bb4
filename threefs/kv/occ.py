"""In-process optimistic concurrency shared by the memory and rocksdb engines.

`ConflictTracker` keeps the write sets of recent commits (the newest commit version per written
key, plus cleared ranges) and checks a committing transaction's read-conflict set against every
commit newer than its read version. `OccTransaction` is the client half: a write buffer merged
into reads (read-your-writes), the read-conflict set, and commit through the tracker.
"""
from __future__ import annotations

import itertools
import weakref
from abc import abstractmethod
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator

from threefs.kv.engine import Transaction, TransactionConflict
from threefs.kv.ranges import RangeSet, key_after

Writes = dict[bytes, bytes | None]  # key -> value, or None for a delete


class ConflictTracker:
    """Commit versions, live read versions and the log of recent write sets (single-threaded).

    Commits at or below `horizon` are forgotten: the log is pruned below the oldest live
    transaction's read version, and capped at `max_log` entries; a transaction whose read
    version fell below the horizon fails with "transaction too old".
    """

    def __init__(self, max_log: int = 1_000_000) -> None:
        self.version = 0  # last assigned commit version
        self.applied = 0  # newest version visible to new transactions (engines advance it)
        self.horizon = 0
        self.max_log = max_log
        self._live: dict[int, int] = {}  # read version -> live transactions at it
        self._last_write: dict[bytes, int] = {}
        self._keys: list[bytes] = []  # sorted keys of _last_write, for range checks
        self._log: deque[tuple[int, bytes]] = deque()  # (version, key) in commit order
        self._clears: deque[tuple[int, bytes, bytes]] = deque()

    def begin(self, txn: object) -> tuple[int, weakref.finalize]:
        """Register a new transaction: its read version and a finalizer that unregisters it."""
        rv = self.applied
        self._live[rv] = self._live.get(rv, 0) + 1
        finalizer = weakref.finalize(txn, self._end, rv)
        finalizer.atexit = False
        return rv, finalizer

    def _end(self, rv: int) -> None:
        n = self._live[rv] - 1
        if n:
            self._live[rv] = n
        else:
            del self._live[rv]

    def check(self, rv: int, keys: set[bytes], ranges: RangeSet) -> None:
        """Raise `TransactionConflict` if a commit newer than `rv` wrote what was read."""
        if rv < self.horizon:
            raise TransactionConflict("transaction too old")
        last = self._last_write
        for k in keys:
            if last.get(k, 0) > rv:
                raise TransactionConflict(f"conflict on key {k!r}")
        for b, e in ranges:
            if (k := self._newer_write_in(rv, b, e)) is not None:
                raise TransactionConflict(f"conflict in range [{b!r}, {e!r}) on {k!r}")
        for v, b, e in reversed(self._clears):
            if v <= rv:
                break
            if ranges.overlaps(b, e) or any(b <= k < e for k in keys):
                raise TransactionConflict(f"conflict with cleared range [{b!r}, {e!r})")

    def _newer_write_in(self, rv: int, begin: bytes, end: bytes) -> bytes | None:
        """A key in [begin, end) that a commit newer than `rv` wrote, if any."""
        sorted_keys, last = self._keys, self._last_write
        i = bisect_left(sorted_keys, begin)
        while i < len(sorted_keys) and sorted_keys[i] < end:
            if last[sorted_keys[i]] > rv:
                return sorted_keys[i]
            i += 1
        return None

    def untouched_since(self, rv: int, begin: bytes, end: bytes) -> bool:
        """Whether no commit newer than `rv` wrote or cleared a key in [begin, end) (and `rv` is not too old)."""
        if rv < self.horizon or self._newer_write_in(rv, begin, end) is not None:
            return False
        for v, b, e in reversed(self._clears):
            if v <= rv:
                break
            if b < end and begin < e:
                return False
        return True

    def commit(self, rv: int, keys: set[bytes], ranges: RangeSet, writes: Writes, clears: RangeSet) -> int:
        """Check the read set, then assign the next commit version and log the write set."""
        if keys or ranges:
            self.check(rv, keys, ranges)
        self.version += 1
        v = self.version
        last = self._last_write
        for k in writes:
            if k not in last:
                insort(self._keys, k)
            last[k] = v
            self._log.append((v, k))
        for b, e in clears:
            self._clears.append((v, b, e))
        self.prune()
        return v

    def prune(self) -> None:
        """Forget commits no live transaction can conflict with, and enforce `max_log`."""
        floor = min(self._live, default=self.applied)
        self.horizon = max(self.horizon, min(floor, self.applied))
        log, clears = self._log, self._clears
        while log and (log[0][0] <= self.horizon or len(log) + len(clears) > self.max_log):
            v, k = log.popleft()
            self.horizon = max(self.horizon, v)
            if self._last_write.get(k) == v:
                del self._last_write[k]
                del self._keys[bisect_left(self._keys, k)]
        while clears and (clears[0][0] <= self.horizon or len(log) + len(clears) > self.max_log):
            self.horizon = max(self.horizon, clears.popleft()[0])


class OccTransaction(Transaction):
    """Write buffer, read-your-writes merge and read-conflict set over an engine's versioned reads."""

    def __init__(self, tracker: ConflictTracker) -> None:
        self._tracker = tracker
        self._rv, self._finalizer = tracker.begin(self)
        self._writes: Writes = {}
        self._cleared = RangeSet()
        self._read_keys: set[bytes] = set()
        self._read_ranges = RangeSet()
        self._done = False

    # --- engine hooks ---------------------------------------------------------------------
    @abstractmethod
    def _db_get(self, key: bytes) -> bytes | None:
        """The stored value of `key` at the read version."""

    @abstractmethod
    def _db_scan(self, begin: bytes, end: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        """Stored pairs in [begin, end) at the read version, in scan order (consumed synchronously)."""

    @abstractmethod
    async def _apply(self, version: int, writes: Writes, clears: RangeSet) -> None:
        """Make a checked commit's writes visible (and durable) at `version`."""

    # --- reads ----------------------------------------------------------------------------
    @property
    def read_version(self) -> int:
        return self._rv

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("transaction already committed or cancelled")

    def _local(self, key: bytes) -> tuple[bool, bytes | None]:
        """(True, value) when the write buffer decides `key`, else (False, None)."""
        if key in self._writes:
            return True, self._writes[key]
        if self._cleared.contains(key):
            return True, None
        return False, None

    async def get(self, key: bytes) -> bytes | None:
        self._check_open()
        hit, value = self._local(key)
        if hit:
            return value
        self._read_keys.add(key)
        return self._db_get(key)

    async def snapshot_get(self, key: bytes) -> bytes | None:
        self._check_open()
        hit, value = self._local(key)
        return value if hit else self._db_get(key)

    def _merged(self, begin: bytes, end: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        """Stored pairs overlaid with the write buffer, in scan order."""
        writes, cleared = self._writes, self._cleared
        local = sorted((k for k in writes if begin <= k < end), reverse=reverse)
        li, n = 0, len(local)
        for k, v in self._db_scan(begin, end, reverse):
            while li < n and (local[li] > k if reverse else local[li] < k):
                lv = writes[local[li]]
                if lv is not None:
                    yield local[li], lv
                li += 1
            if li < n and local[li] == k:
                li += 1
                if (lv := writes[k]) is not None:
                    yield k, lv
            elif not cleared.contains(k):
                yield k, v
        for lk in local[li:]:
            if (lv := writes[lk]) is not None:
                yield lk, lv

    async def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        self._check_open()
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        if begin >= end:
            return []
        pairs = self._merged(begin, end, reverse)
        out = list(itertools.islice(pairs, limit) if limit else pairs)
        if not snapshot:
            if limit and len(out) == limit:
                last = out[-1][0]
                self._read_ranges.add(*((last, end) if reverse else (begin, key_after(last))))
            else:
                self._read_ranges.add(begin, end)
        return out

    # --- writes ---------------------------------------------------------------------------
    def set(self, key: bytes, value: bytes) -> None:
        self._check_open()
        self._writes[key] = value

    def clear(self, key: bytes) -> None:
        self._check_open()
        self._writes[key] = None

    def clear_range(self, begin: bytes, end: bytes) -> None:
        self._check_open()
        if begin >= end:
            return
        self._cleared.add(begin, end)
        for k in [k for k in self._writes if begin <= k < end]:
            del self._writes[k]

    def add_read_conflict(self, key: bytes) -> None:
        self._check_open()
        self._read_keys.add(key)

    def add_read_conflict_range(self, begin: bytes, end: bytes) -> None:
        self._check_open()
        self._read_ranges.add(begin, end)

    # --- end of life ----------------------------------------------------------------------
    async def commit(self) -> None:
        self._check_open()
        self._done = True
        try:
            if not self._writes and not self._cleared:
                version = None
            else:
                version = self._tracker.commit(
                    self._rv, self._read_keys, self._read_ranges, self._writes, self._cleared
                )
        finally:
            self._finalizer()
        if version is None:
            if self.durable:
                await self._sync_earlier()       # a durable no-op still vouches for what came before
            return
        await self._apply(version, self._writes, self._cleared)

    async def _sync_earlier(self) -> None:
        """Make earlier non-durable commits survive a machine crash (engines that skip fsyncs override)."""

    def cancel(self) -> None:
        self._done = True
        self._finalizer()
