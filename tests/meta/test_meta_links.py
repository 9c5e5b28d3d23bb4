"""Symlinks (resolution, ELOOP after 40 hops, no-follow rules) and hard links (nlink, EPERM, EMLINK)."""
from __future__ import annotations

import errno
import stat as st

from meta_util import expect_errno
from threefs.kv.engine import run_txn
from threefs.meta.schema import load_inode, store_inode


def test_symlink_resolution_relative_absolute_and_chained(fs, wd):
    fs.makedirs(f"{wd}/real/sub")
    fs.write_file(f"{wd}/real/sub/f", b"content")
    fs.symlink("real", f"{wd}/rel")                     # relative to the link's directory
    fs.symlink(f"{wd}/real/sub", f"{wd}/abs")           # absolute
    fs.symlink("rel/sub/f", f"{wd}/chain")               # through another symlink
    fs.symlink("../../real", f"{wd}/real/sub/up")
    assert fs.read_file(f"{wd}/rel/sub/f") == b"content"
    assert fs.read_file(f"{wd}/abs/f") == b"content"
    assert fs.read_file(f"{wd}/chain") == b"content"
    assert fs.listdir(f"{wd}/real/sub/up") == ["sub"]
    assert st.S_ISLNK(fs.lstat(f"{wd}/chain").st_mode) and st.S_ISREG(fs.stat(f"{wd}/chain").st_mode)
    assert fs.readlink(f"{wd}/chain") == "rel/sub/f"
    assert fs.lstat(f"{wd}/chain").st_size == len("rel/sub/f")
    expect_errno(errno.EINVAL, fs.readlink, f"{wd}/real")
    fs.write_file(f"{wd}/rel/new", b"n")                  # create through a symlinked directory
    assert fs.listdir(f"{wd}/real") == ["new", "sub"]


def test_symlink_errors(fs, wd):
    fs.write_file(f"{wd}/f", b"")
    expect_errno(errno.EEXIST, fs.symlink, "x", f"{wd}/f")
    fs.symlink("nowhere", f"{wd}/dangling")
    expect_errno(errno.EEXIST, fs.symlink, "x", f"{wd}/dangling")
    expect_errno(errno.ENOENT, fs.stat, f"{wd}/dangling")
    assert fs.lstat(f"{wd}/dangling").st_size == 7
    expect_errno(errno.ENOENT, fs.symlink, "", f"{wd}/empty")
    expect_errno(errno.ENAMETOOLONG, fs.symlink, "x" * 4096, f"{wd}/long")
    fs.symlink("f", f"{wd}/to_file")
    expect_errno(errno.ENOTDIR, fs.stat, f"{wd}/to_file/")
    expect_errno(errno.ENOTDIR, fs.stat, f"{wd}/to_file/x")


def test_eloop_after_40_hops(fs, wd):
    for i in range(40):
        fs.symlink(f"l{i + 1}", f"{wd}/l{i}")
    fs.write_file(f"{wd}/l40", b"end")
    assert fs.read_file(f"{wd}/l0") == b"end"           # exactly 40 symlinks: resolves
    fs.symlink("l0", f"{wd}/l-1")
    expect_errno(errno.ELOOP, fs.read_file, f"{wd}/l-1")  # 41
    fs.symlink("self", f"{wd}/self")
    expect_errno(errno.ELOOP, fs.stat, f"{wd}/self")
    expect_errno(errno.ELOOP, fs.mkdir, f"{wd}/self/x")


def test_remove_and_rename_do_not_follow_the_last_symlink(fs, wd):
    fs.mkdir(f"{wd}/d")
    fs.write_file(f"{wd}/d/f", b"keep")
    fs.symlink("d", f"{wd}/ld")
    fs.symlink("d/f", f"{wd}/lf")
    fs.remove(f"{wd}/lf")
    fs.remove(f"{wd}/ld")
    assert fs.listdir(wd) == ["d"] and fs.read_file(f"{wd}/d/f") == b"keep"
    fs.symlink("d", f"{wd}/ld")
    expect_errno(errno.ENOTDIR, fs.rmdir, f"{wd}/ld")
    expect_errno(errno.ENOTDIR, fs.rmdir, f"{wd}/ld/")
    assert fs.listdir(f"{wd}/d") == ["f"]


def test_hard_links_share_the_inode_and_count_nlink(fs, wd):
    fs.write_file(f"{wd}/a", b"shared")
    fs.mkdir(f"{wd}/other")
    fs.link(f"{wd}/a", f"{wd}/b")
    fs.link(f"{wd}/a", f"{wd}/other/c")
    a, b, c = (fs.stat(p) for p in (f"{wd}/a", f"{wd}/b", f"{wd}/other/c"))
    assert a.st_ino == b.st_ino == c.st_ino and a.st_nlink == 3
    fs.remove(f"{wd}/a")
    assert fs.stat(f"{wd}/b").st_nlink == 2 and fs.read_file(f"{wd}/other/c") == b"shared"
    fs.remove(f"{wd}/other/c")
    assert fs.stat(f"{wd}/b").st_nlink == 1 and fs.read_file(f"{wd}/b") == b"shared"
    fs.symlink("b", f"{wd}/sl")
    fs.link(f"{wd}/sl", f"{wd}/sl2")                     # links the symlink itself
    assert fs.lstat(f"{wd}/sl2").st_nlink == 2 and fs.readlink(f"{wd}/sl2") == "b"
    fs.link(f"{wd}/sl", f"{wd}/via", follow_symlinks=True)
    assert fs.stat(f"{wd}/via").st_ino == fs.stat(f"{wd}/b").st_ino


def test_hard_link_errors(fs, wd, meta_cluster):
    fs.mkdir(f"{wd}/d")
    fs.write_file(f"{wd}/f", b"")
    expect_errno(errno.EPERM, fs.link, f"{wd}/d", f"{wd}/d2")
    expect_errno(errno.EPERM, fs.link, "/", f"{wd}/root")
    expect_errno(errno.EEXIST, fs.link, f"{wd}/f", f"{wd}/d")
    expect_errno(errno.ENOENT, fs.link, f"{wd}/missing", f"{wd}/x")
    expect_errno(errno.ENOENT, fs.link, f"{wd}/f", f"{wd}/missing/x")
    ino = fs.stat(f"{wd}/f").st_ino

    async def set_nlink(txn, n=65535):
        inode = await load_inode(txn, ino)
        inode.nlink = n
        store_inode(txn, inode)

    meta_cluster.call(run_txn(meta_cluster.kv, set_nlink))     # as if 65534 more links existed
    expect_errno(errno.EMLINK, fs.link, f"{wd}/f", f"{wd}/one-too-many")
    meta_cluster.call(run_txn(meta_cluster.kv, lambda txn: set_nlink(txn, 1)))
