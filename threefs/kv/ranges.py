"""RangeSet: sorted, disjoint, half-open byte-key intervals (local clears and conflict ranges)."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator


def key_after(key: bytes) -> bytes:
    """The smallest key greater than `key` (so [key, key_after(key)) holds exactly `key`)."""
    return key + b"\x00"


class RangeSet:
    """A set of byte keys stored as merged [begin, end) intervals; O(log n) membership."""

    __slots__ = ("_begins", "_ends")

    def __init__(self) -> None:
        self._begins: list[bytes] = []
        self._ends: list[bytes] = []

    def add(self, begin: bytes, end: bytes) -> None:
        """Add [begin, end), merging with overlapping or touching intervals."""
        if begin >= end:
            return
        lo = bisect_left(self._ends, begin)
        hi = bisect_right(self._begins, end)
        if lo < hi:
            begin = min(begin, self._begins[lo])
            end = max(end, self._ends[hi - 1])
        self._begins[lo:hi] = [begin]
        self._ends[lo:hi] = [end]

    def contains(self, key: bytes) -> bool:
        """Whether `key` lies in one of the intervals."""
        i = bisect_right(self._begins, key) - 1
        return i >= 0 and key < self._ends[i]

    def overlaps(self, begin: bytes, end: bytes) -> bool:
        """Whether [begin, end) shares at least one key with the set."""
        if begin >= end:
            return False
        i = bisect_right(self._ends, begin)
        return i < len(self._begins) and self._begins[i] < end

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(zip(self._begins, self._ends))

    def __len__(self) -> int:
        return len(self._begins)

    def __bool__(self) -> bool:
        return bool(self._begins)

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"
