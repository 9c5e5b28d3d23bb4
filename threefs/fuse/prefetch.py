"""Read-ahead inside the FUSE daemon, beyond the kernel's window, for handles that read sequentially.

The kernel asks for at most max_read (1 MiB) per request and keeps only its readahead window (8 MiB)
in flight, so a cold sequential read waits on the storage disks with a queue that shallow. Once a
handle has read START bytes in a row, its next ranges are fetched in SEGMENT-sized pieces, up to
MAX_AHEAD ahead of the reader (the distance doubles per request), and the kernel's requests are
answered from those buffers. Random readers never start a window (counting bytes, not requests:
random reads often land within a segment of the previous one), and every window is dropped
when this mount changes the file's data (the inode's data generation moves), so reads never see
bytes older than this mount's own writes; other mounts' writes follow close-to-open as the page
cache does (a window lives only as long as its open handle).
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from threefs.common.buffers import uninitialized_bytearray

log = logging.getLogger("threefs.fuse")

START = 8 << 20              # bytes read in a row before a window starts (the kernel's own window: less
                             # is often reached by chance, e.g. 1 MiB random reads of a 128 MiB file)
SEGMENT = 16 << 20           # bytes per prefetch read (16 chunks of the default layout, across its chains)
FIRST_AHEAD = 2 * SEGMENT    # the first window, doubled per sequential request up to MAX_AHEAD
MAX_AHEAD = 64 << 20         # how far ahead of the reader the window reaches
BEHIND = 4 * SEGMENT         # segments kept behind the furthest request, for requests that arrive late
BUDGET = 256 << 20           # bytes of prefetch buffers one mount holds at most, over all handles
SPARE = 8                    # whole segment buffers kept for reuse (a sequential reader cycles through ~8)

ReadInto = Callable[[int, memoryview, int], Awaitable[int]]


class Budget:
    """The prefetch memory of one mount, shared by its handles, with its spare segment buffers and
    how far the kernel's read-ahead may scatter a stream's requests (`reorder`).

    A fresh 16 MiB buffer is heap memory whose pages fault in while the socket receive fills them
    (page faults, zeroing and cgroup charging were ~12% of the daemon's CPU in a cold sequential
    read), so buffers of segments that completed are kept for the next ones, within the limit.
    """

    def __init__(self, limit: int = BUDGET) -> None:
        self.limit = limit
        self.used = 0
        self.spare: list[bytearray] = []
        self.reorder = SEGMENT      # how far ahead of a stream a request may land and still be in order

    def follow_readahead(self, window: int | None) -> None:
        """The kernel keeps two read-ahead windows in flight (the current one and the next) and their
        requests reach the daemon in any order, so a stream's next request may land up to two windows
        ahead of the furthest one seen. `window` is the mount's read_ahead_kb in bytes (admins raise it)."""
        if window is not None:
            self.reorder = max(SEGMENT, 2 * window)

    def take(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def give(self, n: int) -> None:
        self.used -= n

    def buffer(self, n: int) -> bytearray:
        """A buffer of `n` bytes with undefined content (the read fills every byte)."""
        if n == SEGMENT and self.spare:
            return self.spare.pop()
        return uninitialized_bytearray(n)

    def recycle(self, buf: bytearray) -> None:
        """Keep `buf` for a later segment if it is whole, unshared and within the limit."""
        room = len(self.spare) < SPARE and self.used + (len(self.spare) + 1) * SEGMENT <= self.limit
        if len(buf) == SEGMENT and room and _unshared(buf):
            self.spare.append(buf)


def _unshared(buf: bytearray) -> bool:
    """Whether no memoryview of `buf` is alive: a bytearray refuses to resize (BufferError) while one is.
    The shrink and regrow by one byte stay within its allocation (no copy); the content is undefined anyway."""
    try:
        del buf[-1:]
    except BufferError:
        return False
    buf.append(0)
    return True


@dataclass(eq=False)
class _Segment:
    start: int
    buf: bytearray
    task: asyncio.Task[int]


def _retrieve(task: asyncio.Task[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("prefetch failed (the read retries directly): %r", task.exception())


class SequentialPrefetch:
    """The read-ahead window of one open handle."""

    def __init__(self, read_into: ReadInto, budget: Budget, start: int = START) -> None:
        self._read_into = read_into
        self._budget = budget
        self._start = start
        self._segments: dict[int, _Segment] = {}
        self._next = -1          # where a sequential reader's next request starts (the run's furthest end)
        self._run = 0            # bytes of the current in-order run of requests
        self._ahead = FIRST_AHEAD
        self._gen = 0

    async def read(self, off: int, n: int, length: int, gen: int) -> memoryview | None:
        """Bytes [off, off+n) from the window (n > 0, off + n <= length), or None: read directly.
        A failed segment read raises its error (the reader's read fails as a direct read would)."""
        if gen != self._gen:
            self.drop()
            self._gen = gen
        reach = self._budget.reorder
        if abs(off - self._next) <= reach:       # in order, give or take the kernel's readahead reordering
            self._run += n
        elif self._segments and min(self._segments) <= off < self._next:
            return await self._serve(off, n)     # a late request of this stream (readahead requests overtake)
        else:                                    # a jump: a new run starts here (also a re-read from the start)
            self.drop()
            self._next = off
            self._run = n
            self._ahead = FIRST_AHEAD
        self._next = max(self._next, off + n)
        if self._run < self._start:
            return None
        self._extend(off, length)
        self._ahead = min(MAX_AHEAD, self._ahead * 2)
        return await self._serve(off, n)

    def _extend(self, off: int, length: int) -> None:
        """Start the segments covering [off, next + ahead) that are not in flight; forget those well behind
        (a late request from further back is read directly rather than fetching a segment again)."""
        behind = self._next - max(BEHIND, self._budget.reorder)
        for start in [s for s in self._segments if s + SEGMENT <= behind]:
            self._forget(start)
        end = min(length, self._next + self._ahead)
        floor = max(off, behind)
        floor -= floor % SEGMENT
        for start in range(floor, end, SEGMENT):
            if start in self._segments:
                continue
            if not self._budget.take(SEGMENT):
                break
            buf = self._budget.buffer(min(SEGMENT, length - start))   # the read fills it (holes as zeros)
            task = asyncio.ensure_future(self._read_into(start, memoryview(buf), length))
            task.add_done_callback(_retrieve)
            self._segments[start] = _Segment(start, buf, task)

    async def _serve(self, off: int, n: int) -> memoryview | None:
        first = off - off % SEGMENT
        last = (off + n - 1) - (off + n - 1) % SEGMENT
        parts: list[memoryview] = []
        for start in range(first, last + 1, SEGMENT):
            seg = self._segments.get(start)
            if seg is None:
                return None
            try:
                got = await asyncio.shield(seg.task)
            except asyncio.CancelledError:
                if seg.task.cancelled():
                    return None              # dropped meanwhile (a write): read directly
                raise
            except Exception:
                # The segment's read already retried as long as a direct read would: its error is the
                # reader's (a second round of retries would only double the wait for EIO).
                if self._segments.get(start) is seg:     # not already forgotten by another waiting reader
                    self._forget(start)
                raise
            lo = max(off, start) - start
            hi = min(off + n, start + SEGMENT) - start
            if hi > got:
                return None                  # short: the file ended earlier when the segment was read
            parts.append(memoryview(seg.buf)[lo:hi])
        if len(parts) == 1:
            return parts[0]                  # no copy: pyfuse3 copies the reply before the buffer can go
        out = uninitialized_bytearray(n)
        pos = 0
        for p in parts:
            out[pos:pos + len(p)] = p
            pos += len(p)
        return memoryview(out)

    def _forget(self, start: int) -> None:
        seg = self._segments.pop(start)
        self._budget.give(SEGMENT)
        if not seg.task.done():
            seg.task.cancel()       # its buffer is dropped: a reply already on its way may still land in it
        elif not seg.task.cancelled() and seg.task.exception() is None:
            self._budget.recycle(seg.buf)   # read whole (a view still handed out keeps it from reuse)

    def drop(self) -> None:
        """Forget every segment (cancelling reads in flight)."""
        for start in list(self._segments):
            self._forget(start)
