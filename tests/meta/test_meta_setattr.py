"""setAttr and truncate: chmod, chown, utime, immutable flag, per-directory layouts, truncate versions."""
from __future__ import annotations

import errno
import stat as st

import pytest

from meta_util import CHUNK, expect_errno
from threefs.meta.schema import FS_IMMUTABLE_FL
from threefs.proto import common_pb2 as cpb


def test_chmod_chown_utime(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    fs.chmod(p, 0o640)
    assert st.S_IMODE(fs.stat(p).st_mode) == 0o640
    fs.chown(p, 1234, 5678)
    s = fs.stat(p)
    assert (s.st_uid, s.st_gid) == (1234, 5678)
    fs.chown(p, -1, 42)
    assert (fs.stat(p).st_uid, fs.stat(p).st_gid) == (1234, 42)
    fs.utime(p, ns=(1_000_000_000, 2_000_000_000))
    s = fs.stat(p)
    assert (s.st_atime_ns, s.st_mtime_ns) == (1_000_000_000, 2_000_000_000)
    before = s.st_ctime_ns
    fs.utime(p)
    s = fs.stat(p)
    assert s.st_mtime_ns > 2_000_000_000 and s.st_ctime_ns >= before
    expect_errno(errno.ENOENT, fs.chmod, f"{wd}/nope", 0o600)


def test_chmod_of_a_directory_updates_path_walk_permissions(fs, wd, meta_cluster):
    fs.makedirs(f"{wd}/d/sub")
    user = meta_cluster.client(uid=2001)
    assert user.listdir(f"{wd}/d") == ["sub"]
    fs.chmod(f"{wd}/d", 0o700)                          # the ACL copy in d's entry changes too
    expect_errno(errno.EACCES, user.stat, f"{wd}/d/sub")
    fs.chmod(f"{wd}/d", 0o711)
    assert user.stat(f"{wd}/d/sub").st_ino
    fs.rename(f"{wd}/d", f"{wd}/moved")
    fs.chmod(f"{wd}/moved", 0o700)
    expect_errno(errno.EACCES, user.stat, f"{wd}/moved/sub")


def test_immutable_flag_blocks_changes(fs, wd):
    fs.write_file(f"{wd}/f", b"x")
    fs.run(fs.aio.setattr(f"{wd}/f", iflags=FS_IMMUTABLE_FL))
    expect_errno(errno.EPERM, fs.remove, f"{wd}/f")
    expect_errno(errno.EPERM, fs.rename, f"{wd}/f", f"{wd}/g")
    expect_errno(errno.EPERM, fs.open, f"{wd}/f", "r+b")
    expect_errno(errno.EPERM, fs.chmod, f"{wd}/f", 0o600)
    expect_errno(errno.EPERM, fs.link, f"{wd}/f", f"{wd}/h")
    expect_errno(errno.EPERM, fs.truncate, f"{wd}/f", 0)
    assert fs.read_file(f"{wd}/f") == b"x"
    fs.run(fs.aio.setattr(f"{wd}/f", iflags=0))
    fs.remove(f"{wd}/f")


def test_truncate_shrinks_extends_and_bumps_the_truncate_version(fs, wd):
    p = f"{wd}/f"
    data = bytes(range(256)) * (3 * CHUNK // 256)        # three chunks
    fs.write_file(p, data)
    v0 = fs.stat(p).inode.truncate_ver
    fs.truncate(p, CHUNK + 10)
    s = fs.stat(p)
    assert s.st_size == CHUNK + 10 and s.inode.truncate_ver == v0 + 1
    assert fs.read_file(p) == data[:CHUNK + 10]
    fs.truncate(p, 2 * CHUNK + 5)                       # extending reads zeros
    assert fs.read_file(p) == data[:CHUNK + 10] + bytes(CHUNK - 5)
    fs.truncate(p, 0)
    assert fs.read_file(p) == b"" and fs.stat(p).inode.truncate_ver == v0 + 3
    expect_errno(errno.EISDIR, fs.truncate, wd, 0)
    expect_errno(errno.EINVAL, fs.truncate, p, -1)
    expect_errno(errno.ENOENT, fs.truncate, f"{wd}/nope", 0)


def test_o_trunc_open_empties_the_file(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"x" * (2 * CHUNK + 3))
    with fs.open(p, "wb") as f:
        assert f.length == 0
    assert fs.stat(p).st_size == 0 and fs.read_file(p) == b""


def test_directory_layouts_are_inherited_and_settable(fs, wd, meta_cluster):
    big = cpb.Layout(table_id=1, chunk_size=1 << 20, stripe_size=2)
    fs.run(fs.aio.setattr(wd, layout=big))
    fs.makedirs(f"{wd}/sub/deeper")
    fs.write_file(f"{wd}/sub/deeper/f", b"x" * 10)
    lay = fs.stat(f"{wd}/sub/deeper/f").inode.layout
    assert (lay.chunk_size, lay.stripe_size, lay.table_id) == (1 << 20, 2, 1)
    assert lay.WhichOneof("chains") == "range"           # chains picked at create
    assert fs.stat(f"{wd}/sub").inode.layout.chunk_size == 1 << 20
    fs.write_file(f"{wd}/before", b"")
    fs.run(fs.aio.setattr(wd, layout=cpb.Layout(table_id=1, chunk_size=CHUNK, stripe_size=1)))
    assert fs.stat(f"{wd}/before").inode.layout.chunk_size == 1 << 20      # existing files keep theirs
    for bad in (cpb.Layout(table_id=1, chunk_size=3000, stripe_size=1),
                cpb.Layout(table_id=1, chunk_size=CHUNK, stripe_size=99),
                cpb.Layout(table_id=7, chunk_size=CHUNK, stripe_size=1)):
        expect_errno(errno.EINVAL, fs.run, fs.aio.setattr(wd, layout=bad))
    expect_errno(errno.ENOTDIR, fs.run, fs.aio.setattr(f"{wd}/before", layout=big))
    user = meta_cluster.client(uid=3001)
    expect_errno(errno.EPERM, user.run, user.aio.setattr(wd, layout=big))


@pytest.mark.parametrize("mode", [0o4755, 0o2755])
def test_write_by_non_owner_clears_setuid_and_setgid(fs, wd, meta_cluster, mode):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    fs.chmod(p, mode | 0o666)
    other = meta_cluster.client(uid=4001)
    with other.open(p, "r+b") as f:
        f.write(b"more")
    assert st.S_IMODE(fs.stat(p).st_mode) == 0o777 and fs.stat(p).st_size == 4


def test_a_writer_not_the_owner_may_only_clear_setuid_and_setgid(fs, wd, meta_cluster):
    """What the kernel sends a FUSE file system when a non-owner writes a set-id file: a chmod that
    clears S_ISUID/S_ISGID, as the writer. Write permission allows exactly that."""
    p = f"{wd}/f"
    fs.write_file(p, b"x")
    other = meta_cluster.client(uid=4001)
    fs.chmod(p, 0o6755)                                   # no write permission for others
    expect_errno(errno.EPERM, other.chmod, p, 0o755)
    fs.chmod(p, 0o6777)
    expect_errno(errno.EPERM, other.chmod, p, 0o775)      # also drops a plain bit
    expect_errno(errno.EPERM, other.chmod, p, 0o7777)     # adds the sticky bit
    other.chmod(p, 0o2777)
    assert st.S_IMODE(fs.stat(p).st_mode) == 0o2777
    other.chmod(p, 0o777)
    assert st.S_IMODE(fs.stat(p).st_mode) == 0o777
    expect_errno(errno.EPERM, other.chmod, p, 0o4777)     # never sets one


def test_truncate_while_the_length_in_meta_lags_behind_a_writer(fs, wd):
    p = f"{wd}/f"
    with fs.open(p, "wb") as f:
        f.write(b"0123456789" * 10)                      # meta still says 0: nothing synced yet
        fs.truncate(p, 15)
        assert fs.stat(p).st_size == 15
    assert fs.read_file(p) == b"0123456789012345"[:15]


def test_in_place_overwrite_moves_mtime_at_fsync_and_at_close(fs, wd):
    p = f"{wd}/inplace"
    fs.write_file(p, b"a" * 5000)
    fs.utime(p, ns=(10**18, 10**18))
    with fs.open(p, "r+b") as f:                     # same length: only the writer knows it changed
        f.write(b"b" * 100)
        f.fsync()
        s = fs.stat(p)
        assert s.st_size == 5000 and s.st_mtime_ns > 10**18
    fs.utime(p, ns=(10**18, 10**18))
    with fs.open(p, "r+b") as f:
        f.seek(4000)
        f.write(b"c")
    s = fs.stat(p)
    assert s.st_size == 5000 and s.st_mtime_ns > 10**18 and s.st_ctime_ns > 10**18
    fs.utime(p, ns=(10**18, 10**18))
    with fs.open(p, "rb") as f:                      # a reader's close leaves the times alone
        f.read()
    assert fs.stat(p).st_mtime_ns == 10**18
