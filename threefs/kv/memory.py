"""MemoryKV: an in-memory MVCC engine (per-key version history, sorted key index) for tests."""
from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator

from threefs.common.errors import Code, FSError
from threefs.kv.engine import KVEngine, TransactionConflict
from threefs.kv.occ import ConflictTracker, OccTransaction, Writes
from threefs.kv.ranges import RangeSet

History = list[tuple[int, bytes | None]]  # (commit version, value or None = deleted), ascending


class MemoryKV(KVEngine):
    """Versioned key/value maps in memory; commits apply instantly and are lost on exit."""

    def __init__(self, max_log: int = 1_000_000) -> None:
        self.tracker = ConflictTracker(max_log)
        self.stats = {"commits": 0}
        self._keys: list[bytes] = []  # every key with a history, sorted
        self._history: dict[bytes, History] = {}
        self._tombstones: deque[tuple[int, bytes]] = deque()  # deletes awaiting removal
        self._closed = False

    def transaction(self) -> MemoryTransaction:
        if self._closed:
            raise FSError(Code.UNAVAILABLE, "kv engine is closed")
        return MemoryTransaction(self)

    async def close(self) -> None:
        self._closed = True

    def value_at(self, key: bytes, version: int) -> bytes | None:
        """The value of `key` as of `version`."""
        if version < self.tracker.horizon:
            raise TransactionConflict("transaction too old")
        for v, value in reversed(self._history.get(key, ())):
            if v <= version:
                return value
        return None

    def scan(self, begin: bytes, end: bytes, reverse: bool, version: int) -> Iterator[tuple[bytes, bytes]]:
        """Live pairs in [begin, end) as of `version`, in scan order."""
        keys = self._keys
        lo, hi = bisect_left(keys, begin), bisect_left(keys, end)
        for i in range(hi - 1, lo - 1, -1) if reverse else range(lo, hi):
            value = self.value_at(keys[i], version)
            if value is not None:
                yield keys[i], value

    def apply(self, version: int, writes: Writes, clears: RangeSet) -> None:
        """Append the commit's writes to the key histories and make them visible."""
        for b, e in clears:
            for k in self._keys[bisect_left(self._keys, b) : bisect_left(self._keys, e)]:
                if k not in writes and self._history[k][-1][1] is not None:
                    self._put(k, version, None)
        for k, value in writes.items():
            self._put(k, version, value)
        self.tracker.applied = version
        self.stats["commits"] += 1
        self._collect()

    def _put(self, key: bytes, version: int, value: bytes | None) -> None:
        history = self._history.get(key)
        if history is None:
            if value is None:
                return
            insort(self._keys, key)
            history = self._history[key] = []
        horizon = self.tracker.horizon
        keep = 0  # drop versions shadowed by a newer one at or below the horizon
        for i, (v, _) in enumerate(history):
            if v <= horizon:
                keep = i
        del history[:keep]
        history.append((version, value))
        if value is None:
            self._tombstones.append((version, key))

    def _collect(self) -> None:
        """Remove keys whose delete is older than every live read version."""
        horizon = self.tracker.horizon
        while self._tombstones and self._tombstones[0][0] <= horizon:
            v, k = self._tombstones.popleft()
            history = self._history.get(k)
            if history and history[-1] == (v, None):
                del self._history[k]
                del self._keys[bisect_left(self._keys, k)]


class MemoryTransaction(OccTransaction):
    """A transaction over MemoryKV's version histories."""

    def __init__(self, engine: MemoryKV) -> None:
        super().__init__(engine.tracker)
        self._engine = engine

    def _db_get(self, key: bytes) -> bytes | None:
        return self._engine.value_at(key, self._rv)

    def _db_scan(self, begin: bytes, end: bytes, reverse: bool) -> Iterator[tuple[bytes, bytes]]:
        return self._engine.scan(begin, end, reverse, self._rv)

    async def _apply(self, version: int, writes: Writes, clears: RangeSet) -> None:
        if self._engine._closed:
            raise FSError(Code.UNAVAILABLE, "kv engine is closed")
        self._engine.apply(version, writes, clears)
