"""Data path through real processes: chunk/stripe boundaries, holes, overwrite, append, truncate, sessions.

The shared cluster has 64 KiB chunks striped over 2 chains, so a few hundred KiB already cross many
chunk edges and whole stripes.
"""
from __future__ import annotations

import io
import os
import threading

import pytest

from itest_util import CHUNK, rand_bytes
from threefs.client.fs import Client

STRIPE = 2 * CHUNK


@pytest.mark.parametrize("size", [1, 100, CHUNK - 1, CHUNK, CHUNK + 1, STRIPE, STRIPE + 1,
                                  3 * CHUNK + 17, 40 * CHUNK + 12345])
def test_round_trip_sizes(client, workdir, size):
    data = rand_bytes(size, size)
    path = f"{workdir}/f"
    with client.open(path, "wb") as f:
        assert f.write(data) == size
    assert client.stat(path).st_size == size
    assert client.read_file(path) == data
    with client.open(path, "rb") as f:
        assert f.read() == data
        assert f.read() == b""


def test_many_small_writes_across_chunk_edges(client, workdir):
    """Sequential writes whose pieces straddle chunk and stripe edges assemble the right bytes."""
    data = rand_bytes(5 * CHUNK + 333, 1)
    path = f"{workdir}/seq"
    step = 10_007       # prime: pieces land on every offset within chunks
    with client.open(path, "wb") as f:
        for off in range(0, len(data), step):
            f.write(data[off:off + step])
    assert client.read_file(path) == data


@pytest.mark.parametrize("offset,length", [
    (0, 1), (CHUNK - 10, 20), (CHUNK - 1, 2), (STRIPE - 1, 2), (CHUNK, CHUNK), (CHUNK + 5, CHUNK),
    (3 * CHUNK - 100, CHUNK + 200), (STRIPE - 7, 2 * STRIPE + 14), (1, 6 * CHUNK - 2), (0, 8 * CHUNK),
])
def test_pread_and_pwrite_straddling(client, workdir, offset, length):
    base = rand_bytes(8 * CHUNK, 2)
    path = f"{workdir}/p"
    client.write_file(path, base)
    with client.open(path, "rb") as f:
        assert f.pread(length, offset) == base[offset:offset + length]
        buf = bytearray(length)
        assert f.preadinto(buf, offset) == length
        assert bytes(buf) == base[offset:offset + length]
        buf.append(0)       # resizable: no view of it outlives the read (pooled buffers are reused)
    patch = rand_bytes(length, offset + 7)
    with client.open(path, "r+b") as f:
        assert f.pwrite(patch, offset) == length
    want = base[:offset] + patch + base[offset + length:]
    assert client.read_file(path) == want
    assert client.stat(path).st_size == len(base)


def test_sparse_file_holes_read_as_zeros(client, workdir):
    path = f"{workdir}/sparse"
    a, b = rand_bytes(1000, 3), rand_bytes(CHUNK + 5, 4)
    with client.open(path, "wb") as f:
        f.pwrite(a, 0)
        f.pwrite(b, 10 * CHUNK)
    end = 10 * CHUNK + len(b)
    assert client.stat(path).st_size == end
    got = client.read_file(path)
    assert len(got) == end
    assert got[:1000] == a
    assert got[1000:10 * CHUNK] == bytes(10 * CHUNK - 1000)
    assert got[10 * CHUNK:] == b
    with client.open(path, "rb") as f:      # a read entirely inside the hole
        assert f.pread(CHUNK, 4 * CHUNK + 3) == bytes(CHUNK)


def test_seek_past_eof_then_write_leaves_a_hole(client, workdir):
    path = f"{workdir}/seekhole"
    with client.open(path, "wb") as f:
        f.seek(3 * CHUNK + 5)
        assert f.write(b"xyz") == 3
        assert f.tell() == 3 * CHUNK + 8
    assert client.stat(path).st_size == 3 * CHUNK + 8
    assert client.read_file(path) == bytes(3 * CHUNK + 5) + b"xyz"


def test_truncate_inside_a_hole_of_a_sparse_file(client, workdir):
    path = f"{workdir}/sparse-trunc"
    a = rand_bytes(CHUNK, 13)
    with client.open(path, "wb") as f:
        f.pwrite(a, 0)
        f.pwrite(b"tail", 10 * CHUNK)
    cut = 5 * CHUNK + 100                 # inside the hole: the data at 10 chunks in must go
    with client.open(path, "r+b") as f:
        assert f.truncate(cut) == cut
    assert client.stat(path).st_size == cut
    assert client.read_file(path) == a + bytes(cut - CHUNK)
    with client.open(path, "r+b") as f:
        f.truncate(10 * CHUNK + 4)
    assert client.read_file(path)[10 * CHUNK:] == bytes(4), "truncated bytes came back"


def test_pwrite_beyond_eof_of_existing_file(client, workdir):
    path = f"{workdir}/grow"
    head = rand_bytes(CHUNK + 10, 5)
    client.write_file(path, head)
    tail = rand_bytes(300, 6)
    at = 3 * CHUNK + 50
    with client.open(path, "r+b") as f:
        f.pwrite(tail, at)
        assert f.length == at + len(tail)
    assert client.stat(path).st_size == at + len(tail)
    assert client.read_file(path) == head + bytes(at - len(head)) + tail


def test_overwrite_middle_of_chunk(client, workdir):
    path = f"{workdir}/ow"
    base = rand_bytes(3 * CHUNK, 8)
    client.write_file(path, base)
    off, patch = CHUNK + 1000, b"\xAB" * 4321
    with client.open(path, "r+b") as f:
        f.seek(off)
        assert f.write(patch) == len(patch)
        assert f.tell() == off + len(patch)
    got = client.read_file(path)
    assert got[off:off + len(patch)] == patch
    assert got[:off] == base[:off]
    assert got[off + len(patch):] == base[off + len(patch):]
    assert client.stat(path).st_size == len(base)


def test_append_mode(client, workdir):
    path = f"{workdir}/log"
    parts = [rand_bytes(n, n) for n in (10, CHUNK - 3, 7, CHUNK + 1)]
    with client.open(path, "ab") as f:
        f.write(parts[0])
    with client.open(path, "ab") as f:
        f.seek(0)                      # O_APPEND: writes go to the end regardless of the position
        f.write(parts[1])
        f.write(parts[2])
    with client.open(path, "ab") as f:
        f.write(parts[3])
    assert client.read_file(path) == b"".join(parts)
    assert client.stat(path).st_size == sum(map(len, parts))


def test_read_past_eof(client, workdir):
    path = f"{workdir}/small"
    client.write_file(path, b"0123456789")
    with client.open(path, "rb") as f:
        assert f.read(4) == b"0123"
        assert f.read(100) == b"456789"
        assert f.read(100) == b""
        assert f.read() == b""
        f.seek(CHUNK * 5)
        assert f.read(10) == b""
        assert f.pread(10, 8) == b"89"
        assert f.pread(10, 10) == b""
        assert f.pread(10, 1 << 30) == b""
        buf = bytearray(5)
        assert f.preadinto(buf, 100) == 0


def test_concurrent_writers_distinct_files(cluster, client, workdir):
    n = 8
    datas = [rand_bytes(CHUNK * (i + 1) + 17 * i, 100 + i) for i in range(n)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def writer(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            with client.open(f"{workdir}/w{i}", "wb") as f:
                for off in range(0, len(datas[i]), 50_000):
                    f.write(datas[i][off:off + 50_000])
        except BaseException as e:   # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    with Client(cluster.mgmtd_address) as other:
        for i in range(n):
            assert other.stat(f"{workdir}/w{i}").st_size == len(datas[i])
            assert other.read_file(f"{workdir}/w{i}") == datas[i]


def test_text_mode_round_trip(client, workdir):
    path = f"{workdir}/t.txt"
    lines = [f"line {i}: héllo wörld ✓ {'x' * (i % 97)}\n" for i in range(3000)]   # > 1 chunk, multibyte
    with client.open(path, "w") as f:
        assert isinstance(f, io.TextIOBase)
        f.writelines(lines)
    assert client.stat(path).st_size == len("".join(lines).encode())
    with client.open(path, "r") as f:
        assert f.readline() == lines[0]
        assert f.read() == "".join(lines[1:])
    with client.open(path, "r") as f:
        assert list(f) == lines
    assert client.read_file(path).decode() == "".join(lines)


def test_stat_size_is_precise_after_close(client, workdir):
    """Length comes from storage at close: unordered, unaligned pwrites give the max end."""
    path = f"{workdir}/precise"
    writes = [(5 * CHUNK + 3, 100), (0, 10), (CHUNK - 1, 2), (2 * CHUNK + 7, CHUNK)]
    with client.open(path, "wb") as f:
        for off, n in writes:
            f.pwrite(rand_bytes(n, off), off)
    expect = max(off + n for off, n in writes)
    assert client.stat(path).st_size == expect
    with Client(client.aio.mgmtd.address) as other:
        assert other.stat(path).st_size == expect
        assert len(other.read_file(path)) == expect


def test_fsync_makes_data_visible_to_another_client(cluster, client, workdir):
    path = f"{workdir}/synced"
    data = rand_bytes(4 * CHUNK + 99, 9)
    with Client(cluster.mgmtd_address) as reader:
        f = client.open(path, "wb")
        try:
            f.write(data)
            f.fsync()
            # close-to-open: a fresh open by another client after fsync sees length and bytes
            assert reader.stat(path).st_size == len(data)
            with reader.open(path, "rb") as r:
                assert r.read() == data
            more = rand_bytes(CHUNK, 10)
            f.write(more)
            f.fsync()
            assert reader.read_file(path) == data + more
        finally:
            f.close()
        assert reader.read_file(path) == data + more


def test_truncate_down_and_up(client, workdir):
    path = f"{workdir}/trunc"
    data = rand_bytes(6 * CHUNK + 500, 11)
    client.write_file(path, data)
    cut = 2 * CHUNK + 1234          # inside chunk 2
    with client.open(path, "r+b") as f:
        assert f.truncate(cut) == cut
        assert f.length == cut
    assert client.stat(path).st_size == cut
    assert client.read_file(path) == data[:cut]
    grow = 5 * CHUNK + 7
    with client.open(path, "r+b") as f:
        assert f.truncate(grow) == grow
    assert client.stat(path).st_size == grow
    got = client.read_file(path)
    assert got[:cut] == data[:cut]
    assert got[cut:] == bytes(grow - cut), "bytes past the truncation point came back"
    with client.open(path, "r+b") as f:
        assert f.truncate(0) == 0
    assert client.stat(path).st_size == 0
    assert client.read_file(path) == b""


def test_open_w_truncates_existing(client, workdir):
    path = f"{workdir}/rew"
    client.write_file(path, rand_bytes(3 * CHUNK, 12))
    short = b"short"
    with client.open(path, "wb") as f:
        f.write(short)
    assert client.stat(path).st_size == len(short)
    assert client.read_file(path) == short
    # the old chunks are gone: growing the file again shows zeros, not the old bytes
    with client.open(path, "r+b") as f:
        f.truncate(2 * CHUNK)
    assert client.read_file(path) == short + bytes(2 * CHUNK - len(short))


def test_write_to_read_only_handle_fails(client, workdir):
    path = f"{workdir}/ro"
    client.write_file(path, b"abc")
    with client.open(path, "rb") as f:
        with pytest.raises(OSError):
            f.write(b"x")
    with pytest.raises(FileNotFoundError):
        client.open(f"{workdir}/missing", "rb")
    with pytest.raises(ValueError):
        client.open(path, "rq")
    assert client.read_file(path) == b"abc"


def test_os_urandom_large_file(client, workdir):
    """A few MiB over many chunks and stripes, written with one call, read in odd-sized pieces."""
    data = os.urandom(3 << 20)
    path = f"{workdir}/big"
    client.write_file(path, data)
    with client.open(path, "rb") as f:
        out = bytearray()
        while True:
            piece = f.read(77_777)
            if not piece:
                break
            out += piece
    assert bytes(out) == data
