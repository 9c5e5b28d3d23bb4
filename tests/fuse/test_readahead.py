"""The daemon's read-ahead window on a real mount: byte-exact streams, never stale after a local write."""
from __future__ import annotations

import os

MIB = 1 << 20


def test_sequential_read_of_a_large_file_is_byte_exact(d) -> None:
    data = os.urandom(40 * MIB + 4321)
    (d / "big").write_bytes(data)
    for bs in (MIB, 1536 * 1024, 128 * 1024):               # the open drops the page cache (keep_cache off)
        got = bytearray()
        with open(d / "big", "rb", buffering=0) as f:
            while chunk := f.read(bs):
                got += chunk
        assert got == data, bs


def test_holes_read_as_zeros_through_the_window(d) -> None:
    """Read-ahead segments are not zero-filled up front: holes must still read as zeros, also after
    the daemon's buffers held other data (the random file first)."""
    noise = os.urandom(24 * MIB)
    (d / "noise").write_bytes(noise)
    with open(d / "noise", "rb", buffering=0) as f:
        while f.read(MIB):
            pass
    islands = {3 * MIB + 17: os.urandom(1000), 11 * MIB: os.urandom(MIB), 30 * MIB - 5: os.urandom(5)}
    with open(d / "sparse", "wb") as f:
        for off, data in islands.items():
            f.seek(off)
            f.write(data)
    expect = bytearray(30 * MIB)
    for off, data in islands.items():
        expect[off:off + len(data)] = data
    got = bytearray()
    with open(d / "sparse", "rb", buffering=0) as f:
        while chunk := f.read(MIB):
            got += chunk
    assert len(got) == len(expect) and got == expect


def test_window_never_serves_bytes_older_than_a_write_through_this_mount(d) -> None:
    data = bytearray(os.urandom(48 * MIB))
    (d / "f").write_bytes(data)
    with open(d / "f", "rb", buffering=0) as r:
        for off in range(0, 4 * MIB, MIB):                    # a sequential reader: the window reaches far ahead
            assert r.read(MIB) == data[off:off + MIB]
        new = os.urandom(MIB)
        with open(d / "f", "r+b") as w:                       # another handle of this mount overwrites ahead
            w.seek(30 * MIB)
            w.write(new)
        data[30 * MIB:31 * MIB] = new
        r.seek(30 * MIB - 2 * MIB)
        for off in range(28 * MIB, 33 * MIB, MIB):
            assert r.read(MIB) == data[off:off + MIB], off


def test_reader_and_truncate_on_the_same_mount(d) -> None:
    data = os.urandom(24 * MIB)
    (d / "t").write_bytes(data)
    with open(d / "t", "rb", buffering=0) as r:
        assert r.read(2 * MIB) == data[:2 * MIB]
        assert r.read(2 * MIB) == data[2 * MIB:4 * MIB]
        os.truncate(d / "t", 6 * MIB)                         # shorter now: the window must not outlive it
        r.seek(4 * MIB)
        assert r.read(8 * MIB) == data[4 * MIB:6 * MIB]
        assert r.read(MIB) == b""
