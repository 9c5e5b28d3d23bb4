"""Namespace operations and their POSIX errors, on every KV engine: mkdir, create/open flags, stat,
list, remove/rmdir, name and path limits."""
from __future__ import annotations

import errno
import os
import stat as st

from meta_util import expect_errno
from threefs.proto import meta_pb2 as mp


def test_mkdir_and_errors(fs, wd):
    fs.mkdir(f"{wd}/d")
    assert st.S_ISDIR(fs.stat(f"{wd}/d").st_mode)
    expect_errno(errno.EEXIST, fs.mkdir, f"{wd}/d")
    fs.write_file(f"{wd}/f", b"x")
    expect_errno(errno.EEXIST, fs.mkdir, f"{wd}/f")
    expect_errno(errno.ENOENT, fs.mkdir, f"{wd}/missing/d")
    expect_errno(errno.ENOTDIR, fs.mkdir, f"{wd}/f/d")
    expect_errno(errno.EEXIST, fs.mkdir, "/")
    fs.makedirs(f"{wd}/a/b/c")
    fs.makedirs(f"{wd}/a/b/c", exist_ok=True)
    expect_errno(errno.EEXIST, fs.makedirs, f"{wd}/a/b/c")
    expect_errno(errno.ENOTDIR, fs.makedirs, f"{wd}/f/x/y", exist_ok=True)
    fs.makedirs(f"{wd}/a/./b/../b/d", exist_ok=True)
    assert fs.listdir(f"{wd}/a/b") == ["c", "d"]


def test_names_longer_than_255_bytes_fail_with_enametoolong(fs, wd):
    ok = "n" * 255
    fs.write_file(f"{wd}/{ok}", b"")
    assert fs.listdir(wd) == [ok]
    long = "n" * 256
    expect_errno(errno.ENAMETOOLONG, fs.write_file, f"{wd}/{long}", b"")
    expect_errno(errno.ENAMETOOLONG, fs.mkdir, f"{wd}/{long}")
    expect_errno(errno.ENAMETOOLONG, fs.stat, f"{wd}/{long}")
    expect_errno(errno.ENAMETOOLONG, fs.rename, f"{wd}/{ok}", f"{wd}/{long}")
    expect_errno(errno.ENAMETOOLONG, fs.symlink, "x", f"{wd}/{long}")
    multibyte = "é" * 128                    # 256 bytes in UTF-8
    expect_errno(errno.ENAMETOOLONG, fs.mkdir, f"{wd}/{multibyte}")
    expect_errno(errno.ENAMETOOLONG, fs.stat, "/" + "d/" * 2100)


def test_open_flags_excl_trunc_append(fs, wd):
    p = f"{wd}/f"
    with fs.open(p, "xb") as f:
        f.write(b"hello")
    expect_errno(errno.EEXIST, fs.open, p, "xb")
    with fs.open(p, "ab") as f:
        f.write(b" world")
    assert fs.read_file(p) == b"hello world"
    with fs.open(p, "wb") as f:                 # O_TRUNC
        f.write(b"new")
    assert fs.read_file(p) == b"new" and fs.stat(p).st_size == 3
    with fs.open(p, "r+b") as f:
        f.seek(1)
        f.write(b"E")
    assert fs.read_file(p) == b"nEw"
    expect_errno(errno.ENOENT, fs.open, f"{wd}/missing", "rb")
    expect_errno(errno.EISDIR, fs.open, wd, "wb")
    expect_errno(errno.EISDIR, fs.open, f"{wd}/newfile/", "wb")
    expect_errno(errno.ENOTDIR, fs.open, f"{p}/", "rb")
    expect_errno(errno.ENOTDIR, fs.open, f"{p}/x", "wb")


def test_o_excl_does_not_follow_symlinks_and_o_nofollow_gives_eloop(fs, wd):
    fs.symlink("target", f"{wd}/dangling")
    expect_errno(errno.EEXIST, fs.open, f"{wd}/dangling", "xb")
    with fs.open(f"{wd}/dangling", "wb") as f:      # O_CREAT through a dangling symlink creates its target
        f.write(b"t")
    assert fs.read_file(f"{wd}/target") == b"t"
    expect_errno(errno.ELOOP, _open_flags, fs, f"{wd}/dangling", os.O_RDONLY | os.O_NOFOLLOW)
    expect_errno(errno.ELOOP, _open_flags, fs, f"{wd}/dangling", os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW)


def _open_flags(fs, path: str, flags: int) -> None:
    f = fs.run(fs.aio.open_flags(path, flags))
    fs.run(f.close())


def test_stat_and_list(fs, wd):
    fs.write_file(f"{wd}/f", b"12345")
    fs.mkdir(f"{wd}/d", 0o750)
    s = fs.stat(f"{wd}/f")
    assert st.S_ISREG(s.st_mode) and s.st_size == 5 and s.st_nlink == 1 and s.st_uid == 0
    d = fs.stat(f"{wd}/d")
    assert st.S_IMODE(d.st_mode) == 0o750 and d.st_ino != s.st_ino
    assert fs.listdir(wd) == ["d", "f"]
    entries = fs.scandir(wd)
    assert [(e.name, e.type) for e, _ in entries] == [("d", mp.DIRECTORY), ("f", mp.FILE)]
    expect_errno(errno.ENOTDIR, fs.listdir, f"{wd}/f")
    expect_errno(errno.ENOENT, fs.stat, f"{wd}/nope")
    expect_errno(errno.ENOTDIR, fs.stat, f"{wd}/f/")
    assert fs.stat(f"{wd}/d/").st_ino == d.st_ino
    assert fs.stat(f"{wd}/d/..").st_ino == fs.stat(wd).st_ino
    assert fs.stat("/..").st_ino == fs.stat("/").st_ino == 0


def test_batch_stat_by_path_and_lookup(fs, wd):
    fs.write_file(f"{wd}/a", b"a")
    fs.mkdir(f"{wd}/d")
    base = fs.aio.meta.base()
    req = mp.BatchStatByPathReq(base=base, paths=[mp.PathAt(path=f"{wd}/a"), mp.PathAt(path=f"{wd}/zz"),
                                                   mp.PathAt(path=f"{wd}/a/b"), mp.PathAt(path=f"{wd}/d")])
    rsp = fs.run(fs.aio.meta.call("BatchStatByPath", req, mp.BatchStatByPathRsp))
    assert [c for c in rsp.codes] == [0, 1, 3, 0]        # OK, NOT_FOUND, NOT_DIRECTORY, OK
    assert rsp.inodes[0].length == 1 and rsp.inodes[3].type == mp.DIRECTORY
    dir_ino = fs.stat(wd).st_ino
    look = fs.run(fs.aio.meta.call("Lookup", mp.LookupReq(base=fs.aio.meta.base(), parent=dir_ino, name="a"),
                                   mp.LookupRsp))
    assert look.entry.id == fs.stat(f"{wd}/a").st_ino and look.inode.length == 1
    expect_errno(errno.ENOENT, fs.run, fs.aio.meta.call("Lookup", mp.LookupReq(base=fs.aio.meta.base(),
                                                                                  parent=dir_ino, name="zz"),
                                                         mp.LookupRsp))


def test_remove_and_rmdir_errors(fs, wd):
    fs.write_file(f"{wd}/f", b"x")
    fs.makedirs(f"{wd}/d/sub")
    fs.mkdir(f"{wd}/empty")
    expect_errno(errno.EISDIR, fs.remove, f"{wd}/d")
    expect_errno(errno.ENOTDIR, fs.rmdir, f"{wd}/f")
    expect_errno(errno.ENOTEMPTY, fs.rmdir, f"{wd}/d")
    expect_errno(errno.ENOENT, fs.remove, f"{wd}/nope")
    expect_errno(errno.ENOTDIR, fs.remove, f"{wd}/f/")
    expect_errno(errno.EINVAL, fs.rmdir, f"{wd}/empty/.")
    expect_errno(errno.EBUSY, fs.rmdir, "/")
    expect_errno(errno.EBUSY, fs.rmtree, "/")
    fs.rmdir(f"{wd}/empty")
    fs.remove(f"{wd}/f")
    assert fs.listdir(wd) == ["d"]
    fs.rmtree(f"{wd}/d")
    assert fs.listdir(wd) == []
    expect_errno(errno.ENOENT, fs.stat, f"{wd}/d/sub")


def test_create_in_a_removed_directory_fails(fs, wd):
    fs.mkdir(f"{wd}/d")
    ino = fs.stat(f"{wd}/d").st_ino
    fs.rmdir(f"{wd}/d")
    req = mp.CreateReq(base=fs.aio.meta.base(), path=mp.PathAt(parent=ino, path="x"), flags=os.O_CREAT, perm=0o644)
    expect_errno(errno.ENOENT, fs.run, fs.aio.meta.call("Create", req, mp.CreateRsp))


def test_realpath(fs, wd):
    fs.makedirs(f"{wd}/a/b")
    fs.symlink("a/b", f"{wd}/lnk")
    fs.write_file(f"{wd}/a/b/f", b"")
    assert fs.realpath(f"{wd}/lnk") == f"{wd}/a/b"
    assert fs.realpath(f"{wd}/lnk/../b/./f") == f"{wd}/a/b/f"
    assert fs.realpath("/") == "/"
    fs.rename(f"{wd}/a", f"{wd}/z")
    assert fs.realpath(f"{wd}/z/b/f") == f"{wd}/z/b/f"


def test_statfs(fs):
    s = fs.statfs()
    assert s.capacity > 0 and s.free > 0
