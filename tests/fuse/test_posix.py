"""POSIX behaviour of a real threefs FUSE mount: each operation's success and error cases."""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.fuse.conftest import OTHER_GID, OTHER_UID, SYSTEM_PYTHON, run_as


def err(fn, *args) -> int:
    """The errno `fn(*args)` fails with (fails the test if it succeeds)."""
    with pytest.raises(OSError) as e:
        fn(*args)
    return e.value.errno


def test_create_read_write_stat(d: Path) -> None:
    p = d / "f"
    p.write_bytes(b"hello world")
    assert p.read_bytes() == b"hello world"
    s = p.stat()
    assert stat.S_ISREG(s.st_mode) and s.st_size == 11 and s.st_nlink == 1 and s.st_uid == 0
    assert err(os.open, str(p), os.O_CREAT | os.O_EXCL | os.O_WRONLY) == errno.EEXIST
    assert err(os.stat, str(d / "missing")) == errno.ENOENT
    assert err(os.open, str(d / "missing" / "x"), os.O_CREAT | os.O_WRONLY) == errno.ENOENT
    assert err(os.open, str(p / "x"), os.O_RDONLY) == errno.ENOTDIR


def test_large_file_spans_chunks(d: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 12345)     # 64 KiB chunks: ~50 chunks, unaligned tail
    (d / "big").write_bytes(data)
    assert (d / "big").stat().st_size == len(data)
    assert (d / "big").read_bytes() == data
    with open(d / "big", "rb") as f:
        f.seek(1_000_003)
        assert f.read(200_000) == data[1_000_003:1_200_003]


def test_small_writes_coalesce_and_survive(d: Path) -> None:
    with open(d / "log", "wb", buffering=0) as f:
        f.writelines(b"%06d\n" % i for i in range(2000))
        assert os.fstat(f.fileno()).st_size == 14000      # getattr flushes the write buffer
        f.seek(7 * 10)
        f.write(b"XXXXXX")                                # non-contiguous: flushes and restarts
    expect = bytearray(b"".join(b"%06d\n" % i for i in range(2000)))
    expect[70:76] = b"XXXXXX"
    assert (d / "log").read_bytes() == bytes(expect)


def test_read_sees_own_buffered_write(d: Path) -> None:
    fd = os.open(d / "rw", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"abc")
        assert os.pread(fd, 3, 0) == b"abc"
    finally:
        os.close(fd)


def test_mkdir_rmdir_readdir(d: Path) -> None:
    (d / "sub").mkdir(mode=0o750)
    assert stat.S_IMODE((d / "sub").stat().st_mode) == 0o750
    names = {f"n{i}" for i in range(1500)}                   # more than one page of the meta listing
    for n in names:
        (d / "sub" / n).touch()
    assert set(os.listdir(d / "sub")) == names
    assert err(os.rmdir, str(d / "sub")) == errno.ENOTEMPTY
    assert err(os.mkdir, str(d / "sub")) == errno.EEXIST
    for n in names:
        os.unlink(d / "sub" / n)
    os.rmdir(d / "sub")
    assert not (d / "sub").exists()
    (d / "f").touch()
    assert err(os.rmdir, str(d / "f")) == errno.ENOTDIR
    (d / "e").mkdir()
    assert err(os.unlink, str(d / "e")) in (errno.EISDIR, errno.EPERM)


def test_scandir_attrs_from_readdirplus(d: Path) -> None:
    (d / "a").write_bytes(b"x" * 10)
    (d / "b").mkdir()
    os.symlink("a", d / "c")
    kinds = {e.name: (e.is_file(follow_symlinks=False), e.is_dir(follow_symlinks=False), e.is_symlink())
             for e in os.scandir(d)}
    assert kinds == {"a": (True, False, False), "b": (False, True, False), "c": (False, False, True)}


def test_symlink_readlink(d: Path) -> None:
    (d / "t").write_text("target")
    os.symlink("t", d / "l")
    assert os.readlink(d / "l") == "t"
    assert (d / "l").read_text() == "target"
    assert os.lstat(d / "l").st_size == 1 and stat.S_ISLNK(os.lstat(d / "l").st_mode)
    os.symlink("/nonexistent/x", d / "dangling")
    assert err(os.stat, str(d / "dangling")) == errno.ENOENT
    assert err(os.readlink, str(d / "t")) == errno.EINVAL
    assert err(os.symlink, "x", str(d / "t")) == errno.EEXIST


def test_hard_links_counts(d: Path) -> None:
    (d / "a").write_bytes(b"data")
    os.link(d / "a", d / "b")
    os.link(d / "a", d / "c")
    assert os.stat(d / "a").st_nlink == 3
    assert os.stat(d / "a").st_ino == os.stat(d / "c").st_ino
    os.unlink(d / "a")
    assert os.stat(d / "b").st_nlink == 2
    assert (d / "c").read_bytes() == b"data"
    (d / "dir").mkdir()
    assert err(os.link, str(d / "dir"), str(d / "dir2")) == errno.EPERM
    assert err(os.link, str(d / "b"), str(d / "c")) == errno.EEXIST


def test_rename_over_files_and_dirs(d: Path) -> None:
    (d / "a").write_text("A")
    (d / "b").write_text("B")
    os.rename(d / "a", d / "b")
    assert (d / "b").read_text() == "A" and not (d / "a").exists()
    (d / "x").mkdir()
    (d / "y").mkdir()
    (d / "x" / "in").write_text("in")
    os.rename(d / "x", d / "y")                       # over an empty directory
    assert (d / "y" / "in").read_text() == "in"
    (d / "z").mkdir()
    (d / "z" / "k").touch()
    assert err(os.rename, str(d / "y"), str(d / "z")) == errno.ENOTEMPTY
    assert err(os.rename, str(d / "b"), str(d / "z")) == errno.EISDIR
    assert err(os.rename, str(d / "z"), str(d / "b")) == errno.ENOTDIR
    assert err(os.rename, str(d / "z"), str(d / "z" / "sub")) == errno.EINVAL
    assert err(os.rename, str(d / "nope"), str(d / "q")) == errno.ENOENT
    (d / "b").rename(d / "z" / "moved")
    assert (d / "z" / "moved").read_text() == "A"


def _renameat2(src: Path, dst: Path, flags: int) -> int:
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = libc.renameat2(-100, os.fsencode(src), -100, os.fsencode(dst), flags)
    return 0 if r == 0 else ctypes.get_errno()


def test_rename_noreplace_and_exchange(d: Path) -> None:
    (d / "a").write_text("A")
    (d / "b").write_text("B")
    assert _renameat2(d / "a", d / "b", 1) == errno.EEXIST             # RENAME_NOREPLACE
    assert _renameat2(d / "a", d / "c", 1) == 0 and (d / "c").read_text() == "A"
    assert _renameat2(d / "c", d / "b", 2) == 0                        # RENAME_EXCHANGE
    assert (d / "b").read_text() == "A" and (d / "c").read_text() == "B"
    assert _renameat2(d / "c", d / "missing", 2) == errno.ENOENT
    assert _renameat2(d / "c", d / "b", 3) == errno.EINVAL             # both flags
    (d / "dir").mkdir()
    (d / "dir" / "inside").write_text("I")
    (d / "sub").mkdir()
    held = open(d / "b", "rb")                                          # an open file keeps reading its bytes
    assert _renameat2(d / "b", d / "dir", 2) == 0                      # a file and a directory trade places
    assert (d / "b" / "inside").read_text() == "I" and (d / "dir").read_text() == "A"
    assert held.read() == b"A"
    held.close()
    assert _renameat2(d / "sub", d / "b" / "inside", 2) == 0           # across directories
    assert (d / "sub").read_text() == "I" and (d / "b" / "inside").is_dir()
    assert _renameat2(d / "b", d / "b" / "inside", 2) == errno.EINVAL  # not with its own descendant
    assert sorted(os.listdir(d)) == ["b", "c", "dir", "sub"] and os.stat(d / "dir").st_size == 1


def test_open_unlinked_file_still_readable(d: Path) -> None:
    data = os.urandom(300_000)
    (d / "f").write_bytes(data)
    with open(d / "f", "rb") as f:
        os.unlink(d / "f")
        assert not (d / "f").exists()
        assert f.read() == data
        assert os.fstat(f.fileno()).st_nlink == 0


def test_append_from_two_processes(d: Path) -> None:
    p = d / "log"
    p.touch()
    code = ("import os,sys\nfd=os.open(sys.argv[1],os.O_WRONLY|os.O_APPEND)\n"
            "for i in range(200): os.write(fd, (sys.argv[2]*99+'\\n').encode())\nos.close(fd)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), c]) for c in "AB"]
    assert [q.wait(timeout=60) for q in procs] == [0, 0]
    lines = p.read_text().splitlines()
    assert len(lines) == 400 and sorted(set(lines)) == ["A" * 99, "B" * 99]


def test_truncate_up_and_down(d: Path) -> None:
    p = d / "t"
    data = os.urandom(200_000)
    p.write_bytes(data)
    os.truncate(p, 70_000)
    assert p.stat().st_size == 70_000 and p.read_bytes() == data[:70_000]
    os.truncate(p, 300_000)
    assert p.read_bytes() == data[:70_000] + bytes(230_000)
    with open(p, "r+b") as f:
        f.truncate(5)
        assert os.fstat(f.fileno()).st_size == 5
        f.seek(0)
        assert f.read() == data[:5]
    with open(p, "wb") as f:                                            # O_TRUNC
        f.write(b"new")
    assert p.read_bytes() == b"new"


def test_read_only_open_with_o_trunc_truncates_as_linux_does(d: Path) -> None:
    """open(O_RDONLY|O_TRUNC) truncates a regular file on Linux (given write permission), small
    files kept in meta and large ones on storage alike; without write permission it is EACCES."""
    for name, size in (("small", 100), ("large", 300_000)):
        p = d / name
        p.write_bytes(os.urandom(size))
        os.chmod(p, 0o644)
        r = run_as(f"import os\ntry:\n    os.open({str(p)!r}, os.O_RDONLY | os.O_TRUNC)\n"
                   f"except OSError as e:\n    print(e.errno)")
        assert r.stdout.strip() == str(errno.EACCES), r
        assert p.stat().st_size == size
        fd = os.open(p, os.O_RDONLY | os.O_TRUNC)
        try:
            assert os.fstat(fd).st_size == 0 and os.read(fd, 10) == b""
        finally:
            os.close(fd)
        assert p.stat().st_size == 0 and p.read_bytes() == b""


def test_writes_and_truncates_by_another_user_clear_setuid_and_setgid(d: Path) -> None:
    """As on a local file system: a non-owner's write, truncate or ftruncate of a set-id file it may
    write succeeds and drops S_ISUID (and S_ISGID of a group-executable file)."""
    cases = {"write": "fd = os.open(p, os.O_WRONLY | os.O_APPEND); os.write(fd, b'x'); os.close(fd)",
             "truncate": "os.truncate(p, 0)",
             "ftruncate": "fd = os.open(p, os.O_RDWR); os.ftruncate(fd, 0); os.close(fd)"}
    for name, code in cases.items():
        for mode in (0o4777, 0o2777):
            p = d / f"{name}-{mode:o}"
            p.write_bytes(b"data")
            os.chmod(p, mode)
            r = run_as(f"import os\np = {str(p)!r}\n{code}\nprint(oct(os.stat(p).st_mode & 0o7777))")
            assert r.returncode == 0 and r.stdout.strip() == "0o777", (name, oct(mode), r)
            assert stat.S_IMODE(p.stat().st_mode) == 0o777


def test_directory_times_move_with_its_entries(d: Path) -> None:
    """Create, unlink and rename move the directory's mtime as on a local file system, so a running
    Python finds a module written after its first import from that directory (importlib caches a
    directory's listing by its mtime)."""
    sub = d / "pkgdir"
    sub.mkdir()
    for change in (lambda: (sub / "a.py").write_text("A = 1\n"), lambda: (sub / "a.py").unlink(),
                   lambda: (sub / "b.py").write_text("B = 2\n"), lambda: (sub / "b.py").rename(sub / "c.py")):
        before = sub.stat().st_mtime_ns
        change()
        assert sub.stat().st_mtime_ns > before
    code = (f"import sys, pathlib\nsys.path.insert(0, {str(sub)!r})\nimport c\n"
            f"pathlib.Path({str(sub)!r}, 'late.py').write_text('L = 3\\n')\n"
            f"import late\nprint(c.B + late.L)")
    r = subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "5", r.stderr


def test_sparse_file_reads_zeros(d: Path) -> None:
    with open(d / "s", "wb") as f:
        f.seek(500_000)
        f.write(b"end")
    assert (d / "s").read_bytes() == bytes(500_000) + b"end"


def test_mmap_read_and_write_back(d: Path) -> None:
    p = d / "m"
    p.write_bytes(b"a" * 100_000)
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        assert m[:5] == b"aaaaa" and m[99_999:] == b"a"
        m[10:15] = b"HELLO"
        m[70_000:70_003] = b"XYZ"
        m.flush()
    data = p.read_bytes()
    assert data[10:15] == b"HELLO" and data[70_000:70_003] == b"XYZ" and len(data) == 100_000


def test_times_update(d: Path) -> None:
    p = d / "f"
    p.write_bytes(b"1")
    os.utime(p, ns=(1_000_000_000, 2_000_000_000))
    s = os.stat(p)
    assert (s.st_atime_ns, s.st_mtime_ns) == (1_000_000_000, 2_000_000_000)
    c0 = s.st_ctime_ns
    with open(p, "ab") as f:
        f.write(b"2")
    s = os.stat(p)
    assert s.st_mtime_ns > 2_000_000_000
    os.chmod(p, 0o600)
    assert os.stat(p).st_ctime_ns > c0
    m0 = os.stat(p).st_mtime_ns
    os.truncate(p, 1)
    assert os.stat(p).st_mtime_ns > m0


def test_in_place_overwrite_updates_mtime_and_ctime(d: Path) -> None:
    p = d / "f"
    p.write_bytes(b"x" * 10000)
    os.utime(p, ns=(10**18, 10**18))
    c0 = os.stat(p).st_ctime_ns
    with open(p, "r+b") as f:                 # rsync and make compare size and mtime: both must move
        f.seek(5000)
        f.write(b"y")
    s = os.stat(p)
    assert s.st_size == 10000 and s.st_mtime_ns > 10**18 and s.st_ctime_ns > c0
    with open(p, "r+b", buffering=0) as f:    # times set on the open file stay (tar, rsync --inplace)
        f.write(b"z")
        os.utime(f.fileno(), ns=(10**18, 3 * 10**18))
    assert os.stat(p).st_mtime_ns == 3 * 10**18


def test_chmod_chown(d: Path) -> None:
    p = d / "f"
    p.touch()
    os.chmod(p, 0o4751)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o4751
    os.chown(p, OTHER_UID, 100)
    s = os.stat(p)
    assert (s.st_uid, s.st_gid) == (OTHER_UID, 100)


def test_xattrs(d: Path) -> None:
    p = d / "f"
    p.touch()
    os.setxattr(p, "user.k", b"v1")
    os.setxattr(p, "user.z", b"")
    assert os.getxattr(p, "user.k") == b"v1"
    assert sorted(os.listxattr(p)) == ["user.k", "user.z"]
    assert err(os.setxattr, str(p), "user.k", b"x", os.XATTR_CREATE) == errno.EEXIST
    assert err(os.setxattr, str(p), "user.n", b"x", os.XATTR_REPLACE) == errno.ENODATA
    os.removexattr(p, "user.k")
    assert err(os.getxattr, str(p), "user.k") == errno.ENODATA
    assert err(os.setxattr, str(p), "trusted.x", b"1") == errno.EOPNOTSUPP
    os.setxattr(d, "user.dir", b"yes")
    assert os.getxattr(d, "user.dir") == b"yes"


def test_statfs(mount) -> None:
    s = os.statvfs(mount.path)
    assert s.f_bsize == 4096 and s.f_blocks > 0 and 0 < s.f_bavail <= s.f_blocks and s.f_namemax == 255


def test_fsync_and_length_visible_to_client(d: Path, client) -> None:
    rel = "/" + str(d.relative_to(d.parents[0])) + "/f"
    fd = os.open(d / "f", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x" * 5000)
        os.fsync(fd)                                        # precise length in meta before close
        assert client.stat(rel).st_size == 5000
    finally:
        os.close(fd)


def test_name_errors(d: Path) -> None:
    assert err(os.mkdir, str(d / ("x" * 256))) == errno.ENAMETOOLONG
    os.symlink("loop2", d / "loop1")
    os.symlink("loop1", d / "loop2")
    assert err(os.stat, str(d / "loop1")) == errno.ELOOP


def test_mknod_fifo_unsupported(d: Path) -> None:
    assert err(os.mkfifo, str(d / "fifo")) in (errno.EOPNOTSUPP, errno.EPERM)
    os.mknod(d / "reg", 0o644 | stat.S_IFREG)
    assert stat.S_ISREG(os.stat(d / "reg").st_mode)


def test_fallocate(d: Path) -> None:
    """pyfuse3 has no fallocate handler: the kernel answers EOPNOTSUPP; glibc's posix_fallocate emulates mode 0."""
    import ctypes
    fd = os.open(d / "f", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.fallocate(fd, 0, ctypes.c_long(0), ctypes.c_long(8192)) == -1
        assert ctypes.get_errno() == errno.EOPNOTSUPP
        os.posix_fallocate(fd, 0, 100_000)
        assert os.fstat(fd).st_size == 100_000
        assert os.pread(fd, 100_000, 0) == bytes(100_000)
    finally:
        os.close(fd)


def test_flock_and_posix_locks_between_processes(d: Path) -> None:
    """Locks are the kernel's, local to this mount (pyfuse3 exposes no lock operations)."""
    p = d / "lock"
    p.touch()
    probe = ("import fcntl,os,sys\nfd=os.open(sys.argv[1],os.O_RDWR)\n"
             "try:\n  fcntl.{fn}(fd, {args})\n  print('got')\nexcept OSError as e:\n  print(e.errno)")
    with open(p, "r+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        out = subprocess.run([sys.executable, "-c", probe.format(fn="flock", args="fcntl.LOCK_EX|fcntl.LOCK_NB"),
                              str(p)], capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        assert out == str(errno.EWOULDBLOCK)
        fcntl.flock(f, fcntl.LOCK_UN)
        fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
        out = subprocess.run([sys.executable, "-c", probe.format(fn="lockf", args="fcntl.LOCK_EX|fcntl.LOCK_NB,5,0"),
                              str(p)], capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        assert out in (str(errno.EAGAIN), str(errno.EACCES))
        out = subprocess.run([sys.executable, "-c", probe.format(fn="lockf", args="fcntl.LOCK_EX|fcntl.LOCK_NB,5,20"),
                              str(p)], capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        assert out == "got"                                # a disjoint range is free


def test_other_user_permissions(d: Path) -> None:
    (d / "private").write_text("secret")
    os.chmod(d / "private", 0o600)
    (d / "public").write_text("hi")
    os.chmod(d / "public", 0o644)
    (d / "closed").mkdir(mode=0o700)
    (d / "closed" / "x").touch()
    code = f"""
import errno, os
def tryit(fn, *a):
    try:
        r = fn(*a); return 'ok' if r is None or not isinstance(r, (bytes, str)) else r
    except OSError as e:
        return errno.errorcode[e.errno]
print(tryit(lambda: open({str(d / 'private')!r}).read()))
print(tryit(lambda: open({str(d / 'public')!r}).read()))
print(tryit(lambda: open({str(d / 'public')!r}, 'a').write('x')))
print(tryit(os.listdir, {str(d / 'closed')!r}))
print(tryit(os.stat, {str(d / 'closed' / 'x')!r}))
print(tryit(os.chmod, {str(d / 'public')!r}, 0o777))
print(os.access({str(d / 'private')!r}, os.R_OK), os.access({str(d / 'public')!r}, os.R_OK))
print(tryit(os.unlink, {str(d / 'public')!r}))
open({str(d / 'mine')!r}, 'w').write('m')
print(os.stat({str(d / 'mine')!r}).st_uid)
"""
    r = run_as(code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["EACCES", "hi", "EACCES", "EACCES", "EACCES", "EPERM",
                                        "False True", "ok", str(OTHER_UID)]
    assert not (d / "public").exists()       # the directory is world-writable: unlink allowed


def test_supplementary_groups_per_process(d: Path) -> None:
    """Meta sees each caller's own supplementary groups: the mount's short-lived groups cache never
    lends one process's groups to another process of the same uid/gid."""
    team = OTHER_GID + 1
    (d / "team").write_text("shared")
    os.chown(d / "team", 0, team)
    os.chmod(d / "team", 0o640)
    code = f"""
import os
import threading
os.listdir({str(d)!r})
for _ in range(3):
    try:
        print(open({str(d / 'team')!r}).read())
    except OSError as e:
        print(e.errno)
"""

    def as_member(groups: list[int]) -> list[str]:
        def drop() -> None:
            os.setgroups(groups)
            os.setresgid(OTHER_GID, OTHER_GID, OTHER_GID)
            os.setresuid(OTHER_UID, OTHER_UID, OTHER_UID)
        r = subprocess.run([SYSTEM_PYTHON, "-c", code], preexec_fn=drop, capture_output=True, text=True,
                           timeout=60, cwd="/", check=False)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    assert as_member([OTHER_GID]) == [str(errno.EACCES)] * 3
    assert as_member([OTHER_GID, team]) == ["shared"] * 3          # right after a non-member, same uid and gid
    assert as_member([OTHER_GID]) == [str(errno.EACCES)] * 3


def test_sticky_directory(d: Path) -> None:
    (d / "tmp").mkdir()
    os.chmod(d / "tmp", 0o1777)
    (d / "tmp" / "roots").touch()
    r = run_as(f"import os\ntry:\n  os.unlink({str(d / 'tmp' / 'roots')!r})\nexcept OSError as e:\n  print(e.errno)")
    assert r.stdout.strip() == str(errno.EPERM)
    assert (d / "tmp" / "roots").exists()


def test_daemon_survives_errors(mount, d: Path) -> None:
    for _ in range(3):
        assert err(os.open, str(d / "nope"), os.O_RDONLY) == errno.ENOENT
    assert mount.proc.poll() is None
    (d / "still").write_text("alive")
    assert (d / "still").read_text() == "alive"


def test_negative_lookup_then_create(d: Path) -> None:
    assert not (d / "later").exists()                     # a negative dentry is cached...
    (d / "later").write_text("x")                         # ...and dropped by a create through this mount
    assert (d / "later").read_text() == "x"


def test_times_ns_precision(d: Path) -> None:
    t0 = time.time_ns()
    (d / "f").touch()
    assert abs(os.stat(d / "f").st_mtime_ns - t0) < 60 * 10**9


def test_writes_during_a_concurrent_flush_are_kept(d: Path) -> None:
    """A stat while a small created file is being written flushes its buffer (inline into meta);
    the writes that arrive while that flush waits for meta must not be dropped with it."""
    lines = [b"%06d\n" % i for i in range(1100)]          # 7,700 bytes: the file stays inline
    for attempt in range(3):
        path = d / f"log{attempt}"
        stop = threading.Event()

        def stat_loop() -> None:
            while not stop.is_set():
                try:
                    os.stat(path)                         # attributes stale after each write: GETATTR
                except FileNotFoundError:
                    pass

        t = threading.Thread(target=stat_loop)
        with open(path, "wb", buffering=0) as f:
            t.start()
            try:
                for line in lines:
                    f.write(line)
            finally:
                stop.set()
                t.join()
        assert path.read_bytes() == b"".join(lines)
