"""Small files through the mount: written whole after create they stay in meta (threefs.meta.inline),
and every later change (another writer, a longer write, truncate, fsync) keeps the bytes exact."""
from __future__ import annotations

import os
import signal
import threading

from tests.conftest import start_cluster
from tests.fuse.conftest import Mount, wait_for
from threefs.client.file_io import FileIO
from threefs.client.usrbio import deregister_fd, make_ioring, make_iovec, register_fd
from threefs.common import placement
from threefs.meta.config import MetaConfig

INLINE_MAX = MetaConfig().inline_max


def rel(mount, p) -> str:
    """The cluster path of a file under the mount."""
    return "/" + os.path.relpath(p, mount.path)


def on_storage(client, path: str) -> bool:
    """Whether any chunk of the file exists on its first chain."""
    inode = client.stat(path).inode
    fio = FileIO(inode, client.aio.mgmtd, client.aio.storage)
    begin, end = placement.chunk_range(inode.id)
    return client.run(client.aio.storage.query_last_chunk(fio.chain_of(0), begin, end)).found


def test_small_files_stay_in_meta_and_read_back_everywhere(d, mount, mount2, client) -> None:
    files = {"one-byte": b"x", "4k": os.urandom(4096), "at-limit": os.urandom(INLINE_MAX),
             "over-limit": os.urandom(INLINE_MAX + 1), "empty": b""}
    for name, data in files.items():
        (d / name).write_bytes(data)
    for name, data in files.items():
        p = rel(mount, d / name)
        inline = 0 < len(data) <= INLINE_MAX
        assert client.stat(p).inode.inline == inline, name
        assert on_storage(client, p) == (len(data) > INLINE_MAX), name
        assert (mount2.path / p.lstrip("/")).read_bytes() == data, name      # another mount
        assert client.read_file(p) == data, name                              # the library
        assert (d / name).read_bytes() == data, name                          # this mount
    p = rel(mount, d / "4k")                                                  # the batched API
    iov = make_iovec(8192)
    fd = register_fd(p, client=client)
    try:
        with make_ioring(client, 4) as ring:
            ring.prepare(iov[:1000], True, fd, 3500)
            assert ring.submit().wait(timeout=30)[0].result == 596
            assert iov[:596] == files["4k"][3500:]
    finally:
        deregister_fd(fd)
        iov.close()


def test_another_writer_moves_the_content_to_storage(d, mount, mount2, client) -> None:
    data = os.urandom(3000)
    (d / "f").write_bytes(data)
    p = rel(mount, d / "f")
    with open(mount2.path / p.lstrip("/"), "r+b") as w:
        assert not client.stat(p).inode.inline
        w.seek(100)
        w.write(b"PATCH")
    want = data[:100] + b"PATCH" + data[105:]
    assert (d / "f").read_bytes() == want                             # close-to-open: the new bytes
    with open(d / "f", "ab") as a:                                     # append through this mount
        a.write(b"tail")
    assert (mount2.path / p.lstrip("/")).read_bytes() == want + b"tail"
    assert client.read_file(p) == want + b"tail"


def test_the_creator_writing_on_after_a_close_of_a_dup(d, mount, client) -> None:
    p = rel(mount, d / "grows")
    fd = os.open(d / "grows", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, b"a" * 100)
    os.close(os.dup(fd))                                # a close: the content goes to meta
    assert client.stat(p).inode.inline and client.read_file(p) == b"a" * 100
    os.write(fd, b"b" * 100)                            # still small: replaced in meta at the next close
    os.close(os.dup(fd))
    assert client.stat(p).inode.inline and client.read_file(p) == b"a" * 100 + b"b" * 100
    os.write(fd, b"c" * 20_000)                         # too long now: everything moves to storage
    os.close(fd)
    want = b"a" * 100 + b"b" * 100 + b"c" * 20_000
    assert not client.stat(p).inode.inline and on_storage(client, p)
    assert client.read_file(p) == want and (d / "grows").read_bytes() == want


def test_fsync_of_a_small_new_file_is_one_durable_meta_commit(d, mount, client) -> None:
    p = rel(mount, d / "synced")
    with open(d / "synced", "wb") as f:
        f.write(b"durable")
        f.flush()
        os.fsync(f.fileno())
        assert client.stat(p).inode.inline and client.read_file(p) == b"durable"
    assert (d / "synced").read_bytes() == b"durable"


def test_stat_and_set_times_while_writing_keep_a_small_file_in_meta(d, mount, client) -> None:
    """tar sets an extracted file's times through its open descriptor before closing it."""
    p = rel(mount, d / "member")
    with open(d / "member", "wb") as f:
        f.write(b"tar member")
        f.flush()
        assert os.fstat(f.fileno()).st_size == 10
        os.utime(f.fileno(), ns=(1_000_000_000, 2_000_000_000))
    assert client.stat(p).inode.inline and client.read_file(p) == b"tar member"
    assert os.stat(d / "member").st_mtime_ns == 2_000_000_000


def test_truncates_of_inline_files(d, mount, mount2, client) -> None:
    data = os.urandom(1000)
    for name in ("cut", "grow", "ftrunc", "otrunc"):
        (d / name).write_bytes(data)
        assert client.stat(rel(mount, d / name)).inode.inline
    os.truncate(mount2.path / rel(mount, d / "cut").lstrip("/"), 10)     # by path, on another mount
    assert (d / "cut").read_bytes() == data[:10]
    os.truncate(d / "grow", 50_000)
    assert (d / "grow").read_bytes() == data + bytes(49_000)
    fd = os.open(d / "ftrunc", os.O_RDWR)
    os.ftruncate(fd, 300)
    os.close(fd)
    assert (mount2.path / rel(mount, d / "ftrunc").lstrip("/")).read_bytes() == data[:300]
    (mount2.path / rel(mount, d / "otrunc").lstrip("/")).write_bytes(b"new")  # O_TRUNC rewrite elsewhere
    assert (d / "otrunc").read_bytes() == b"new"


def test_links_renames_and_unlinks_of_inline_files(d, mount, client) -> None:
    (d / "a").write_bytes(b"linked content")
    os.link(d / "a", d / "b")
    os.rename(d / "a", d / "c")
    assert (d / "b").read_bytes() == (d / "c").read_bytes() == b"linked content"
    assert os.stat(d / "b").st_nlink == 2
    with open(d / "c", "rb") as f:
        os.unlink(d / "b")
        os.unlink(d / "c")
        assert f.read() == b"linked content"              # open-unlinked still readable
    assert not (d / "b").exists() and not (d / "c").exists()


def test_acknowledged_small_files_survive_sigkill_of_meta(tmp_path, mount_root) -> None:
    """Files whose close returned are byte-exact after meta is killed (SIGKILL) while they are written."""
    dc = start_cluster(tmp_path / "c")
    m = Mount(dc.mgmtd_address, mount_root / "inline-crash")
    try:
        acked: dict[str, bytes] = {}
        stop = threading.Event()

        def writer() -> None:
            i = 0
            while not stop.is_set():
                data = os.urandom(1 + (i * 7919) % INLINE_MAX)
                name = f"f{i:05d}"
                try:
                    (m.path / name).write_bytes(data)
                except OSError:
                    pass                        # in flight while meta was down: not acknowledged
                else:
                    acked[name] = data
                i += 1

        t = threading.Thread(target=writer)
        t.start()
        try:
            assert wait_for(lambda: len(acked) >= 100, timeout=60)
            dc.restart_proc(dc.proc("meta"), sig=signal.SIGKILL)
            n = len(acked)
            assert wait_for(lambda: len(acked) >= n + 100, timeout=90)
        finally:
            stop.set()
            t.join(timeout=120)
        for name, data in acked.items():
            assert (m.path / name).read_bytes() == data, name
    finally:
        m.stop()
        dc.down()
