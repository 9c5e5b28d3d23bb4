"""ChunkEngine: versions, copy-on-write / in-place appends, CRCs, corruption, concurrency, reopen."""
from __future__ import annotations

import errno
import os
import random
import signal
import struct
import subprocess
import sys
import threading

import pytest
from crc32c import crc32c

from engine_util import CS, cid, content, put, write
from page_cache_util import cached, evict
from threefs.common.errors import Code, FSError
from threefs.proto.storage_pb2 import CLEAN, COMMIT, EXTEND, REMOVE, TRUNCATE, WRITE
from threefs.storage import page_map
from threefs.storage.chunk_engine import BLOCK_SIZE, ChunkEngine


def block_crcs(content: bytes) -> bytes:
    return b"".join(
        struct.pack("<I", crc32c(content[i : i + BLOCK_SIZE])) for i in range(0, len(content), BLOCK_SIZE)
    )


def code_of(excinfo) -> Code:
    assert isinstance(excinfo.value, FSError)
    return excinfo.value.code


@pytest.fixture
def eng(tmp_path):
    e = ChunkEngine(tmp_path / "t1", 101)
    yield e
    e.close()


def check_meta(e: ChunkEngine, c: bytes, expect: bytes) -> None:
    m = e.get(c)
    assert m.state == COMMIT and m.commit_ver == m.update_ver
    assert m.size == len(expect)
    assert m.checksum == crc32c(expect)
    assert m.block_crcs == block_crcs(expect)


def test_write_commit_read_round_trip(eng):
    c = cid(1)
    data = os.urandom(3 * BLOCK_SIZE + 123)
    m = write(eng, c, 1, 0, data, client_id=b"cli", request_id=7)
    assert (m.state, m.commit_ver, m.update_ver, m.pending_size) == (CLEAN, 0, 1, len(data))
    assert m.pending_checksum == crc32c(data) and m.pending_block_crcs == block_crcs(data)
    assert (m.last_client_id, m.last_request_id, m.target_id) == (b"cli", 7, 101)
    m = eng.commit(c, 1, 5)
    assert (m.state, m.commit_ver, m.update_ver, m.chain_ver) == (COMMIT, 1, 1, 5)
    check_meta(eng, c, data)
    assert content(eng, c) == data
    # unaligned read spanning blocks into a caller buffer, clipped to the size
    out = bytearray(CS)
    n, meta = eng.read(c, BLOCK_SIZE - 10, 2 * BLOCK_SIZE, memoryview(out))
    assert n == 2 * BLOCK_SIZE and out[:n] == data[BLOCK_SIZE - 10 : 3 * BLOCK_SIZE - 10]
    assert meta.commit_ver == 1
    n, _ = eng.read(c, len(data) - 5, 100, out)
    assert n == 5 and out[:5] == data[-5:]
    assert eng.read(c, len(data), 10, out)[0] == 0
    assert eng.read(c, len(data) + 10, 10)[0] == b""
    small = bytearray(7)
    assert eng.read(c, 3, 100, small)[0] == 7 and small == data[3:10]
    with pytest.raises(FSError) as ei:
        eng.read(cid(2), 0, 10)
    assert code_of(ei) == Code.CHUNK_NOT_FOUND and isinstance(ei.value, FileNotFoundError)


def test_append_in_place_keeps_committed_content(eng):
    c = cid(1)
    first = b"a" * (BLOCK_SIZE + 100)
    put(eng, c, 1, 0, first)
    committed_ino = os.stat(eng.path_of(c, 1)).st_ino
    more = b"b" * (BLOCK_SIZE * 2)
    m = write(eng, c, 2, len(first), more)
    full = first + more
    assert m.pending_size == len(full) and m.pending_checksum == crc32c(full)
    assert m.pending_block_crcs == block_crcs(full)
    # the pending version shares the committed inode; committed bytes and metadata are untouched
    assert os.stat(eng.path_of(c, 2)).st_ino == committed_ino
    assert m.size == len(first) and m.checksum == crc32c(first)
    with open(eng.path_of(c, 1), "rb") as f:
        assert f.read(len(first)) == first
    with pytest.raises(FSError) as ei:
        eng.read(c, 0, 10)
    assert code_of(ei) == Code.CHUNK_NOT_COMMIT
    assert content(eng, c, relaxed=True) == full
    eng.commit(c, 2, 1)
    assert not eng.path_of(c, 1).exists() and os.stat(eng.path_of(c, 2)).st_ino == committed_ino
    check_meta(eng, c, full)
    assert content(eng, c) == full


def test_append_after_abandoned_bytes_and_stale_link(eng):
    c = cid(1)
    put(eng, c, 1, 0, b"x" * 1000)
    with open(eng.path_of(c, 1), "r+b") as f:  # a crashed append left garbage past the size
        f.seek(1000)
        f.write(b"G" * 5000)
    write(eng, c, 2, 3000, b"y" * 10)  # append after a gap
    eng.commit(c, 2, 1)
    expect = b"x" * 1000 + bytes(2000) + b"y" * 10
    assert content(eng, c) == expect
    check_meta(eng, c, expect)
    # a stale hard link named like the next version must not let a COW truncate live data
    os.link(eng.path_of(c, 2), eng.path_of(c, 3))
    m = write(eng, c, 3, 5, b"zz")
    assert os.stat(eng.path_of(c, 3)).st_ino != os.stat(eng.path_of(c, 2)).st_ino
    with open(eng.path_of(c, 2), "rb") as f:
        assert f.read(m.size) == expect


def test_new_chunk_replaces_a_file_left_by_a_crash(eng):
    """A crash between creating a version's file and recording it leaves the file behind: the next
    write of that version starts from an empty file (also when the caller passes the looked-up meta)."""
    c = cid(1)
    eng.path_of(c, 1).write_bytes(b"G" * 9000)
    data = b"d" * 100
    write(eng, c, 1, 0, data, current=eng.get(c))
    eng.commit(c, 1, 1)
    assert content(eng, c) == data and os.path.getsize(eng.path_of(c, 1)) == len(data)
    check_meta(eng, c, data)


def test_cow_overwrite_in_the_middle(eng):
    c = cid(1)
    old = os.urandom(3 * BLOCK_SIZE)
    put(eng, c, 1, 0, old)
    patch = b"P" * 1000
    m = write(eng, c, 2, BLOCK_SIZE + 500, patch)
    new = old[: BLOCK_SIZE + 500] + patch + old[BLOCK_SIZE + 1500 :]
    assert m.pending_size == len(old) and m.pending_checksum == crc32c(new)
    assert os.stat(eng.path_of(c, 1)).st_ino != os.stat(eng.path_of(c, 2)).st_ino
    with open(eng.path_of(c, 1), "rb") as f:
        assert f.read() == old
    assert content(eng, c, relaxed=True) == new
    eng.commit(c, 2, 1)
    assert not eng.path_of(c, 1).exists()
    assert content(eng, c) == new
    check_meta(eng, c, new)
    # a full overwrite shorter than nothing else: offset 0, length >= size -> fresh file
    big = os.urandom(4 * BLOCK_SIZE)
    put(eng, c, 3, 0, big)
    assert content(eng, c) == big
    check_meta(eng, c, big)


def test_sparse_write_zero_fills(eng):
    c = cid(1)
    put(eng, c, 1, 100_000, b"tail")  # new chunk, gap from 0
    expect = bytes(100_000) + b"tail"
    assert content(eng, c) == expect
    check_meta(eng, c, expect)
    put(eng, c, 2, 10, b"head")  # COW inside the zero gap
    expect = bytes(10) + b"head" + expect[14:]
    assert content(eng, c) == expect
    check_meta(eng, c, expect)


def test_truncate_and_extend(eng):
    c = cid(1)
    data = os.urandom(2 * BLOCK_SIZE + 7)
    put(eng, c, 1, 0, data)

    def trunc(ver: int, kind: int, length: int) -> None:
        eng.update(c, update_ver=ver, chain_ver=1, kind=kind, length=length, chunk_size=CS)
        eng.commit(c, ver, 1)

    trunc(2, TRUNCATE, BLOCK_SIZE + 3)  # shrink: COW
    assert content(eng, c) == data[: BLOCK_SIZE + 3]
    check_meta(eng, c, data[: BLOCK_SIZE + 3])
    trunc(3, TRUNCATE, 3 * BLOCK_SIZE)  # grow with zeros: in place
    expect = data[: BLOCK_SIZE + 3] + bytes(2 * BLOCK_SIZE - 3)
    assert content(eng, c) == expect
    check_meta(eng, c, expect)
    trunc(4, EXTEND, 10)  # never shrinks
    assert content(eng, c) == expect
    check_meta(eng, c, expect)
    trunc(5, EXTEND, 3 * BLOCK_SIZE + 1)
    expect += b"\0"
    check_meta(eng, c, expect)
    assert content(eng, c) == expect
    trunc(6, TRUNCATE, 0)
    assert content(eng, c) == b"" and not eng.path_of(c, 6).exists() and not eng.path_of(c, 5).exists()
    check_meta(eng, c, b"")
    put(eng, c, 7, 0, b"again")
    assert content(eng, c) == b"again"
    d = cid(2)  # truncate creates a missing chunk
    eng.update(d, update_ver=1, chain_ver=1, kind=TRUNCATE, length=5000, chunk_size=CS)
    eng.commit(d, 1, 1)
    assert content(eng, d) == bytes(5000)
    with pytest.raises(FSError) as ei:
        eng.update(d, update_ver=2, chain_ver=1, kind=TRUNCATE, length=CS + 1, chunk_size=CS)
    assert code_of(ei) == Code.INVALID_ARGUMENT


def test_remove_then_commit_deletes_meta_and_files(eng):
    c = cid(1)
    put(eng, c, 1, 0, b"abc" * 1000)
    assert eng.space()[3] == 1
    m = eng.update(c, update_ver=2, chain_ver=1, kind=REMOVE, chunk_size=CS)
    assert m.removing and m.pending_size == 0 and m.state == CLEAN
    with pytest.raises(FSError) as ei:
        eng.read(c, 0, 10, relaxed=True)
    assert code_of(ei) == Code.CHUNK_NOT_FOUND
    assert eng.commit(c, 2, 1) is None
    assert eng.get(c) is None and not eng.path_of(c, 1).exists() and not eng.path_of(c, 2).exists()
    assert eng.space()[3] == 0
    assert eng.commit(c, 2, 1) is None  # retried commit of a removal
    put(eng, c, 1, 0, b"new life")  # versions restart
    assert content(eng, c) == b"new life"


def test_not_commit_vs_relaxed(eng):
    c = cid(1)
    write(eng, c, 1, 0, b"pending")
    with pytest.raises(FSError) as ei:
        eng.read(c, 0, 100)
    assert code_of(ei) == Code.CHUNK_NOT_COMMIT and ei.value.retryable
    data, meta = eng.read(c, 0, 100, relaxed=True)
    assert data == b"pending" and meta.update_ver == 1
    eng.commit(c, 1, 1)
    write(eng, c, 2, 0, b"PENDING!")
    assert eng.read(c, 0, 100, relaxed=True)[0] == b"PENDING!"


def test_version_rules(eng):
    c = cid(1)
    with pytest.raises(FSError) as ei:
        write(eng, c, 2, 0, b"x")
    assert code_of(ei) == Code.CHUNK_MISSING_UPDATE
    put(eng, c, 1, 0, b"one")
    with pytest.raises(FSError) as ei:
        write(eng, c, 3, 0, b"x")
    assert code_of(ei) == Code.CHUNK_MISSING_UPDATE
    with pytest.raises(FSError) as ei:
        write(eng, c, 1, 0, b"x")
    assert code_of(ei) == Code.CHUNK_STALE_UPDATE
    write(eng, c, 2, 0, b"two")
    with pytest.raises(FSError) as ei:
        write(eng, c, 3, 0, b"three")
    assert code_of(ei) == Code.CHUNK_NOT_CLEAN
    with pytest.raises(FSError) as ei:
        eng.commit(c, 3, 1)
    assert code_of(ei) == Code.INVALID_ARGUMENT
    stale = eng.commit(c, 1, 9)  # stale commit: unchanged success
    assert (stale.commit_ver, stale.update_ver, stale.chain_ver) == (1, 2, 1)
    assert eng.commit(c, 2, 1).commit_ver == 2
    assert eng.commit(c, 2, 1).commit_ver == 2
    assert eng.commit(cid(9), 1, 1) is None
    with pytest.raises(FSError) as ei:
        write(eng, c, 3, CS - 1, b"xy")
    assert code_of(ei) == Code.INVALID_ARGUMENT
    assert content(eng, c) == b"two"


def test_data_crc_mismatch_rejected(eng):
    c = cid(1)
    put(eng, c, 1, 0, b"good")
    with pytest.raises(FSError) as ei:
        eng.update(c, update_ver=2, chain_ver=1, kind=WRITE, data=b"evil", data_crc=crc32c(b"good"), chunk_size=CS)
    assert code_of(ei) == Code.CHECKSUM_MISMATCH
    m = eng.get(c)
    assert m.update_ver == m.commit_ver == 1 and not eng.path_of(c, 2).exists()


def test_full_replace_over_pending_and_committed(eng):
    c = cid(1)
    put(eng, c, 1, 0, b"a" * 5000)
    write(eng, c, 2, 0, b"b" * 10)  # pending COW file .2
    new = os.urandom(BLOCK_SIZE + 1)
    m = eng.update(c, update_ver=7, chain_ver=3, kind=WRITE, data=new, data_crc=crc32c(new), chunk_size=CS,
                   full_replace=True)
    assert (m.commit_ver, m.update_ver, m.state, m.chain_ver) == (6, 7, CLEAN, 3)
    assert m.pending_checksum == crc32c(new) and m.size == 0
    assert not eng.path_of(c, 1).exists() and not eng.path_of(c, 2).exists()
    with pytest.raises(FSError):
        eng.read(c, 0, 10)
    eng.commit(c, 7, 3)
    assert content(eng, c) == new
    check_meta(eng, c, new)
    # same version again (resync of an identical version) replaces the file
    again = b"r" * 300
    eng.update(c, update_ver=7, chain_ver=3, kind=WRITE, data=again, chunk_size=CS, full_replace=True)
    eng.commit(c, 7, 3)
    assert content(eng, c) == again
    # full replace onto a missing chunk, and a replicated removal
    d = cid(2)
    eng.update(d, update_ver=4, chain_ver=3, kind=WRITE, data=b"x", chunk_size=CS, full_replace=True)
    assert eng.space()[3] == 2
    eng.update(d, update_ver=5, chain_ver=3, kind=REMOVE, chunk_size=CS, full_replace=True)
    assert eng.commit(d, 5, 3) is None and eng.space()[3] == 1 and not eng.path_of(d, 4).exists()


def test_force_commit(eng):
    c = cid(1)
    put(eng, c, 1, 0, b"one")
    write(eng, c, 2, 0, b"two!")
    m = eng.commit(c, 0, 4, force=True)
    assert (m.commit_ver, m.update_ver, m.state, m.chain_ver) == (2, 2, COMMIT, 4)
    assert content(eng, c) == b"two!"
    assert eng.commit(c, 0, 5, force=True).chain_ver == 4  # nothing pending: unchanged


def test_on_disk_corruption_detected_per_block(eng):
    c = cid(1)
    data = os.urandom(3 * BLOCK_SIZE)
    put(eng, c, 1, 0, data)
    path = eng.path_of(c, 1)
    with open(path, "r+b") as f:
        f.seek(BLOCK_SIZE + 77)
        b = f.read(1)
        f.seek(BLOCK_SIZE + 77)
        f.write(bytes([b[0] ^ 0xFF]))
    for off, n in ((BLOCK_SIZE + 77, 1), (BLOCK_SIZE, BLOCK_SIZE), (BLOCK_SIZE - 1, 2), (0, 3 * BLOCK_SIZE)):
        with pytest.raises(FSError) as ei:
            eng.read(c, off, n, bytearray(n))
        assert code_of(ei) == Code.CHECKSUM_MISMATCH
    assert eng.read(c, 0, BLOCK_SIZE)[0] == data[:BLOCK_SIZE]
    assert eng.read(c, 2 * BLOCK_SIZE + 5, 100)[0] == data[2 * BLOCK_SIZE + 5 : 2 * BLOCK_SIZE + 105]
    with pytest.raises(FSError) as ei:  # a COW update does not propagate corrupt content
        write(eng, c, 2, 10, b"x")
    assert code_of(ei) == Code.CHECKSUM_MISMATCH
    os.truncate(path, BLOCK_SIZE + 10)  # a lost tail is corruption too
    with pytest.raises(FSError) as ei:
        eng.read(c, 2 * BLOCK_SIZE, 10)
    assert code_of(ei) == Code.CHECKSUM_MISMATCH


def test_reopen_keeps_everything(tmp_path):
    e = ChunkEngine(tmp_path / "t", 7)
    put(e, cid(1), 1, 0, b"committed")
    put(e, cid(2), 1, 0, b"x" * 100)
    write(e, cid(2), 2, 100, b"y" * 100)
    with pytest.raises(FSError) as ei:
        ChunkEngine(tmp_path / "t", 7)
    assert code_of(ei) == Code.BUSY
    e.close()
    e.close()
    e = ChunkEngine(tmp_path / "t", 7)
    try:
        assert content(e, cid(1)) == b"committed"
        assert content(e, cid(2), relaxed=True) == b"x" * 100 + b"y" * 100
        assert e.space()[3] == 2
        e.commit(cid(2), 2, 1)
        assert content(e, cid(2)) == b"x" * 100 + b"y" * 100
    finally:
        e.close()


def test_metas_range_reverse_limit(eng):
    for i in (5, 1, 3, 9, 7):
        put(eng, cid(i), 1, 0, bytes([i]))
    ids = lambda ms: [int.from_bytes(m.chunk_id, "big") for m in ms]  # noqa: E731
    assert ids(eng.metas()) == [1, 3, 5, 7, 9]
    assert ids(eng.metas(cid(3), cid(9))) == [3, 5, 7]
    assert ids(eng.metas(cid(3), cid(9), reverse=True)) == [7, 5, 3]
    assert ids(eng.metas(cid(2), cid(8), reverse=True, limit=2)) == [7, 5]
    assert ids(eng.metas(reverse=True, limit=1)) == [9]
    assert ids(eng.metas(cid(4), limit=2)) == [5, 7]
    assert eng.metas(cid(10)) == [] and eng.metas(cid(4), cid(5)) == []
    assert eng.metas(end=cid(1), reverse=True) == []


def test_sync_space_remove_all(eng):
    for i in range(10):
        put(eng, cid(i), 1, 0, os.urandom(1000))
    write(eng, cid(3), 2, 1000, b"more")
    eng.sync()
    eng.sync()
    capacity, used, free, chunks = eng.space()
    assert capacity > 0 and 0 < used <= capacity and 0 <= free <= capacity and chunks == 10
    eng.remove_all()
    assert eng.metas() == [] and eng.space()[3] == 0
    assert not any(os.scandir(eng.path_of(cid(3), 1).parent))
    put(eng, cid(3), 1, 0, b"fresh")
    assert content(eng, cid(3)) == b"fresh"
    eng.sync()


def test_concurrent_different_chunks(eng):
    def worker(base: int) -> None:
        for i in range(20):
            c = cid(base * 100 + i)
            data = bytes([base]) * (BLOCK_SIZE + i)
            put(eng, c, 1, 0, data)
            put(eng, c, 2, len(data), b"!")
            assert content(eng, c) == data + b"!"

    threads = [threading.Thread(target=worker, args=(b,)) for b in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert eng.space()[3] == 80


def test_readers_never_see_torn_or_uncommitted_content(eng):
    c = cid(1)
    size_cap = 4 * BLOCK_SIZE
    expected: dict[int, bytes] = {}
    cur = bytes([1]) * (2 * BLOCK_SIZE)
    put(eng, c, 1, 0, cur)
    expected[1] = cur
    done = threading.Event()
    failures: list[str] = []
    stats = {"ok": 0, "not_commit": 0}

    def writer() -> None:
        nonlocal cur
        rng = random.Random(1)
        try:
            for ver in range(2, 202):
                byte = bytes([ver % 251 + 1])
                op = rng.randrange(4)
                if op == 0 or len(cur) >= size_cap:  # write from 0 (a full overwrite if long enough)
                    head = byte * rng.randrange(1, size_cap)
                    new = head + cur[len(head) :]
                    write(eng, c, ver, 0, head)
                elif op == 1:  # copy-on-write patch
                    off = rng.randrange(len(cur))
                    patch = byte * rng.randrange(1, min(len(cur) - off, BLOCK_SIZE) + 1)
                    new = cur[:off] + patch + cur[off + len(patch) :]
                    write(eng, c, ver, off, patch)
                elif op == 2:  # in-place append
                    add = byte * rng.randrange(1, BLOCK_SIZE)
                    new = cur + add
                    write(eng, c, ver, len(cur), add)
                else:  # truncate down
                    new = cur[: rng.randrange(len(cur))]
                    eng.update(c, update_ver=ver, chain_ver=1, kind=TRUNCATE, length=len(new), chunk_size=CS)
                expected[ver] = new
                assert eng.commit(c, ver, 1).commit_ver == ver
                cur = new
        except Exception as e:  # pragma: no cover - reported below
            failures.append(f"writer: {e!r}")
        finally:
            done.set()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        buf = bytearray(size_cap)
        while True:
            last = done.is_set()
            off = rng.choice([0, 0, rng.randrange(size_cap)])
            length = rng.choice([size_cap, rng.randrange(1, size_cap)])
            try:
                n, meta = eng.read(c, off, length, buf)
            except FSError as e:
                if e.code != Code.CHUNK_NOT_COMMIT:
                    failures.append(f"reader: {e!r}")
                    return
                stats["not_commit"] += 1
            else:
                want = expected[meta.commit_ver][off : off + length]
                if bytes(buf[:n]) != want:
                    failures.append(f"torn read at v{meta.commit_ver} off {off} len {length}")
                    return
                stats["ok"] += 1
            if last:
                return

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in (1, 2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # interleave the threads finely
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures
    assert stats["ok"] >= 2


def test_read_retries_when_commit_races_the_lookup(eng, monkeypatch):
    """A commit (which unlinks the old file) lands between the lookup and the open, or during the read."""
    c = cid(1)
    put(eng, c, 1, 0, b"1" * 1000)
    real_get = eng.get
    calls = {"n": 0}

    def bump() -> None:
        with monkeypatch.context() as m:  # the engine's own lookups inside put() are not hooked
            m.setattr(eng, "get", real_get)
            ver = real_get(c).commit_ver + 1
            put(eng, c, ver, 0, str(ver % 10).encode() * 2000)  # full overwrite: new file, old one unlinked

    def commit_after_lookup(chunk_id, at_call):
        calls["n"] += 1
        meta = real_get(chunk_id)
        if calls["n"] == at_call:
            bump()
        return meta

    def commit_before_lookup(chunk_id, at_call):
        calls["n"] += 1
        if calls["n"] == at_call:
            bump()
        return real_get(chunk_id)

    monkeypatch.setattr(eng, "get", lambda chunk_id: commit_after_lookup(chunk_id, 1))
    data, meta = eng.read(c, 0, CS)  # opening .1 fails -> fresh lookup -> v2
    assert meta.commit_ver == 2 and data == b"2" * 2000
    calls["n"] = 0
    monkeypatch.setattr(eng, "get", lambda chunk_id: commit_before_lookup(chunk_id, 2))
    data, meta = eng.read(c, 0, CS)  # v2 read, v3 committed before the re-check -> read again
    assert meta.commit_ver == 3 and data == b"3" * 2000
    calls["n"] = 0
    monkeypatch.setattr(eng, "get", lambda chunk_id: commit_after_lookup(chunk_id, calls["n"] + 1))
    with pytest.raises(FSError) as ei:  # a chunk that changes on every lookup: give up, retryably
        eng.read(c, 0, CS)
    assert code_of(ei) == Code.CHUNK_NOT_COMMIT


def test_disk_full_maps_to_no_space(eng, monkeypatch):
    put(eng, cid(1), 1, 0, b"keep")

    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(FSError) as ei:
        write(eng, cid(1), 2, 0, b"new content")
    assert code_of(ei) == Code.NO_SPACE
    monkeypatch.undo()
    m = eng.get(cid(1))
    assert m.commit_ver == m.update_ver == 1 and content(eng, cid(1)) == b"keep"
    put(eng, cid(1), 2, 0, b"new content")  # the failed attempt left nothing in the way
    assert content(eng, cid(1)) == b"new content"


def test_survives_sigkill_without_sync(tmp_path):
    script = f"""
import os, signal
from crc32c import crc32c
from threefs.proto.storage_pb2 import WRITE
from threefs.storage.chunk_engine import ChunkEngine
e = ChunkEngine({str(tmp_path / "t")!r}, 1)
for i in range(3):
    c = b"\\0\\0" + i.to_bytes(14, "big")
    d = bytes([65 + i]) * 70000
    e.update(c, update_ver=1, chain_ver=1, kind=WRITE, data=d, data_crc=crc32c(d), chunk_size=1 << 20)
    if i < 2:
        e.commit(c, 1, 1)
os.kill(os.getpid(), signal.SIGKILL)
"""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    proc = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    e = ChunkEngine(tmp_path / "t", 1)
    try:
        assert content(e, cid(0)) == b"A" * 70000 and content(e, cid(1)) == b"B" * 70000
        assert e.get(cid(2)).update_ver == 1 and content(e, cid(2), relaxed=True) == b"C" * 70000
    finally:
        e.close()


def test_nowait_read_serves_cached_bytes_and_defers_cold_ones(eng):
    """A `nowait` read returns page-cache bytes; bytes that need the disk raise WouldBlock, never block."""
    from threefs.storage.chunk_engine import WouldBlock

    data = os.urandom(CS)
    eng.update(cid(1), update_ver=1, chain_ver=1, kind=WRITE, data=data, chunk_size=CS)
    eng.commit(cid(1), 1, 1)
    out = bytearray(CS)
    if not getattr(os, "RWF_NOWAIT", 0):
        with pytest.raises(WouldBlock):
            eng.read(cid(1), 0, CS, out, nowait=True)
        return
    n, _ = eng.read(cid(1), 0, CS, out, nowait=True)  # just written: cached
    assert n == CS and bytes(out) == data
    eng.sync()  # clean pages can be dropped
    evict(eng._path(cid(1), 1))
    with pytest.raises(WouldBlock):
        eng.read(cid(1), 0, CS, bytearray(CS), nowait=True)
    n, _ = eng.read(cid(1), 0, CS, out)  # the blocking read (on an I/O thread in the service) still works
    assert n == CS and bytes(out) == data


def test_nowait_reads_defer_a_chunk_file_whose_path_is_not_cached(eng, monkeypatch):
    """Opening a chunk file whose dentry was evicted would read the disk on the event loop: a nowait
    read (and read_view) raises WouldBlock instead; the blocking read opens it as usual."""
    from threefs.storage import chunk_engine
    from threefs.storage.chunk_engine import WouldBlock

    data = os.urandom(CS)
    put(eng, cid(5), 1, 0, data)
    monkeypatch.setattr(chunk_engine, "open_cached", lambda path, flags: None)   # as if evicted
    with pytest.raises(WouldBlock):
        eng.read(cid(5), 0, 4096, bytearray(4096), nowait=True)
    with pytest.raises(WouldBlock):
        eng.read_view(cid(5), 0, CS)
    out = bytearray(CS)
    n, _ = eng.read(cid(5), 0, CS, out)
    assert n == CS and bytes(out) == data


@pytest.mark.parametrize("case", ["fresh", "append", "append-unaligned", "cow", "full-replace"])
def test_payload_crc_is_checked_on_every_write_path_before_anything_is_written(eng, case):
    """The payload CRC is derived from the same single pass that builds the block CRCs: a bad one
    must still be refused before a data file or metadata changes, on every write path."""
    c = cid(7)
    base = os.urandom(3 * BLOCK_SIZE + 100)
    if case != "fresh":
        put(eng, c, 1, 0, base)
    payload = os.urandom(2 * BLOCK_SIZE + 17)
    offset = {"fresh": 0, "append": len(base), "append-unaligned": len(base) + 5, "cow": 1000,
              "full-replace": 0}[case]
    bad = crc32c(payload) ^ 1
    ver = 1 if case == "fresh" else 2
    with pytest.raises(FSError) as ei:
        eng.update(c, update_ver=ver, chain_ver=1, kind=WRITE, offset=offset, data=payload, data_crc=bad,
                   chunk_size=CS, full_replace=case == "full-replace")
    assert code_of(ei) == Code.CHECKSUM_MISMATCH
    assert not eng.path_of(c, ver).exists()
    if case == "fresh":
        assert eng.get(c) is None
    else:
        m = eng.get(c)
        assert m.update_ver == m.commit_ver == 1 and content(eng, c) == base
    # the same update with the right CRC goes through and reads back
    write(eng, c, ver, offset, payload, full_replace=case == "full-replace")
    eng.commit(c, ver, 1)
    if case in ("fresh", "full-replace"):
        expect = payload
    else:
        expect = bytearray(max(len(base), offset + len(payload)))
        expect[:len(base)] = base
        expect[offset:offset + len(payload)] = payload
    assert content(eng, c) == bytes(expect)
    m = eng.get(c)
    assert m.checksum == crc32c(bytes(expect)) and m.block_crcs == block_crcs(bytes(expect))


def test_read_view_serves_committed_cached_bytes_without_copying(eng):
    """read_view maps the page cache: same bytes and CRC checks as read(), WouldBlock when not cached."""
    from threefs.storage import page_map
    from threefs.storage.chunk_engine import WouldBlock

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform: read() serves every read")
    c = cid(3)
    data = os.urandom(CS - 1000)
    put(eng, c, 1, 0, data)
    view, meta = eng.read_view(c, 70_000, 200_000)
    assert bytes(view) == data[70_000:270_000] and meta.commit_ver == 1
    view, _ = eng.read_view(c, CS - 1500, 5000)  # clipped to the content
    assert bytes(view) == data[CS - 1500:]
    assert bytes(eng.read_view(c, CS, 10)[0]) == b""
    # a pending version is not served (and neither is a file whose pages left the cache)
    write(eng, c, 2, 0, b"x" * 10)
    with pytest.raises(FSError) as ei:
        eng.read_view(c, 0, 10)
    assert code_of(ei) == Code.CHUNK_NOT_COMMIT
    eng.commit(c, 2, 1)
    eng.sync()
    evict(eng._path(c, 2))
    with pytest.raises(WouldBlock):
        eng.read_view(c, 0, CS)
    # corruption is caught in the mapped bytes too
    c2 = cid(4)
    put(eng, c2, 1, 0, data)
    with open(eng._path(c2, 1), "r+b") as f:
        f.seek(BLOCK_SIZE + 7)
        f.write(bytes([data[BLOCK_SIZE + 7] ^ 0xFF]))
    assert bytes(eng.read_view(c2, 0, BLOCK_SIZE)[0]) == data[:BLOCK_SIZE]  # other blocks still fine
    for off, n in ((BLOCK_SIZE, 10), (0, 3 * BLOCK_SIZE), (100, CS)):  # one block; several, checked in one pass
        with pytest.raises(FSError) as ei:
            eng.read_view(c2, off, n)
        assert code_of(ei) == Code.CHECKSUM_MISMATCH
    assert bytes(eng.read_view(c2, 2 * BLOCK_SIZE, 3 * BLOCK_SIZE)[0]) == data[2 * BLOCK_SIZE:5 * BLOCK_SIZE]


def test_read_view_keeps_a_chunks_mapping_until_its_metadata_changes(eng):
    """Repeated reads of a chunk reuse one mapping; a byte changed under it is still caught, and any
    change of the chunk (commit over, removal and a new chunk at the same version) is read fresh, never
    stale bytes."""
    from threefs.storage.chunk_engine import WouldBlock

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform: read() serves every read")
    c = cid(5)
    one, two, three = os.urandom(CS), os.urandom(CS), os.urandom(CS // 2)

    def inode(ver: int) -> tuple[int, int]:
        st = os.stat(eng._path(c, ver))
        return st.st_dev, st.st_ino

    put(eng, c, 1, 0, one)
    first = inode(1)
    assert bytes(eng.read_view(c, 0, CS)[0]) == one
    assert page_map.is_mapped(*first)               # kept after the read's own views are gone
    maps = page_map._mapped.copy()
    assert bytes(eng.read_view(c, BLOCK_SIZE, 2 * BLOCK_SIZE)[0]) == one[BLOCK_SIZE:3 * BLOCK_SIZE]
    # The second read mapped nothing new. (The registry is the process's: mappings of earlier tests'
    # engines may be released meanwhile, when the garbage collector finalizes them.)
    assert set(page_map._mapped) <= set(maps) and page_map._mapped[first] == maps[first]

    # a byte changed under the kept mapping is still caught: the write moves the file's stamp
    with open(eng._path(c, 1), "r+b") as f:
        f.seek(7)
        f.write(bytes([one[7] ^ 0xFF]))
    with pytest.raises(FSError) as ei:
        eng.read_view(c, 0, BLOCK_SIZE)
    assert code_of(ei) == Code.CHECKSUM_MISMATCH
    del ei                                           # its traceback holds the read's frame and mapping
    with open(eng._path(c, 1), "r+b") as f:
        f.seek(7)
        f.write(one[7:8])

    put(eng, c, 2, 0, two)                           # committed over (copy-on-write): the old file is let go
    assert not page_map.is_mapped(*first)            # so the file pool may take it for new chunks
    assert bytes(eng.read_view(c, 0, CS)[0]) == two

    eng.update(c, update_ver=3, chain_ver=1, kind=REMOVE, chunk_size=CS)
    eng.commit(c, 3, 1)
    assert eng.get(c) is None
    put(eng, c, 1, 0, three)                         # a new chunk, at a version number read before
    assert bytes(eng.read_view(c, 0, CS)[0]) == three

    # a chunk whose pages left the cache is not kept mapped: the disk path serves it
    cold = cid(6)
    put(eng, cold, 1, 0, one)
    eng.sync()
    evict(eng._path(cold, 1))
    with pytest.raises(WouldBlock):
        eng.read_view(cold, 0, CS)
    st = os.stat(eng._path(cold, 1))
    assert not page_map.is_mapped(st.st_dev, st.st_ino)


def _mapped(e: ChunkEngine, c: bytes, ver: int = 1) -> bool:
    st = os.stat(e._path(c, ver))
    return page_map.is_mapped(st.st_dev, st.st_ino)


def test_mapped_chunks_zero_keeps_no_mapping(tmp_path):
    """`threefs storage --mapped-chunks 0`: every cached read maps and unmaps its chunk, as before."""
    from threefs.storage.map_cache import MapCache

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform")
    e = ChunkEngine(tmp_path / "t0", 102, maps=MapCache(0))
    try:
        c, data = cid(8), os.urandom(CS)
        put(e, c, 1, 0, data)
        assert bytes(e.read_view(c, 0, CS)[0]) == data
        assert not _mapped(e, c)
    finally:
        e.close()


def test_a_nodes_targets_share_one_bound_on_kept_mappings(tmp_path):
    """The bound is per node (the kernel limits mappings per process), and closing one target drops
    only its own mappings."""
    from threefs.storage.map_cache import MapCache

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform")
    maps = MapCache(2)
    e1, e2 = ChunkEngine(tmp_path / "t1", 201, maps=maps), ChunkEngine(tmp_path / "t2", 202, maps=maps)
    try:
        data = os.urandom(CS)
        for e, c in ((e1, cid(1)), (e2, cid(1)), (e2, cid(2))):      # the same chunk id on both targets
            put(e, c, 1, 0, data)
            assert bytes(e.read_view(c, 0, CS)[0]) == data
        assert not _mapped(e1, cid(1)) and _mapped(e2, cid(1)) and _mapped(e2, cid(2))   # oldest went first
        assert bytes(e1.read_view(cid(1), 0, CS)[0]) == data
        e1.close()
        assert not _mapped(e1, cid(1)) and _mapped(e2, cid(2))
    finally:
        e1.close()
        e2.close()


def test_read_view_without_mappings_left_falls_back(eng, monkeypatch):
    """mmap failing with ENOMEM (vm.max_map_count reached) sends the read to the disk path and gives
    mappings back, instead of failing the read."""
    from threefs.storage.chunk_engine import WouldBlock

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform")
    data = os.urandom(CS)
    for i in (1, 2, 3):
        put(eng, cid(i), 1, 0, data)
    for i in (1, 2):
        eng.read_view(cid(i), 0, CS)
    assert len(eng._maps) == 2

    def no_more(*args):
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))

    monkeypatch.setattr(page_map, "FileMap", no_more)
    with pytest.raises(WouldBlock):
        eng.read_view(cid(3), 0, CS)
    assert len(eng._maps) == 0
    assert content(eng, cid(3)) == data                   # read() serves it


def test_mapping_outlives_unlink_and_is_released_with_its_last_view(tmp_path):
    from threefs.storage import page_map

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform")
    p = tmp_path / "f"
    data = os.urandom(3 * page_map.PAGE + 11)
    p.write_bytes(data)
    fd = os.open(p, os.O_RDONLY)
    try:
        view = page_map.map_if_resident(fd, 100, len(data) - 100)
    finally:
        os.close(fd)
    assert view is not None
    p.unlink()  # the inode lives while mapped, as a chunk version does after a commit
    assert bytes(view) == data[100:]
    sub = view[5:10]
    del view
    assert bytes(sub) == data[105:110]


def test_direct_update_bypasses_the_page_cache(eng):
    from threefs.common.buffers import uninitialized_view
    from threefs.storage.chunk_engine import DIRECT_MIN, direct_capable

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore are needed to see page-cache residency")
    data = os.urandom(CS)
    aligned = uninitialized_view(CS)
    aligned[:] = data
    assert direct_capable(aligned, 0)
    assert not direct_capable(aligned[:DIRECT_MIN - 4096], 0)           # small: through the cache
    assert not direct_capable(aligned[512:512 + DIRECT_MIN], 0)         # misaligned memory
    assert not direct_capable(aligned[:DIRECT_MIN + 100], 0)            # length not in whole blocks
    assert not direct_capable(aligned[:DIRECT_MIN], 100)                # misaligned file offset
    assert not direct_capable(memoryview(bytes(DIRECT_MIN)), 0)         # read-only: no address to check

    c, plain, appended = cid(1), cid(2), cid(3)
    write(eng, c, 1, 0, aligned, direct=True)
    eng.commit(c, 1, 1)
    write(eng, plain, 1, 0, aligned)                                    # not asked: buffered
    eng.commit(plain, 1, 1)
    probe = str(eng.target_dir / "direct-probe")
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        os.pwrite(fd, aligned[:4096], 0)
    except OSError as e:
        pytest.skip(f"the file system under {eng.target_dir} refuses O_DIRECT writes: {e}")
    finally:
        os.close(fd)
    assert not cached(eng._path(c, 1))
    assert cached(eng._path(plain, 1))
    check_meta(eng, c, data)
    assert content(eng, c) == data                                      # read back (from the disk)
    # an in-place append past a committed, block-aligned end goes around the cache as well
    put(eng, appended, 1, 0, data[:DIRECT_MIN])
    tail = uninitialized_view(DIRECT_MIN)
    tail[:] = data[DIRECT_MIN:2 * DIRECT_MIN]
    write(eng, appended, 2, DIRECT_MIN, tail, direct=True)
    eng.commit(appended, 2, 1)
    check_meta(eng, appended, data[:2 * DIRECT_MIN])
    assert content(eng, appended) == data[:2 * DIRECT_MIN]
    # a direct update that does not qualify (misaligned buffer) is written through the cache, intact
    odd = cid(4)
    write(eng, odd, 1, 0, aligned[512:512 + DIRECT_MIN], direct=True)
    eng.commit(odd, 1, 1)
    assert cached(eng._path(odd, 1)) and content(eng, odd) == data[512:512 + DIRECT_MIN]
    eng.sync()


def test_read_direct_skips_the_page_cache_with_read_semantics(eng):
    """read_direct: the bytes and CRC checks of read(), the pages left uncached; None for small spans."""
    from page_cache_util import any_cached

    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore are needed to see page-cache residency")
    c = cid(6)
    data = os.urandom(CS - 1000)                          # a tail that is not a whole page
    put(eng, c, 1, 0, data)
    eng.sync()
    path = eng._path(c, 1)
    evict(path)
    got = eng.read_direct(c, 0, CS)
    if got is None:
        pytest.skip(f"the file system under {eng.target_dir} refuses O_DIRECT reads")
    view, meta = got
    assert bytes(view) == data and meta.commit_ver == 1
    assert not any_cached(path, 0, len(data))             # it came from the disk, not through the cache
    view, _ = eng.read_direct(c, 70_000, 400_000)         # not block-aligned: the touched blocks are read
    assert bytes(view) == data[70_000:470_000]
    assert eng.read_direct(c, 0, 4096) is None            # a small span stays buffered
    assert bytes(eng.read_direct(c, CS, 10)[0]) == b""
    write(eng, c, 2, 0, b"x" * 10)                         # a pending version is not served
    with pytest.raises(FSError) as ei:
        eng.read_direct(c, 0, CS)
    assert code_of(ei) == Code.CHUNK_NOT_COMMIT
    c2 = cid(7)                                           # a corrupt block on disk is caught
    put(eng, c2, 1, 0, data)
    with open(eng._path(c2, 1), "r+b") as f:
        f.seek(5 * BLOCK_SIZE + 7)
        f.write(bytes([data[5 * BLOCK_SIZE + 7] ^ 0xFF]))
    for off, n in ((0, CS), (4 * BLOCK_SIZE, 5 * BLOCK_SIZE)):
        with pytest.raises(FSError) as ei:
            eng.read_direct(c2, off, n)
        assert code_of(ei) == Code.CHECKSUM_MISMATCH
    assert bytes(eng.read_direct(c2, 6 * BLOCK_SIZE, 5 * BLOCK_SIZE)[0]) == data[6 * BLOCK_SIZE:11 * BLOCK_SIZE]


def _kept(e: ChunkEngine, c: bytes):
    """The mapping the engine keeps for chunk `c` (None if none)."""
    hit = e._maps._maps.get((e.target_id, c))
    return None if hit is None else hit[1]


def _count_checks(monkeypatch) -> list[int]:
    """Count the CRC checks of mapped reads (chunk_engine._verified calls)."""
    from threefs.storage import chunk_engine

    calls = [0]
    real = chunk_engine._verified

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(chunk_engine, "_verified", counting)
    return calls


def test_blocks_are_checked_once_per_stay_in_memory(eng, monkeypatch):
    """A kept mapping checks each block's CRC on its first read only; a write to the file (corruption
    by another program) or the pages leaving memory makes the next read check again."""
    from threefs.storage.chunk_engine import WouldBlock

    if not page_map.AVAILABLE or page_map._pagemap_fd() < 0:
        pytest.skip("mmap or /proc/self/pagemap unavailable: every read checks CRCs")
    checks = _count_checks(monkeypatch)
    c, data = cid(9), os.urandom(CS)
    put(eng, c, 1, 0, data)
    assert bytes(eng.read_view(c, 0, 2 * BLOCK_SIZE)[0]) == data[:2 * BLOCK_SIZE] and checks[0] == 1
    assert bytes(eng.read_view(c, 100, BLOCK_SIZE)[0]) == data[100:BLOCK_SIZE + 100] and checks[0] == 1
    assert bytes(eng.read_view(c, 0, CS)[0]) == data and checks[0] == 2   # blocks not read before: checked
    assert bytes(eng.read_view(c, 0, CS)[0]) == data and checks[0] == 2
    if not eng._fine_ctime:
        pytest.skip("coarse file timestamps (Linux < 6.13): a write right after a check could go unseen, "
                    "so a freshly checked block is checked again")
    path = eng._path(c, 1)
    with open(path, "r+b") as f:                     # written since the check: checked again, and caught
        f.seek(BLOCK_SIZE + 5)
        f.write(bytes([data[BLOCK_SIZE + 5] ^ 0xFF]))
        f.flush()
        os.fsync(f.fileno())                         # (for below: dirty pages are not reclaimed)
    with pytest.raises(FSError) as ei:
        eng.read_view(c, BLOCK_SIZE, 10)
    assert code_of(ei) == Code.CHECKSUM_MISMATCH and checks[0] == 3
    del ei
    assert bytes(eng.read_view(c, 0, BLOCK_SIZE)[0]) == data[:BLOCK_SIZE] and checks[0] == 4

    # Bytes that rot on the disk change no timestamp. Pretend the flip above was such rot (take its stamp
    # as the checked one): while the pages stay in memory the read serves what memory holds...
    fmap = _kept(eng, c)
    st = os.stat(path)
    fmap.stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    fmap.checked = (1 << (CS // BLOCK_SIZE)) - 1
    assert eng.read_view(c, BLOCK_SIZE + 5, 1)[0][0] == data[BLOCK_SIZE + 5] ^ 0xFF and checks[0] == 4
    # ...and once the pages leave memory (reclaimed: MADV_PAGEOUT does what memory pressure does), the
    # bytes that come back from the disk are checked again
    eng.sync()                                             # (dirty pages are not reclaimed)
    assert page_map._madvise(fmap.addr, CS, 21) == 0      # MADV_PAGEOUT
    assert not fmap.mapped(0, CS)
    try:
        eng.read_view(c, BLOCK_SIZE, 10)
    except WouldBlock:                                     # reclaimed: the disk path reads and checks them
        with pytest.raises(FSError) as ei:
            eng.read(c, BLOCK_SIZE, 10)
        assert code_of(ei) == Code.CHECKSUM_MISMATCH
        del ei
    except FSError as e:                                   # unmapped but kept (pageout may leave a page
        assert e.code == Code.CHECKSUM_MISMATCH            # cached): mapped in again and checked
    else:
        pytest.fail("bytes that left the mapping were served without a check")
    assert fmap.checked == 0
    with pytest.raises(FSError) as ei:
        eng.read_view(c, BLOCK_SIZE, 10)
    assert code_of(ei) == Code.CHECKSUM_MISMATCH


def test_a_version_written_whole_is_served_without_a_second_check(eng, monkeypatch):
    """The replica that serves a chunk's reads (update keep_mapped) keeps the version it wrote whole
    mapped from the write on: its bytes were checked against the client's CRC before they were written,
    so the first read does not check them again; a partial write, or a write to the file since, does."""
    if not page_map.AVAILABLE or page_map._pagemap_fd() < 0:
        pytest.skip("mmap or /proc/self/pagemap unavailable: every read checks CRCs")
    if not eng._fine_ctime:
        pytest.skip("coarse file timestamps (Linux < 6.13): the first read checks what the write left")
    checks = _count_checks(monkeypatch)
    c, data = cid(10), os.urandom(CS)
    write(eng, c, 1, 0, data, keep_mapped=True)
    assert _kept(eng, c) is None                     # pending versions are not served
    eng.commit(c, 1, 1)
    assert _kept(eng, c) is not None
    assert bytes(eng.read_view(c, 0, CS)[0]) == data and checks[0] == 0
    # copy-on-write of a part: the new version is whole in the file written, from checked bytes
    write(eng, c, 2, 1000, b"z" * 5000, keep_mapped=True)
    eng.commit(c, 2, 1)
    expect = data[:1000] + b"z" * 5000 + data[6000:]
    assert bytes(eng.read_view(c, 0, CS)[0]) == expect and checks[0] == 0
    # an append is not (the committed part in the file may have left memory meanwhile)
    c2 = cid(11)
    put(eng, c2, 1, 0, data[:CS // 2])
    write(eng, c2, 2, CS // 2, data[CS // 2:], keep_mapped=True)
    eng.commit(c2, 2, 1)
    assert bytes(eng.read_view(c2, 0, CS)[0]) == data and checks[0] == 1
    # an abandoned version leaves nothing behind; neither does a replica that does not serve reads
    c3 = cid(12)
    write(eng, c3, 1, 0, data, keep_mapped=True)
    eng.abort(c3)
    write(eng, c3, 1, 0, data)
    eng.commit(c3, 1, 1)
    assert _kept(eng, c3) is None and not eng._fresh
    # corrupted between the write and the first read: caught
    c4 = cid(13)
    write(eng, c4, 1, 0, data, keep_mapped=True)
    eng.commit(c4, 1, 1)
    with open(eng._path(c4, 1), "r+b") as f:
        f.seek(CS - 1)
        f.write(bytes([data[-1] ^ 1]))
    with pytest.raises(FSError) as ei:
        eng.read_view(c4, 0, CS)
    assert code_of(ei) == Code.CHECKSUM_MISMATCH


def test_coarse_timestamps_trust_only_a_stamp_a_tick_old(eng, monkeypatch):
    """With file timestamps of one clock tick (kernels before 6.13), a write in the tick of a check would
    leave the stamp as it was: a stamp counts only once the file's last change is a tick old, and a
    version just written is not kept mapped for its first read."""
    from types import SimpleNamespace

    from threefs.storage import chunk_engine

    if not page_map.AVAILABLE or page_map._pagemap_fd() < 0:
        pytest.skip("mmap or /proc/self/pagemap unavailable: every read checks CRCs")
    eng._fine_ctime = False
    checks = _count_checks(monkeypatch)
    c, data = cid(14), os.urandom(CS)
    write(eng, c, 1, 0, data, keep_mapped=True)
    eng.commit(c, 1, 1)
    assert _kept(eng, c) is None and not eng._fresh
    for expect in (1, 2):                            # the file changed this tick: every read checks
        assert bytes(eng.read_view(c, 0, CS)[0]) == data and checks[0] == expect
    later = chunk_engine.time.time_ns() + 10 * chunk_engine.COARSE_TICK_NS
    monkeypatch.setattr(chunk_engine, "time", SimpleNamespace(time_ns=lambda: later))
    for expect in (3, 3):                            # a tick later: checked once more, then trusted
        assert bytes(eng.read_view(c, 0, CS)[0]) == data and checks[0] == expect
