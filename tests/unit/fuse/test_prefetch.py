"""The FUSE daemon's read-ahead window, over an in-memory file (the mount-level tests are in tests/fuse)."""
from __future__ import annotations

import asyncio
import os
import random

import pytest

from threefs.fuse.prefetch import FIRST_AHEAD, MAX_AHEAD, SEGMENT, START, Budget, SequentialPrefetch

MIB = 1 << 20


class File:
    """A file's bytes with a read_into like FileIO's, counting reads and optionally failing them."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(os.urandom(size))
        self.reads: list[tuple[int, int]] = []
        self.fail_at: set[int] = set()

    async def read_into(self, off: int, dest: memoryview, length: int) -> int:
        await asyncio.sleep(0)          # a real read yields to the loop
        self.reads.append((off, len(dest)))
        if off in self.fail_at:
            raise OSError(5, "storage failed")
        n = max(0, min(len(dest), length - off))
        dest[:n] = self.data[off:off + n]
        return n


async def test_sequential_reads_come_from_the_window_byte_exact() -> None:
    f = File(3 * SEGMENT + 12345)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    assert await p.read(0, MIB, len(f.data), 0) is None          # one read is not a stream yet
    off, step = MIB, 1536 * 1024                                  # odd sizes: some requests span two segments
    while off < len(f.data):
        n = min(step, len(f.data) - off)
        view = await p.read(off, n, len(f.data), 0)
        assert view is not None and bytes(view) == f.data[off:off + n], off
        off += n
    starts = sorted(o for o, _ in f.reads)
    assert starts == [0, SEGMENT, 2 * SEGMENT, 3 * SEGMENT]       # each segment fetched once
    assert f.reads[-1][1] == 12345                                # the last one cut at the file's end
    p.drop()


async def test_a_sequential_reader_gets_a_window_once_it_read_start_bytes() -> None:
    f = File(2 * SEGMENT)
    p = SequentialPrefetch(f.read_into, Budget())
    for off in range(0, 2 * SEGMENT, MIB):
        view = await p.read(off, MIB, len(f.data), 0)
        if off + MIB < START:
            assert view is None and f.reads == []
        else:
            assert view is not None and bytes(view) == f.data[off:off + MIB], off
    p.drop()


async def test_random_reads_start_no_window() -> None:
    f = File(8 * SEGMENT)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    for off in (5 * SEGMENT, MIB, 7 * SEGMENT + 4096, 2 * SEGMENT):
        assert await p.read(off, 4096, len(f.data), 0) is None
    assert f.reads == []


async def test_small_random_reads_near_each_other_start_no_window() -> None:
    """Random 4 KiB reads of a 48 MiB range: a third land within a segment of the previous one, and
    a window on any of them would read 32 MiB for 4 KiB (a window needs START bytes in a row)."""
    f = File(3 * SEGMENT)
    p = SequentialPrefetch(f.read_into, Budget())
    rnd = random.Random(7)
    for _ in range(500):
        assert await p.read(rnd.randrange(len(f.data) // 4096) * 4096, 4096, len(f.data), 0) is None
    assert f.reads == []


async def test_one_mib_random_reads_of_a_small_file_start_no_window() -> None:
    """1 MiB random reads of a 128 MiB file: a quarter land within a segment of the previous one, so
    two in a row (2 MiB) are common; START is the kernel's readahead window, which chance does not fill."""
    f = File(128 * MIB)
    p = SequentialPrefetch(f.read_into, Budget())
    rnd = random.Random(11)
    for _ in range(400):
        assert await p.read(rnd.randrange(128) * MIB, MIB, len(f.data), 0) is None
    assert f.reads == []


async def test_a_reread_from_the_start_gets_a_window_again() -> None:
    f = File(6 * SEGMENT)                            # longer than the segments kept behind the reader
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    for _ in range(2):                               # two passes over the file on one handle (seek(0) between)
        fetched = len(f.reads)
        for off in range(0, len(f.data), MIB):
            view = await p.read(off, MIB, len(f.data), 0)
            assert off < 2 * MIB or (view is not None and bytes(view) == f.data[off:off + MIB])
        assert 0 in [o for o, _ in f.reads[fetched:]]   # this pass started its own window
    p.drop()


async def test_window_grows_to_its_limit_and_respects_the_budget() -> None:
    f = File(4 * MAX_AHEAD)
    budget = Budget(limit=3 * SEGMENT)
    p = SequentialPrefetch(f.read_into, budget, start=2 * MIB)
    await p.read(0, MIB, len(f.data), 0)
    await p.read(MIB, MIB, len(f.data), 0)
    assert len(f.reads) == 3 and budget.used == 3 * SEGMENT       # FIRST_AHEAD wanted 3, the budget allows 3
    p.drop()
    assert budget.used == 0
    big = Budget()
    p = SequentialPrefetch(f.read_into, big, start=2 * MIB)
    off = 0
    for _ in range(12):
        await p.read(off, MIB, len(f.data), 0)
        off += MIB
    assert FIRST_AHEAD < big.used <= MAX_AHEAD + 2 * SEGMENT      # grew, and stays bounded by MAX_AHEAD
    p.drop()
    assert big.used == 0


async def test_a_data_change_drops_the_window() -> None:
    f = File(4 * SEGMENT)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    await p.read(0, MIB, len(f.data), 0)
    assert bytes(await p.read(MIB, MIB, len(f.data), 0)) == f.data[MIB:2 * MIB]
    fetched = len(f.reads)
    f.data[2 * MIB:4 * MIB] = os.urandom(2 * MIB)                 # this mount wrote: generation 1
    view = await p.read(2 * MIB, MIB, len(f.data), 1)             # the stale window is gone: fetched again
    assert view is not None and bytes(view) == f.data[2 * MIB:3 * MIB]
    assert len(f.reads) > fetched
    assert bytes(await p.read(3 * MIB, MIB, len(f.data), 1)) == f.data[3 * MIB:4 * MIB]


async def test_a_failed_segment_fails_the_read_and_is_fetched_again_next_time() -> None:
    f = File(4 * SEGMENT)
    f.fail_at.add(0)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    await p.read(0, MIB, len(f.data), 0)
    with pytest.raises(OSError, match="storage failed"):          # the reader gets the segment's error
        await p.read(MIB, MIB, len(f.data), 0)
    f.fail_at.clear()
    view = await p.read(2 * MIB, MIB, len(f.data), 0)             # refetched
    assert view is not None and bytes(view) == f.data[2 * MIB:3 * MIB]


async def test_a_file_that_grew_past_a_short_segment_is_read_directly() -> None:
    f = File(SEGMENT + MIB)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    await p.read(0, MIB, 2 * MIB, 0)
    assert bytes(await p.read(MIB, MIB, 2 * MIB, 0)) == f.data[MIB:2 * MIB]   # the window read 2 MiB
    assert await p.read(2 * MIB, MIB, 3 * MIB, 0) is None         # longer now: not in the short segment


@pytest.mark.parametrize("cancel_reader", [False, True])
async def test_cancelled_reader_or_dropped_window_never_hangs(cancel_reader: bool) -> None:
    gate = asyncio.Event()
    f = File(4 * SEGMENT)

    async def slow(off: int, dest: memoryview, length: int) -> int:
        await gate.wait()
        return await f.read_into(off, dest, length)

    p = SequentialPrefetch(slow, Budget(), start=2 * MIB)
    await p.read(0, MIB, len(f.data), 0)
    t = asyncio.ensure_future(p.read(MIB, MIB, len(f.data), 0))
    await asyncio.sleep(0)
    if cancel_reader:
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
    else:
        p.drop()                                                  # a write elsewhere dropped the window
        assert await asyncio.wait_for(t, 5) is None
    gate.set()


async def test_late_requests_of_the_stream_keep_the_window() -> None:
    f = File(8 * SEGMENT)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    order = list(range(0, 20)) + list(range(26, 34)) + list(range(20, 26)) + list(range(34, 40))   # in MiB
    for mib in order:                              # async readahead: a run of requests overtakes another
        view = await p.read(mib * MIB, MIB, len(f.data), 0)
        assert view is None or bytes(view) == f.data[mib * MIB:(mib + 1) * MIB], mib
    assert sorted(o for o, _ in f.reads) == sorted({o for o, _ in f.reads})   # no segment read twice
    assert len(f.reads) <= 8


async def test_two_readers_of_one_failed_segment_both_get_the_error() -> None:
    f = File(4 * SEGMENT)
    f.fail_at.add(0)
    p = SequentialPrefetch(f.read_into, Budget(), start=2 * MIB)
    await p.read(0, MIB, len(f.data), 0)
    a, b = await asyncio.gather(p.read(MIB, MIB, len(f.data), 0), p.read(2 * MIB, MIB, len(f.data), 0),
                                return_exceptions=True)
    assert isinstance(a, OSError) and isinstance(b, OSError)
    p.drop()


async def test_segment_buffers_are_reused_but_never_while_a_view_of_them_lives() -> None:
    f = File(12 * SEGMENT)
    budget = Budget()
    p = SequentialPrefetch(f.read_into, budget, start=2 * MIB)
    seen: set[int] = set()
    real_buffer = budget.buffer

    def buffer(n: int) -> bytearray:
        b = real_buffer(n)
        seen.add(id(b))
        return b

    budget.buffer = buffer  # type: ignore[method-assign]
    held = None
    for off in range(0, len(f.data), MIB):
        view = await p.read(off, MIB, len(f.data), 0)
        if off == 4 * SEGMENT:
            held = view                        # a reply not yet sent: its segment's buffer must stay as is
        if view is not None:
            assert bytes(view) == f.data[off:off + MIB], off
    segments = len(f.reads)
    assert segments == 12 and len(seen) < segments                # later segments reused earlier buffers
    assert held is not None and bytes(held) == f.data[4 * SEGMENT:4 * SEGMENT + MIB]
    p.drop()
    assert all(len(b) == SEGMENT for b in budget.spare) and budget.used == 0
    assert all(b is not held.obj for b in budget.spare)           # still viewed: not kept for reuse
    held.release()


async def _kernel_like_stream(p: SequentialPrefetch, f: File, window: int) -> int:
    """Read `f` in 1 MiB requests as the kernel sends a raised read-ahead window: two windows in flight,
    so a request may reach the daemon up to two windows' worth of requests early or late. Returns the
    requests not served from the window."""
    rnd = random.Random(7)
    spread = 2 * window // MIB
    offs = sorted(range(0, len(f.data), MIB), key=lambda o: o // MIB + rnd.uniform(0, spread))
    direct = 0
    for o in offs:
        view = await p.read(o, MIB, len(f.data), 0)
        assert view is None or bytes(view) == f.data[o:o + MIB], o
        direct += view is None
    return direct


@pytest.mark.parametrize("window_mib", [16, 32, 64])
async def test_a_raised_kernel_readahead_keeps_one_window(window_mib: int) -> None:
    """An admin may raise the mount's read_ahead_kb: requests then land further ahead of the stream,
    out of order; the window must follow instead of restarting (which read the file several times)."""
    f = File(256 * MIB)
    budget = Budget()
    budget.follow_readahead(window_mib * MIB)
    p = SequentialPrefetch(f.read_into, budget)
    direct = await _kernel_like_stream(p, f, window_mib * MIB)
    assert sum(n for _, n in f.reads) == len(f.data)             # every segment fetched once
    assert direct * MIB <= 2 * window_mib * MIB                   # only the first windows, before the start
    p.drop()
    if window_mib >= 32:                                          # a window the default reach does not cover:
        f2 = File(256 * MIB)                                      # without following it, the stream keeps
        p2 = SequentialPrefetch(f2.read_into, Budget())           # restarting and is mostly read directly
        assert await _kernel_like_stream(p2, f2, window_mib * MIB) > 10 * direct
        p2.drop()
