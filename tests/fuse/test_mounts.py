"""Several mounts: close-to-open between mounts, mount options, unmounting, failures during reads."""
from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import start_cluster
from tests.fuse.conftest import Mount, is_mounted


def test_two_mounts_close_to_open(mount, mount2) -> None:
    a, b = mount.path / "c2o", mount2.path / "c2o"
    a.mkdir(exist_ok=True)
    (a / "f").write_bytes(b"first version")
    assert (b / "f").read_bytes() == b"first version"          # closed on A: B sees data and length
    with open(a / "f", "r+b") as f:
        f.write(b"FIRST VERSION, now longer")
    assert (b / "f").read_bytes() == b"FIRST VERSION, now longer"   # B reopens: fresh data, new size
    (b / "g").write_bytes(os.urandom(100_000))
    assert (a / "g").read_bytes() == (b / "g").read_bytes()
    os.unlink(b / "g")
    with pytest.raises(FileNotFoundError):          # A may still cache the name (entry TTL) but open asks meta
        (a / "g").read_bytes()


def test_writeback_cache_mount(cluster, mount_root) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "wb", "--writeback-cache")
    try:
        data = os.urandom(500_000)
        with open(m.path / "f", "wb") as f:
            f.writelines(data[i:i + 7000] for i in range(0, len(data), 7000))
        assert (m.path / "f").read_bytes() == data
        with open(m.path / "f", "r+b") as f:
            f.seek(1234)
            f.write(b"patch")
        assert (m.path / "f").read_bytes() == data[:1234] + b"patch" + data[1239:]
        os.unlink(m.path / "f")
    finally:
        m.stop()
    assert not is_mounted(m.path)


def test_direct_io_mount(cluster, mount_root) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "dio", "--no-read-cache")
    try:
        data = os.urandom(3 * (1 << 20) + 5)
        (m.path / "f").write_bytes(data)
        assert (m.path / "f").read_bytes() == data
        with open(m.path / "f", "rb") as f:
            f.seek(12345)
            assert f.read(777) == data[12345:13122]
        os.unlink(m.path / "f")
    finally:
        m.stop()


def test_root_squash(cluster, mount_root, mount) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "squash", "--root-squash")
    try:
        (mount.path / "sq").mkdir(exist_ok=True)
        os.chmod(mount.path / "sq", 0o755)
        (mount.path / "sq" / "rootonly").write_text("r")
        os.chmod(mount.path / "sq" / "rootonly", 0o600)
        with pytest.raises(PermissionError):
            (m.path / "sq" / "new").write_text("x")                 # root is nobody here
        with pytest.raises(PermissionError):
            (m.path / "sq" / "rootonly").read_text()
        (mount.path / "sq" / "open").mkdir(exist_ok=True)
        os.chmod(mount.path / "sq" / "open", 0o777)
        (m.path / "sq" / "open" / "made").write_text("x")
        assert os.stat(mount.path / "sq" / "open" / "made").st_uid == 65534
    finally:
        m.stop()


def test_sigterm_unmounts_and_flushes(cluster, mount_root, mount) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "term")
    code = (f"import os,sys,time\nfd=os.open({str(m.path / 'held')!r},os.O_WRONLY|os.O_CREAT,0o644)\n"
            "os.write(fd,b'x'*1000)\nprint('written',flush=True)\nsys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "written"
        m.proc.send_signal(signal.SIGTERM)
        assert m.proc.wait(timeout=30) == 0
        assert not is_mounted(m.path)
    finally:
        holder.kill()
        holder.wait()
        m.stop()
    assert os.path.getsize(mount.path / "held") == 1000          # the buffered write was flushed at unmount


def test_umount_command(cluster, mount_root) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "um")
    try:
        r = subprocess.run([sys.executable, "-m", "threefs", "umount", str(m.path)], capture_output=True, text=True,
                           timeout=30, check=False)
        assert r.returncode == 0, r.stderr
        assert m.proc.wait(timeout=30) == 0
        assert not is_mounted(m.path)
        r = subprocess.run([sys.executable, "-m", "threefs", "umount", str(m.path)], capture_output=True, text=True,
                           timeout=30, check=False)
        assert r.returncode != 0 and r.stderr
    finally:
        m.stop()


def _mount_cmd(mgmtd: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "threefs", "mount", "--mgmtd", mgmtd, str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def test_mount_again_after_the_daemon_was_killed(cluster, mount_root) -> None:
    m = Mount(cluster.mgmtd_address, mount_root / "again")
    m2 = None
    try:
        (m.path / "kept").write_bytes(b"acknowledged")
        m.proc.kill()                                  # the daemon dies; the kernel mount stays, dead
        m.proc.wait(timeout=30)
        with pytest.raises(OSError) as e:
            os.stat(m.path)
        assert e.value.errno == errno.ENOTCONN
        m2 = Mount(cluster.mgmtd_address, m.path)     # detaches the dead mount and mounts afresh
        assert "detached the mount" in m2.proc.stderr.readline()
        assert (m2.path / "kept").read_bytes() == b"acknowledged"
    finally:
        if m2 is not None:
            m2.stop()
        m.stop()


def test_mount_refuses_a_live_mount_and_unusable_paths(cluster, mount_root, mount) -> None:
    r = _mount_cmd(cluster.mgmtd_address, mount.path)               # no second mount stacked on the first
    assert r.returncode == 1
    assert f"{mount.path} is already a mount point (fuse.threefs); unmount it first (threefs umount {mount.path})" \
        in r.stderr and "Traceback" not in r.stderr
    assert os.listdir(mount.path) is not None and mount.proc.poll() is None
    afile = mount_root / "afile"
    afile.write_bytes(b"")
    r = _mount_cmd(cluster.mgmtd_address, afile / "sub")
    assert r.returncode == 1
    assert f"cannot use {afile / 'sub'} as a mountpoint: Not a directory" in r.stderr and "Traceback" not in r.stderr


def test_mount_rejects_breaking_options(cluster, mount_root) -> None:
    r = subprocess.run([sys.executable, "-m", "threefs", "mount", "--mgmtd", cluster.mgmtd_address,
                        str(mount_root / "bad"), "-o", "max_read=65536"], capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode != 0 and "max_read" in r.stderr
    assert not is_mounted(mount_root / "bad")


@pytest.mark.timeout(240)
def test_storage_failure_gives_eio_and_mount_survives(tmp_path, mount_root) -> None:
    dc = start_cluster(tmp_path / "c", storage_nodes=3, targets_per_node=1)
    m = None
    try:
        m = Mount(dc.mgmtd_address, mount_root / "fail", "--retry-timeout", "3")
        data = os.urandom(300_000)
        (m.path / "f").write_bytes(data)
        (m.path / "g").write_bytes(b"meta still works")
        for p in dc.procs:
            if p.role == "storage":
                os.kill(p.pid, signal.SIGKILL)
        t0 = time.monotonic()
        with pytest.raises(OSError) as e, open(m.path / "f", "rb") as f:    # fresh open: page cache dropped
            f.read()
        assert e.value.errno == errno.EIO
        assert time.monotonic() - t0 < 60
        assert m.proc.poll() is None
        assert os.listdir(m.path) and os.stat(m.path / "g").st_size == 16     # the mount still serves
        (m.path / "small").write_bytes(b"kept in meta")          # a small new file needs no storage
        assert (m.path / "small").read_bytes() == b"kept in meta"
        fd = os.open(m.path / "new", os.O_WRONLY | os.O_CREAT, 0o644)          # meta is up: create works
        try:
            os.write(fd, b"buffered" * 4096)            # write-behind: accepted into the buffer (too big for meta)
            with pytest.raises(OSError) as e:
                os.fsync(fd)                             # ...and the storage failure surfaces here
            assert e.value.errno == errno.EIO
        finally:
            os.close(fd)
        assert m.proc.poll() is None
    finally:
        if m is not None:
            m.stop()
        dc.down()


def test_storage_failure_during_a_sequential_read_gives_eio_through_the_read_ahead(tmp_path, mount_root) -> None:
    dc = start_cluster(tmp_path / "c", storage_nodes=3, targets_per_node=1)
    m = None
    try:
        m = Mount(dc.mgmtd_address, mount_root / "failseq", "--retry-timeout", "3")
        data = os.urandom(96 << 20)
        (m.path / "big").write_bytes(data)
        with open(m.path / "big", "rb", buffering=0) as f:
            assert f.read(4 << 20) == data[:4 << 20]          # a sequential reader: the window is running
            for p in dc.procs:
                if p.role == "storage":
                    os.kill(p.pid, signal.SIGKILL)
            t0 = time.monotonic()
            with pytest.raises(OSError) as e:
                while f.read(1 << 20):                        # what the window already holds may still come
                    pass
            assert e.value.errno == errno.EIO
            assert time.monotonic() - t0 < 60
        assert m.proc.poll() is None and os.listdir(m.path)
    finally:
        if m is not None:
            m.stop()
        dc.down()


def _write_sessions(client, path: str) -> int:
    """How many write sessions meta holds for the file at `path` (a path inside the cluster)."""
    from threefs.proto import meta_pb2 as mp
    ino = client.stat(path).st_ino
    rsp = client.run(client.aio.meta.call("ListSessions", mp.ListSessionsReq(base=client.aio.meta.base(), inode=ino),
                                          mp.ListSessionsRsp))
    return len(rsp.sessions)


def test_close_publishes_the_length_and_the_session_goes_soon_after(cluster, mount, mount2) -> None:
    """close(2) returns with the length in meta (close-to-open); RELEASE drops the write session in a
    later batch without a precise-length round trip, and fsyncdir is accepted."""
    from threefs.client.fs import Client
    a, b = mount.path / "sessions", mount2.path / "sessions"
    a.mkdir(exist_ok=True)
    payloads = {f"f{i}": os.urandom(100 + 997 * i) for i in range(12)}
    for name, data in payloads.items():
        (a / name).write_bytes(data)
    (a / "empty").touch()
    fd = os.open(a, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for name, data in payloads.items():
        assert (b / name).stat().st_size == len(data)
        assert (b / name).read_bytes() == data
    assert (b / "empty").stat().st_size == 0
    with Client(cluster.mgmtd_address) as c:
        deadline = time.monotonic() + 30
        while any(_write_sessions(c, f"/sessions/{name}") for name in [*payloads, "empty"]):
            assert time.monotonic() < deadline, "write sessions of closed files were never removed"
            time.sleep(0.05)


def _resident_pages(path) -> int:
    """Pages of `path` in the page cache (mmap + mincore): what a read would take without asking the daemon."""
    import ctypes
    import mmap as mm
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = os.path.getsize(path)
    pages = -(-size // mm.PAGESIZE)
    fd = os.open(path, os.O_RDONLY)
    try:
        addr = libc.mmap(None, size, mm.PROT_READ, mm.MAP_SHARED, fd, 0)
        assert addr not in (None, ctypes.c_void_p(-1).value), os.strerror(ctypes.get_errno())
        try:
            vec = ctypes.create_string_buffer(pages)
            assert libc.mincore(addr, size, vec) == 0, os.strerror(ctypes.get_errno())
            return sum(b & 1 for b in vec.raw[:pages])
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def test_page_cache_kept_for_unchanged_files_dropped_after_another_mounts_write(mount, mount2) -> None:
    a, b = mount.path / "keep", mount2.path / "keep"
    a.mkdir(exist_ok=True)
    first = os.urandom(4 << 20)
    (a / "f").write_bytes(first)
    assert (b / "f").read_bytes() == first                 # B reads it: B's page cache holds the file
    assert (b / "f").read_bytes() == first                 # reopened unchanged: kept, not fetched again
    assert _resident_pages(b / "f") == (4 << 20) // 4096
    second = os.urandom(4 << 20)                           # same length, written in place on A
    with open(a / "f", "r+b") as f:
        f.write(second)
    assert (b / "f").read_bytes() == second                # B's next open sees the change: cache dropped
    with open(a / "f", "r+b") as f:                        # a one-byte change, the length unchanged
        f.seek(12345)
        f.write(b"!")
    third = second[:12345] + b"!" + second[12346:]
    assert (b / "f").read_bytes() == third


def test_in_place_overwrite_moves_mtime_for_other_mounts(mount, mount2) -> None:
    a, b = mount.path / "mtime", mount2.path / "mtime"
    a.mkdir(exist_ok=True)
    (a / "f").write_bytes(b"x" * 10000)
    os.utime(a / "f", ns=(10**18, 10**18))
    before = os.stat(b / "f")
    with open(a / "f", "r+b") as f:
        f.write(b"y" * 100)
    with open(b / "f", "rb") as f:                         # open revalidates the attributes on B
        after = os.fstat(f.fileno())
    assert after.st_size == before.st_size
    assert after.st_mtime_ns > before.st_mtime_ns and after.st_ctime_ns > before.st_ctime_ns
