"""rename: POSIX replace rules, loop detection, idempotent retries, on every KV engine."""
from __future__ import annotations

import errno

from meta_util import expect_errno
from threefs.proto import meta_pb2 as mp


def test_rename_file_within_and_across_directories(fs, wd):
    fs.makedirs(f"{wd}/a")
    fs.makedirs(f"{wd}/b")
    fs.write_file(f"{wd}/a/f", b"data")
    ino = fs.stat(f"{wd}/a/f").st_ino
    fs.rename(f"{wd}/a/f", f"{wd}/a/g")
    fs.rename(f"{wd}/a/g", f"{wd}/b/h")
    assert fs.listdir(f"{wd}/a") == [] and fs.listdir(f"{wd}/b") == ["h"]
    assert fs.stat(f"{wd}/b/h").st_ino == ino and fs.read_file(f"{wd}/b/h") == b"data"
    fs.rename(f"{wd}/b/h", f"{wd}/b/h")             # same entry: no-op
    assert fs.listdir(f"{wd}/b") == ["h"]


def test_rename_replaces_files_and_empty_directories(fs, wd):
    fs.write_file(f"{wd}/src", b"new")
    fs.write_file(f"{wd}/dst", b"old")
    old = fs.stat(f"{wd}/dst").st_ino
    fs.rename(f"{wd}/src", f"{wd}/dst")
    assert fs.read_file(f"{wd}/dst") == b"new" and fs.listdir(wd) == ["dst"]
    batch = fs.run(fs.aio.meta.call("BatchStat", mp.BatchStatReq(base=fs.aio.meta.base(), inodes=[old]),
                                    mp.BatchStatRsp))
    assert not batch.found[0] or batch.inodes[0].nlink == 0       # replaced file went to GC
    fs.makedirs(f"{wd}/d1/x")
    fs.mkdir(f"{wd}/d2")
    fs.rename(f"{wd}/d1", f"{wd}/d2")               # over an empty directory
    assert fs.listdir(f"{wd}/d2") == ["x"] and "d1" not in fs.listdir(wd)
    fs.symlink("nowhere", f"{wd}/sl")
    fs.rename(f"{wd}/dst", f"{wd}/sl")              # over a symlink
    assert fs.read_file(f"{wd}/sl") == b"new"


def test_rename_type_and_emptiness_errors(fs, wd):
    fs.makedirs(f"{wd}/d/x")
    fs.mkdir(f"{wd}/e")
    fs.write_file(f"{wd}/f", b"")
    expect_errno(errno.ENOTDIR, fs.rename, f"{wd}/e", f"{wd}/f")      # dir over non-dir
    expect_errno(errno.EISDIR, fs.rename, f"{wd}/f", f"{wd}/e")       # non-dir over dir
    expect_errno(errno.ENOTEMPTY, fs.rename, f"{wd}/e", f"{wd}/d")    # over a non-empty dir
    expect_errno(errno.ENOENT, fs.rename, f"{wd}/missing", f"{wd}/x")
    expect_errno(errno.ENOENT, fs.rename, f"{wd}/f", f"{wd}/missing/x")
    expect_errno(errno.ENOTDIR, fs.rename, f"{wd}/f", f"{wd}/f/x")
    expect_errno(errno.ENOTDIR, fs.rename, f"{wd}/f/", f"{wd}/g")
    expect_errno(errno.EBUSY, fs.rename, "/", f"{wd}/root")
    expect_errno(errno.EINVAL, fs.rename, f"{wd}/e/.", f"{wd}/g")


def test_moving_a_directory_into_its_own_subtree_is_einval(fs, wd):
    fs.makedirs(f"{wd}/a/b/c")
    expect_errno(errno.EINVAL, fs.rename, f"{wd}/a", f"{wd}/a/b/c/a")
    expect_errno(errno.EINVAL, fs.rename, f"{wd}/a", f"{wd}/a/x")
    expect_errno(errno.EINVAL, fs.rename, f"{wd}/a/b", f"{wd}/a/b/c/d")
    fs.rename(f"{wd}/a/b/c", f"{wd}/c")             # moving up is fine
    fs.rename(f"{wd}/a", f"{wd}/c/a")               # and sideways into another tree
    assert fs.listdir(f"{wd}/c/a") == ["b"]
    assert fs.realpath(f"{wd}/c/a/b") == f"{wd}/c/a/b"
    assert fs.stat(f"{wd}/c/a/b/..").st_ino == fs.stat(f"{wd}/c/a").st_ino


def test_rename_noreplace_and_exchange_flags(fs, wd):
    fs.write_file(f"{wd}/a", b"a")
    fs.write_file(f"{wd}/b", b"b")
    expect_errno(errno.EEXIST, fs.run, fs.aio.rename(f"{wd}/a", f"{wd}/b", flags=1))
    expect_errno(errno.EINVAL, fs.run, fs.aio.rename(f"{wd}/a", f"{wd}/b", flags=8))
    expect_errno(errno.EINVAL, fs.run, fs.aio.rename(f"{wd}/a", f"{wd}/b", flags=3))
    fs.run(fs.aio.rename(f"{wd}/a", f"{wd}/c", flags=1))
    assert fs.listdir(wd) == ["b", "c"]


def test_rename_exchange_swaps_two_entries(fs, wd, meta_cluster):
    fs.write_file(f"{wd}/a", b"a")
    fs.write_file(f"{wd}/b", b"b")
    ino_a, ino_b = fs.stat(f"{wd}/a").st_ino, fs.stat(f"{wd}/b").st_ino
    fs.run(fs.aio.rename(f"{wd}/a", f"{wd}/b", flags=2))
    assert (fs.read_file(f"{wd}/a"), fs.read_file(f"{wd}/b")) == (b"b", b"a")
    assert (fs.stat(f"{wd}/a").st_ino, fs.stat(f"{wd}/b").st_ino) == (ino_b, ino_a)
    expect_errno(errno.ENOENT, fs.run, fs.aio.rename(f"{wd}/a", f"{wd}/none", flags=2))
    fs.makedirs(f"{wd}/x/deep/er")
    fs.mkdir(f"{wd}/y")
    fs.run(fs.aio.rename(f"{wd}/x/deep", f"{wd}/a", flags=2))          # a directory and a file, across parents
    assert fs.listdir(f"{wd}/a") == ["er"] and fs.read_file(f"{wd}/x/deep") == b"b"
    assert fs.realpath(f"{wd}/a/er") == f"{wd}/a/er"                  # the moved directory's own parent link
    assert fs.stat(f"{wd}/a/er/..").st_ino == fs.stat(f"{wd}/a").st_ino
    expect_errno(errno.EINVAL, fs.run, fs.aio.rename(f"{wd}/a", f"{wd}/a/er", flags=2))   # its own descendant
    expect_errno(errno.EINVAL, fs.run, fs.aio.rename(f"{wd}/a/er", f"{wd}/a", flags=2))   # or ancestor
    fs.chmod(wd, 0o1777)                                               # sticky: only owners exchange
    fs.chown(f"{wd}/b", 5001, 5001)
    other = meta_cluster.client(uid=5002)
    other.write_file(f"{wd}/mine", b"m")
    expect_errno(errno.EPERM, other.run, other.aio.rename(f"{wd}/mine", f"{wd}/b", flags=2))
    assert not meta_cluster.fsck().errors


def test_rename_of_hard_links_to_each_other_is_a_noop(fs, wd):
    fs.write_file(f"{wd}/a", b"x")
    fs.link(f"{wd}/a", f"{wd}/b")
    fs.rename(f"{wd}/a", f"{wd}/b")
    assert fs.listdir(wd) == ["a", "b"] and fs.stat(f"{wd}/a").st_nlink == 2


def test_rename_does_not_follow_symlinks(fs, wd):
    fs.mkdir(f"{wd}/d")
    fs.symlink("d", f"{wd}/l")
    fs.rename(f"{wd}/l", f"{wd}/l2")
    assert fs.readlink(f"{wd}/l2") == "d" and fs.listdir(f"{wd}/d") == []


def test_retried_rename_returns_the_first_result(fs, wd):
    fs.write_file(f"{wd}/a", b"x")
    req = mp.RenameReq(base=fs.aio.meta.base(), src=mp.PathAt(path=f"{wd}/a"), dst=mp.PathAt(path=f"{wd}/b"))
    first = fs.run(fs.aio.meta.call("Rename", req, mp.RenameRsp))
    again = fs.run(fs.aio.meta.call("Rename", req, mp.RenameRsp))      # a retry after a lost reply
    assert again.inode.id == first.inode.id and fs.listdir(wd) == ["b"]
    fresh = mp.RenameReq(base=fs.aio.meta.base(), src=req.src, dst=req.dst)
    expect_errno(errno.ENOENT, fs.run, fs.aio.meta.call("Rename", fresh, mp.RenameRsp))
