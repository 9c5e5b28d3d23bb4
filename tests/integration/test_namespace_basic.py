"""Namespace operations against the real meta service: dirs, listing pages, stat, errors, rename, walk, rmtree."""
from __future__ import annotations

import asyncio
import errno
import os
import stat as st
import time

import pytest

from itest_util import CHUNK, wait_until
from threefs.client.file_io import FileIO
from threefs.client.fs import AsyncClient, Client
from threefs.common import placement


def test_mkdir_makedirs_listdir(client, workdir):
    client.mkdir(f"{workdir}/a")
    client.makedirs(f"{workdir}/b/c/d")
    client.makedirs(f"{workdir}/b/c/d", exist_ok=True)
    client.write_file(f"{workdir}/a/f1", b"1")
    client.write_file(f"{workdir}/b/c/f2", b"22")
    assert client.listdir(workdir) == ["a", "b"]
    assert client.listdir(f"{workdir}/b") == ["c"]
    assert client.listdir(f"{workdir}/b/c") == ["d", "f2"]
    assert client.listdir(f"{workdir}/b/c/d") == []
    assert client.isdir(f"{workdir}/b/c/d") and not client.isfile(f"{workdir}/b/c/d")
    assert client.isfile(f"{workdir}/a/f1") and not client.isdir(f"{workdir}/a/f1")
    assert not client.exists(f"{workdir}/zzz")
    with pytest.raises(FileExistsError):
        client.mkdir(f"{workdir}/a")
    with pytest.raises(FileExistsError):
        client.makedirs(f"{workdir}/b/c")
    with pytest.raises(FileExistsError):
        client.mkdir(f"{workdir}/a/f1")          # a file of that name exists
    with pytest.raises(FileNotFoundError):
        client.mkdir(f"{workdir}/nope/x")        # missing parent without parents=True
    with pytest.raises(NotADirectoryError):
        client.mkdir(f"{workdir}/a/f1/sub")      # a file in the middle of the path
    with pytest.raises(NotADirectoryError):
        client.listdir(f"{workdir}/a/f1")
    with pytest.raises(FileNotFoundError):
        client.listdir(f"{workdir}/nope")


def test_listdir_many_entries_sorted(client, workdir):
    names = [f"e{i:04d}" for i in range(300)]
    for n in names[::2]:
        client.write_file(f"{workdir}/{n}", b"")
    for n in names[1::2]:
        client.mkdir(f"{workdir}/{n}")
    assert client.listdir(workdir) == names
    entries = client.scandir(workdir)
    assert [e.name for e, _ in entries] == names
    for e, inode in entries:
        assert inode is not None and inode.id == e.id
        assert st.S_ISDIR(client.stat(f"{workdir}/{e.name}").st_mode) == (int(e.name[1:]) % 2 == 1)


def test_list_pages_walk_every_entry_once_in_order(cluster, client, workdir):
    names = sorted(f"n-{i:03d}-{'x' * (i % 5)}" for i in range(237))
    for n in names:
        client.write_file(f"{workdir}/{n}", b"")

    async def pages() -> list[list[str]]:
        async with AsyncClient(cluster.mgmtd_address) as c:
            out, prev = [], ""
            while True:
                page = await c.list_page(workdir, prev, limit=50)
                out.append([e.name for e in page.entries])
                if not page.more:
                    return out
                assert len(page.entries) == 50
                prev = page.entries[-1].name

    got = asyncio.run(pages())
    assert [len(p) for p in got] == [50, 50, 50, 50, 37]
    flat = [n for p in got for n in p]
    assert flat == names


def test_stat_fields(client, workdir):
    before = time.time_ns()
    path = f"{workdir}/f"
    with client.open(path, "wb", perm=0o640) as f:
        f.write(b"x" * 12345)
    s = client.stat(path)
    assert st.S_ISREG(s.st_mode)
    assert st.S_IMODE(s.st_mode) == 0o640
    assert s.st_size == 12345
    assert s.st_nlink == 1
    assert s.st_uid == os.getuid() and s.st_gid == os.getgid()
    assert s.st_blksize == CHUNK
    assert s.st_ino == s.inode.id and s.st_ino > 0
    assert before - 5_000_000_000 <= s.st_mtime_ns <= time.time_ns() + 5_000_000_000
    assert s.st_ctime_ns >= s.st_atime_ns - 5_000_000_000
    d = client.stat(workdir)
    assert st.S_ISDIR(d.st_mode) and d.st_size == 0
    assert d.st_ino != s.st_ino
    client.mkdir(f"{workdir}/d", 0o750)
    assert st.S_IMODE(client.stat(f"{workdir}/d").st_mode) == 0o750
    root = client.stat("/")
    assert st.S_ISDIR(root.st_mode)
    with pytest.raises(FileNotFoundError):
        client.stat(f"{workdir}/missing")
    with pytest.raises(NotADirectoryError):
        client.stat(f"{workdir}/f/below")


def test_remove_and_rmdir_errors(client, workdir):
    client.mkdir(f"{workdir}/d")
    client.mkdir(f"{workdir}/full")
    client.write_file(f"{workdir}/full/x", b"x")
    client.write_file(f"{workdir}/f", b"data")

    with pytest.raises(FileNotFoundError):
        client.remove(f"{workdir}/missing")
    with pytest.raises(FileNotFoundError):
        client.rmdir(f"{workdir}/missing")
    with pytest.raises(IsADirectoryError):
        client.remove(f"{workdir}/d")
    with pytest.raises(NotADirectoryError):
        client.rmdir(f"{workdir}/f")
    with pytest.raises(OSError) as ei:
        client.rmdir(f"{workdir}/full")
    assert ei.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileExistsError):
        client.mkdir(f"{workdir}/d")
    with pytest.raises(FileExistsError):
        client.open(f"{workdir}/f", "xb")
    with pytest.raises(IsADirectoryError):
        client.open(f"{workdir}/d", "wb")
    # nothing was changed by the failed calls
    assert client.listdir(workdir) == ["d", "f", "full"]
    assert client.read_file(f"{workdir}/f") == b"data"

    client.remove(f"{workdir}/f")
    client.rmdir(f"{workdir}/d")
    client.remove(f"{workdir}/full/x")
    client.rmdir(f"{workdir}/full")
    assert client.listdir(workdir) == []
    with pytest.raises(FileNotFoundError):
        client.stat(f"{workdir}/f")


def test_open_x_creates_exclusively(client, workdir):
    path = f"{workdir}/excl"
    with client.open(path, "xb") as f:
        f.write(b"first")
    with pytest.raises(FileExistsError):
        client.open(path, "xb")
    assert client.read_file(path) == b"first"


def test_rename_files_within_and_between_dirs(client, workdir):
    client.mkdir(f"{workdir}/a")
    client.mkdir(f"{workdir}/b")
    client.write_file(f"{workdir}/a/f", b"payload" * 20000)      # spans chunks: data follows the inode
    ino = client.stat(f"{workdir}/a/f").st_ino
    client.rename(f"{workdir}/a/f", f"{workdir}/a/g")
    assert client.listdir(f"{workdir}/a") == ["g"]
    client.rename(f"{workdir}/a/g", f"{workdir}/b/h")
    assert client.listdir(f"{workdir}/a") == []
    assert client.listdir(f"{workdir}/b") == ["h"]
    assert client.stat(f"{workdir}/b/h").st_ino == ino
    assert client.read_file(f"{workdir}/b/h") == b"payload" * 20000
    with pytest.raises(FileNotFoundError):
        client.rename(f"{workdir}/a/g", f"{workdir}/a/z")
    with pytest.raises(FileNotFoundError):
        client.rename(f"{workdir}/b/h", f"{workdir}/nodir/h")


def test_rename_replaces_existing_file(client, workdir):
    client.write_file(f"{workdir}/src", b"new contents")
    client.write_file(f"{workdir}/dst", b"old contents that are longer" * 1000)
    src_ino = client.stat(f"{workdir}/src").st_ino
    client.rename(f"{workdir}/src", f"{workdir}/dst")
    assert client.listdir(workdir) == ["dst"]
    assert client.stat(f"{workdir}/dst").st_ino == src_ino
    assert client.read_file(f"{workdir}/dst") == b"new contents"
    client.write_file(f"{workdir}/other", b"o")
    client.replace(f"{workdir}/other", f"{workdir}/dst")
    assert client.read_file(f"{workdir}/dst") == b"o"


def test_rename_directories(client, workdir):
    client.makedirs(f"{workdir}/x/y/z")
    client.write_file(f"{workdir}/x/y/z/leaf", b"leaf")
    client.mkdir(f"{workdir}/other")
    client.rename(f"{workdir}/x/y", f"{workdir}/other/y2")
    assert client.listdir(f"{workdir}/x") == []
    assert client.read_file(f"{workdir}/other/y2/z/leaf") == b"leaf"
    client.rename(f"{workdir}/other/y2", f"{workdir}/other/y3")      # within the same dir
    assert client.listdir(f"{workdir}/other") == ["y3"]
    # a directory may replace an empty directory, not a non-empty one, and never a file
    client.mkdir(f"{workdir}/empty")
    client.rename(f"{workdir}/other/y3", f"{workdir}/empty")
    assert client.listdir(f"{workdir}/empty") == ["z"]
    client.mkdir(f"{workdir}/d2")
    with pytest.raises(OSError) as ei:
        client.rename(f"{workdir}/d2", f"{workdir}/empty")
    assert ei.value.errno == errno.ENOTEMPTY
    client.write_file(f"{workdir}/file", b"f")
    with pytest.raises(NotADirectoryError):
        client.rename(f"{workdir}/d2", f"{workdir}/file")
    with pytest.raises(IsADirectoryError):
        client.rename(f"{workdir}/file", f"{workdir}/d2")


def test_rename_onto_itself_is_a_no_op(client, workdir):
    client.write_file(f"{workdir}/same", b"keep me")
    client.mkdir(f"{workdir}/dir")
    client.rename(f"{workdir}/same", f"{workdir}/same")
    client.rename(f"{workdir}/dir", f"{workdir}/dir")
    assert client.listdir(workdir) == ["dir", "same"]
    assert client.read_file(f"{workdir}/same") == b"keep me"


def test_root_cannot_be_removed_or_renamed_and_says_so_at_once(cluster, workdir):
    """rmdir("/") & co. fail with EBUSY (as on Linux) immediately: a permanent refusal is not retried."""
    retry_timeout = 6.0
    with Client(cluster.mgmtd_address, retry_timeout=retry_timeout) as c:
        ops = [("rmdir", lambda: c.rmdir("/")), ("remove", lambda: c.remove("/")),
               ("rmtree", lambda: c.rmtree("/")), ("rename", lambda: c.rename("/", f"{workdir}/root"))]
        for name, op in ops:
            t0 = time.monotonic()
            with pytest.raises(OSError) as ei:
                op()
            elapsed = time.monotonic() - t0
            assert ei.value.errno == errno.EBUSY, name
            assert elapsed < retry_timeout / 2, f"{name}('/') took {elapsed:.1f}s: the refusal was retried"
        assert c.isdir("/") and c.isdir(workdir) and not c.exists(f"{workdir}/root")


def test_name_limits_and_file_in_path(client, workdir):
    with pytest.raises(IsADirectoryError):
        client.open("/", "rb")
    with pytest.raises(OSError) as ei:
        client.mkdir(f"{workdir}/{'n' * 256}")
    assert ei.value.errno == errno.ENAMETOOLONG
    client.mkdir(f"{workdir}/{'n' * 255}")
    assert client.listdir(workdir) == ["n" * 255]
    client.write_file(f"{workdir}/file", b"")
    with pytest.raises(NotADirectoryError):
        client.makedirs(f"{workdir}/file/a/b")
    with pytest.raises(NotADirectoryError):
        client.open(f"{workdir}/file/x", "wb")


def test_rename_dir_into_own_subtree_is_einval(client, workdir):
    client.makedirs(f"{workdir}/p/q/r")
    for dst in (f"{workdir}/p/q/r/p", f"{workdir}/p/q/p"):
        with pytest.raises(OSError) as ei:
            client.rename(f"{workdir}/p", dst)
        assert ei.value.errno == errno.EINVAL
    assert client.listdir(workdir) == ["p"]
    assert client.isdir(f"{workdir}/p/q/r")


def test_walk(client, workdir):
    client.makedirs(f"{workdir}/w/a/aa")
    client.makedirs(f"{workdir}/w/b")
    for p in ("w/f0", "w/a/f1", "w/a/aa/f2", "w/a/aa/f3", "w/b/f4"):
        client.write_file(f"{workdir}/{p}", p.encode())
    got = list(client.walk(f"{workdir}/w"))
    top = f"{workdir}/w"
    assert got == [
        (top, ["a", "b"], ["f0"]),
        (f"{top}/a", ["aa"], ["f1"]),
        (f"{top}/a/aa", [], ["f2", "f3"]),
        (f"{top}/b", [], ["f4"]),
    ]

    async def awalk():
        async with AsyncClient(client.aio.mgmtd.address) as c:
            return [item async for item in c.walk(top)]

    assert asyncio.run(awalk()) == got


def test_rmtree_removes_whole_tree(cluster, client, workdir):
    root = f"{workdir}/tree"
    for i in range(4):
        client.makedirs(f"{root}/d{i}/sub")
        for j in range(5):
            client.write_file(f"{root}/d{i}/sub/f{j}", bytes([j]) * (CHUNK + j))
    victim = client.stat(f"{root}/d0/sub/f4").inode
    client.rmtree(root)
    assert not client.exists(root)
    assert client.listdir(workdir) == []
    with pytest.raises(FileNotFoundError):
        client.stat(f"{root}/d0/sub/f0")
    with pytest.raises(FileNotFoundError):
        client.rmtree(root)
    # the name is free again at once
    client.mkdir(root)
    assert client.listdir(root) == []
    # and the GC reclaims the removed files' chunks in the background
    fio = FileIO(victim, client.aio.mgmtd, client.aio.storage)
    chain, cid = fio.chain_of(0), placement.chunk_id(victim.id, 0)
    targets = [t.target_id for t in client.aio.mgmtd.routing.chain(chain).targets]

    def gone() -> bool:
        return not any(client._runner.run(client.aio.storage.query_chunk(t, cid)).found for t in targets)

    wait_until(gone, timeout=30, what="GC to remove the chunks of a removed tree")


def test_names_visible_to_second_client(cluster, client, workdir):
    with Client(cluster.mgmtd_address) as other:
        client.mkdir(f"{workdir}/seen")
        assert other.listdir(workdir) == ["seen"]
        other.rename(f"{workdir}/seen", f"{workdir}/moved")
        assert client.listdir(workdir) == ["moved"]
