"""User extended attributes: set/get/list/remove, flags, limits, permissions, and cleanup with the inode."""
from __future__ import annotations

import errno

from meta_util import expect_errno
from threefs.kv import keys
from threefs.kv.engine import run_txn
from threefs.meta.ops.xattr import MAX_VALUE, XATTR_CREATE, XATTR_REPLACE


def test_set_get_list_remove(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    assert fs.listxattr(p) == []
    fs.setxattr(p, "user.b", b"2")
    fs.setxattr(p, "user.a", b"\x00binary\xff")
    assert fs.getxattr(p, "user.a") == b"\x00binary\xff"
    assert sorted(fs.listxattr(p)) == ["user.a", "user.b"]
    fs.setxattr(p, "user.a", b"")                       # empty values are values
    assert fs.getxattr(p, "user.a") == b""
    fs.removexattr(p, "user.a")
    assert fs.listxattr(p) == ["user.b"]
    expect_errno(errno.ENODATA, fs.getxattr, p, "user.a")
    expect_errno(errno.ENODATA, fs.removexattr, p, "user.a")
    fs.mkdir(f"{wd}/d")
    fs.setxattr(f"{wd}/d", "user.dir", b"yes")
    assert fs.getxattr(f"{wd}/d", "user.dir") == b"yes"


def test_flags_namespaces_and_limits(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    expect_errno(errno.ENODATA, fs.setxattr, p, "user.x", b"1", XATTR_REPLACE)
    fs.setxattr(p, "user.x", b"1", XATTR_CREATE)
    expect_errno(errno.EEXIST, fs.setxattr, p, "user.x", b"2", XATTR_CREATE)
    fs.setxattr(p, "user.x", b"3", XATTR_REPLACE)
    assert fs.getxattr(p, "user.x") == b"3"
    expect_errno(errno.EINVAL, fs.setxattr, p, "user.x", b"3", XATTR_CREATE | XATTR_REPLACE)
    for name in ("trusted.x", "security.selinux", "system.posix_acl_access", "user."):
        expect_errno(errno.EOPNOTSUPP, fs.setxattr, p, name, b"v")
    expect_errno(errno.ERANGE, fs.setxattr, p, "user." + "n" * 251, b"v")
    expect_errno(errno.ERANGE, fs.setxattr, p, "user.big", b"v" * (MAX_VALUE + 1))
    fs.setxattr(p, "user.max", b"v" * MAX_VALUE)
    assert len(fs.getxattr(p, "user.max")) == MAX_VALUE
    expect_errno(errno.ENOENT, fs.getxattr, f"{wd}/missing", "user.x")


def test_symlinks_follow_or_refuse(fs, wd):
    fs.write_file(f"{wd}/target", b"")
    fs.symlink(f"{wd}/target", f"{wd}/link")
    fs.setxattr(f"{wd}/link", "user.via", b"link")          # follows to the target
    assert fs.getxattr(f"{wd}/target", "user.via") == b"link"
    expect_errno(errno.EPERM, fs.setxattr, f"{wd}/link", "user.on", b"x", follow_symlinks=False)


def test_permissions(fs, wd, meta_cluster):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    fs.setxattr(p, "user.k", b"v")
    fs.chmod(p, 0o604)                                      # others may read, not write
    other = meta_cluster.client(uid=2002, gid=2002)
    assert other.getxattr(p, "user.k") == b"v"
    assert other.listxattr(p) == ["user.k"]
    expect_errno(errno.EACCES, other.setxattr, p, "user.k", b"w")
    expect_errno(errno.EACCES, other.removexattr, p, "user.k")
    fs.chmod(p, 0o600)
    expect_errno(errno.EACCES, other.getxattr, p, "user.k")


def test_attributes_go_with_the_inode(fs, wd, meta_cluster):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    ino = fs.stat(p).st_ino
    fs.setxattr(p, "user.k", b"v")
    fs.rename(p, f"{wd}/g")
    assert fs.getxattr(f"{wd}/g", "user.k") == b"v"
    fs.remove(f"{wd}/g")

    async def remaining(txn):
        prefix = keys.xattr_prefix(ino)
        return await txn.get_range(prefix, keys.prefix_end(prefix))

    from meta_util import wait_until
    wait_until(lambda: not meta_cluster.call(run_txn(meta_cluster.kv, remaining)), what="xattrs removed by GC")
