"""Small files kept inline in meta (threefs.meta.inline): who may put content there, what an open
returns, and the move to storage before anyone else writes or truncates the file."""
from __future__ import annotations

import os

import pytest

from meta_util import CHUNK, TEST_CONFIG
from threefs.client.file_io import FileIO
from threefs.common import placement
from threefs.common.errors import Code, FSError
from threefs.proto import meta_pb2 as mp


def put_inline(fs, f, data: bytes) -> mp.SyncRsp:
    """What the FUSE mount does at the close of a small file it created: the whole content to meta."""
    return fs.run(fs.aio.meta.call("Sync", mp.SyncReq(base=fs.aio.meta.base(), inode=f.inode.id, inline_data=data,
                                                      modified=True), mp.SyncRsp))


def chunk0(fs, path: str) -> bytes | None:
    """The committed bytes of chunk 0 on storage up to the file's length, or None when there is no chunk."""
    inode = fs.stat(path).inode
    fio = FileIO(inode, fs.aio.mgmtd, fs.aio.storage)

    async def read() -> bytes | None:
        begin, end = placement.chunk_range(inode.id)
        if not (await fs.aio.storage.query_last_chunk(fio.chain_of(0), begin, end)).found:
            return None
        buf = bytearray(min(CHUNK, inode.length))
        n = await fio.read_into(0, memoryview(buf), len(buf))
        return bytes(buf[:n])

    return fs.run(read())


def end_fresh(fs, inode_id: int) -> None:
    fs.run(fs.aio.meta.call("Sync", mp.SyncReq(base=fs.aio.meta.base(), inode=inode_id, end_fresh=True), mp.SyncRsp))


def created_inline(fs, path: str, data: bytes):
    f = fs.open(path, "wb")
    assert put_inline(fs, f._f, data).inline_accepted
    return f


def test_create_reports_the_limit_and_a_fresh_file_takes_its_content_inline(fs, wd):
    p = f"{wd}/f"
    rsp = fs.run(fs.aio.meta.call("Create", mp.CreateReq(base=fs.aio.meta.base(), path=mp.PathAt(path=p),
                                                         flags=os.O_CREAT | os.O_WRONLY, perm=0o644,
                                                         session_id=os.urandom(16)), mp.CreateRsp))
    assert rsp.created and rsp.inline_max == TEST_CONFIG.inline_max and rsp.inode.fresh
    f = fs.open(p, "r+b")                          # a write open: no longer fresh, nothing to move
    assert not fs.stat(p).inode.fresh
    assert not put_inline(fs, f._f, b"late").inline_accepted
    f.close()
    assert fs.stat(p).st_size == 0

    q = f"{wd}/g"
    f = created_inline(fs, q, b"hello inline")
    st = fs.stat(q)
    assert st.inode.inline and st.st_size == len(b"hello inline")
    assert put_inline(fs, f._f, b"hello again, longer").inline_accepted     # the creator may replace it
    f.close()
    assert fs.read_file(q) == b"hello again, longer"
    assert chunk0(fs, q) is None                   # nothing on storage


def test_content_over_the_limit_or_after_storage_writes_is_refused(fs, wd):
    f = fs.open(f"{wd}/big", "wb")
    assert not put_inline(fs, f._f, b"x" * (TEST_CONFIG.inline_max + 1)).inline_accepted
    f.close()
    f = fs.open(f"{wd}/written", "wb")
    data = os.urandom(TEST_CONFIG.inline_max + 1)
    f.write(data)                                  # too big to wait for meta: on storage now
    f.fsync()
    assert not put_inline(fs, f._f, b"other").inline_accepted
    f.close()
    assert fs.read_file(f"{wd}/written") == data


def test_a_read_open_returns_the_content_and_reads_need_no_storage(fs, wd):
    p = f"{wd}/f"
    data = os.urandom(5000)
    created_inline(fs, p, data).close()
    rsp = fs.run(fs.aio.meta.call("Open", mp.OpenReq(base=fs.aio.meta.base(), path=mp.PathAt(path=p),
                                                     flags=os.O_RDONLY), mp.OpenRsp))
    assert rsp.inode.inline and rsp.inline_data == data
    with fs.open(p, "rb") as r:
        assert r.read(100) == data[:100]
        assert r.pread(10_000, 4990) == data[4990:]
    assert fs.read_file(p) == data


@pytest.mark.parametrize("mode", ["r+b", "ab"])
def test_a_write_open_moves_the_content_to_storage_first(fs, wd, mode):
    p = f"{wd}/f"
    data = os.urandom(3000)
    created_inline(fs, p, data).close()
    with fs.open(p, mode) as f:
        st = fs.stat(p)
        assert not st.inode.inline and not st.inode.fresh and st.st_size == 3000
        assert chunk0(fs, p) == data               # copied before the open returned
        f.write(b"PATCH")
    want = b"PATCH" + data[5:] if mode == "r+b" else data + b"PATCH"
    assert fs.read_file(p) == want
    assert chunk0(fs, p) == want


def test_o_trunc_drops_the_content_without_copying_it(fs, wd):
    p = f"{wd}/f"
    created_inline(fs, p, b"old content").close()
    with fs.open(p, "wb") as f:
        assert chunk0(fs, p) is None
        assert fs.stat(p).st_size == 0
        f.write(b"new")
    assert fs.read_file(p) == b"new"


@pytest.mark.parametrize("length", [4, 3000, 20_000])
def test_truncate_by_path_cuts_or_extends_an_inline_file(fs, wd, length):
    p = f"{wd}/f"
    data = os.urandom(1000)
    created_inline(fs, p, data).close()
    fs.truncate(p, length)
    st = fs.stat(p)
    assert not st.inode.inline and st.st_size == length
    assert fs.read_file(p) == (data + bytes(length))[:length]


def test_a_migration_that_crashed_after_writing_the_chunk_is_finished_by_the_next(fs, wd):
    """Invariant: while inline, a chunk on storage holds the inline content (here written by a
    'crashed' migration); the next write open's create-only write finds it and clears the flag."""
    p = f"{wd}/f"
    data = os.urandom(2000)
    created_inline(fs, p, data).close()
    inode = fs.stat(p).inode
    fio = FileIO(inode, fs.aio.mgmtd, fs.aio.storage)
    end_fresh(fs, inode.id)                                      # what every writer of a chunk does first
    fs.run(fio.write_first_chunk_if_absent(data))
    fs.run(fio.write_first_chunk_if_absent(b"never lands"))      # exists: left alone
    assert fs.stat(p).inode.inline
    with fs.open(p, "r+b") as f:
        f.pwrite(b"Z", 1999)
    assert fs.read_file(p) == data[:1999] + b"Z"


def test_create_only_write_refuses_an_existing_chunk(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"a" * 100)
    fs.truncate(p, 100)                            # moves the content to storage
    inode = fs.stat(p).inode
    fio = FileIO(inode, fs.aio.mgmtd, fs.aio.storage)
    with pytest.raises(FSError) as e:
        fs.run(fs.aio.storage.write_chunk(fio.chain_of(0), placement.chunk_id(inode.id, 0), 0, b"b" * 10, CHUNK,
                                          create_only=True))
    assert e.value.code == Code.EXISTS
    assert fs.read_file(p) == b"a" * 100


def test_unlinked_inline_files_leave_nothing_behind(fs, wd, meta_cluster):
    for i in range(5):
        created_inline(fs, f"{wd}/f{i}", b"%d" % i * 100).close()
    os_link = f"{wd}/link"
    fs.link(f"{wd}/f0", os_link)
    fs.rename(f"{wd}/f1", f"{wd}/moved")
    assert fs.read_file(os_link) == b"0" * 100 and fs.read_file(f"{wd}/moved") == b"1" * 100
    for name in ("f0", "link", "moved", "f2", "f3", "f4"):
        fs.remove(f"{wd}/{name}")
    fs.run(fs.aio.meta.call("GcRun", mp.GcRunReq(base=fs.aio.meta.base()), mp.GcRunRsp))
    rsp = fs.run(fs.aio.meta.call("Fsck", mp.FsckReq(base=fs.aio.meta.base()), mp.FsckRsp))
    assert list(rsp.errors) == []


def test_gc_removes_the_chunk_of_an_inline_file_that_has_one(fs, wd):
    """An inline file no longer fresh may have a chunk (a migration cut short): GC removes it."""
    p = f"{wd}/f"
    created_inline(fs, p, b"content").close()
    inode = fs.stat(p).inode
    end_fresh(fs, inode.id)
    fio = FileIO(inode, fs.aio.mgmtd, fs.aio.storage)
    fs.run(fio.write_first_chunk_if_absent(b"content"))
    begin, end = placement.chunk_range(inode.id)
    assert fs.run(fs.aio.storage.query_last_chunk(fio.chain_of(0), begin, end)).found
    fs.remove(p)
    fs.run(fs.aio.meta.call("GcRun", mp.GcRunReq(base=fs.aio.meta.base()), mp.GcRunRsp))
    assert not fs.run(fs.aio.storage.query_last_chunk(fio.chain_of(0), begin, end)).found


def test_only_the_owner_or_a_writer_places_content(fs, wd, meta_cluster):
    p = f"{wd}/f"
    f = fs.open(p, "wb", perm=0o644)              # root's file: others may read, not write
    other = meta_cluster.client(uid=4001)
    ino = fs.stat(p).st_ino
    rsp = other.run(other.aio.meta.call("Sync", mp.SyncReq(base=other.aio.meta.base(), inode=ino,
                                                           inline_data=b"not yours"), mp.SyncRsp))
    assert not rsp.inline_accepted
    assert put_inline(fs, f._f, b"the owner's").inline_accepted
    with pytest.raises(PermissionError):
        other.run(other.aio.meta.call("Sync", mp.SyncReq(base=other.aio.meta.base(), inode=ino, clear_inline=True),
                                      mp.SyncRsp))
    f.close()
    assert other.read_file(p) == b"the owner's"
