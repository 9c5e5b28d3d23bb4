"""Reuse of removed chunk versions' files (threefs.storage.file_pool) inside the chunk engine."""
from __future__ import annotations

import errno
import os

import pytest

from engine_util import CS, cid, content, put
from threefs.common.errors import Code, FSError
from threefs.proto.storage_pb2 import REMOVE
from threefs.storage import page_map
from threefs.storage.chunk_engine import ChunkEngine
from threefs.storage.file_pool import RECYCLE_MIN, FilePool


def remove(e: ChunkEngine, c: bytes) -> None:
    ver = e.get(c).commit_ver + 1
    e.update(c, update_ver=ver, chain_ver=1, kind=REMOVE, chunk_size=CS)
    assert e.commit(c, ver, 1) is None


@pytest.fixture
def eng(tmp_path):
    e = ChunkEngine(tmp_path / "t1", 101)
    yield e
    e.close()


def test_removed_chunk_file_is_reused_by_the_next_whole_chunk_write(eng):
    old = os.urandom(CS)
    put(eng, cid(1), 1, 0, old)
    ino = os.stat(eng.path_of(cid(1), 1)).st_ino
    remove(eng, cid(1))
    assert eng._pool.size == (1, CS)
    new = os.urandom(CS // 2)                    # shorter than the reused file: its tail is cut off
    put(eng, cid(2), 1, 0, new)
    assert os.stat(eng.path_of(cid(2), 1)).st_ino == ino and eng._pool.size == (0, 0)
    assert content(eng, cid(2)) == new and os.path.getsize(eng.path_of(cid(2), 1)) == len(new)


def test_overwritten_version_is_reused_and_partial_writes_never_take_a_file(eng):
    put(eng, cid(1), 1, 0, os.urandom(CS))
    put(eng, cid(1), 2, 0, os.urandom(CS))       # whole-chunk overwrite: v1's file goes to the pool
    assert eng._pool.size[0] == 1
    put(eng, cid(2), 1, 4096, b"x" * RECYCLE_MIN)  # starts past 0: the zeros before it must be real
    assert eng._pool.size[0] == 1
    assert content(eng, cid(2)) == bytes(4096) + b"x" * RECYCLE_MIN
    small = b"s" * 100
    put(eng, cid(3), 1, 0, small)                 # small files are cheaper to create than to reuse
    assert eng._pool.size[0] == 1 and content(eng, cid(3)) == small


def test_append_shares_its_inode_and_is_not_pooled(eng):
    first = os.urandom(RECYCLE_MIN)
    put(eng, cid(1), 1, 0, first)
    put(eng, cid(1), 2, len(first), b"tail")      # v2 is a hard link of v1, extended in place
    assert eng._pool.size == (0, 0)
    assert content(eng, cid(1)) == first + b"tail"


def test_a_mapped_file_is_never_reused(eng):
    if not page_map.AVAILABLE:
        pytest.skip("mmap/mincore unavailable on this platform")
    data = os.urandom(CS)
    put(eng, cid(1), 1, 0, data)
    view, _ = eng.read_view(cid(1), 0, CS)        # a reader still sending these bytes
    put(eng, cid(1), 2, 0, os.urandom(CS))
    assert eng._pool.size == (0, 0)                # v1 was unlinked instead
    put(eng, cid(2), 1, 0, os.urandom(CS))
    assert bytes(view) == data
    del view
    put(eng, cid(1), 3, 0, os.urandom(CS))         # no view left: v2's file is kept
    assert eng._pool.size[0] == 1


def test_disk_full_drains_the_pool_and_retries(eng, monkeypatch):
    put(eng, cid(1), 1, 0, os.urandom(CS))
    remove(eng, cid(1))
    assert eng._pool.size[0] == 1
    real = os.pwrite
    calls = []

    def full_once(fd, data, pos):
        calls.append(pos)
        if len(calls) == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data, pos)

    monkeypatch.setattr(os, "pwrite", full_once)
    data = os.urandom(100)                         # a small new file: created, not taken from the pool
    put(eng, cid(2), 1, 0, data)
    assert eng._pool.size == (0, 0) and content(eng, cid(2)) == data
    monkeypatch.setattr(os, "pwrite", lambda *a: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(FSError) as ei:             # nothing left to give back: the error stands
        put(eng, cid(3), 1, 0, data)
    assert ei.value.code == Code.NO_SPACE


def test_pool_is_bounded_and_survives_a_restart(tmp_path):
    d = tmp_path / "pool"
    pool = FilePool(str(d), max_files=2, max_bytes=1 << 30)
    for i in range(3):
        f = tmp_path / f"f{i}"
        f.write_bytes(b"z" * RECYCLE_MIN)
        assert pool.keep(str(f)) == (i < 2)
    assert (tmp_path / "f2").exists() and pool.size == (2, 2 * RECYCLE_MIN)
    again = FilePool(str(d))
    assert again.size == (2, 2 * RECYCLE_MIN)
    fd, size = again.reuse(str(tmp_path / "g"))
    os.close(fd)
    assert size == RECYCLE_MIN and again.size[0] == 1 and (tmp_path / "g").exists()
    assert again.drain() == RECYCLE_MIN and not os.listdir(d)


def test_space_counts_pooled_bytes_as_free(eng):
    put(eng, cid(1), 1, 0, os.urandom(CS))
    _, used0, free0, _ = eng.space()
    remove(eng, cid(1))
    _, used1, free1, chunks = eng.space()
    assert chunks == 0 and free1 - free0 >= CS - 64 * 1024 and used0 - used1 >= CS - 64 * 1024
