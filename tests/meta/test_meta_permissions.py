"""The permission model: owner/group/other bits with supplementary groups, X on every directory of
a walk, W|X to create/remove/rename, the sticky bit, setgid directories, root bypass, ownership rules."""
from __future__ import annotations

import errno
import os
import stat as st

from meta_util import expect_errno


def test_owner_group_other_bits_and_supplementary_groups(fs, wd, meta_cluster):
    p = f"{wd}/f"
    fs.write_file(p, b"secret")
    fs.chown(p, 1000, 500)
    owner = meta_cluster.client(uid=1000, gid=1000)
    member = meta_cluster.client(uid=1001, gid=1001, groups=(500,))
    other = meta_cluster.client(uid=1002, gid=1002)
    fs.chmod(p, 0o640)
    assert owner.read_file(p) == b"secret" and member.read_file(p) == b"secret"
    expect_errno(errno.EACCES, other.read_file, p)
    expect_errno(errno.EACCES, member.open, p, "r+b")
    fs.chmod(p, 0o604)                                  # group denied even though other may read
    expect_errno(errno.EACCES, member.read_file, p)
    assert other.read_file(p) == b"secret"
    fs.chmod(p, 0o000)
    expect_errno(errno.EACCES, owner.read_file, p)
    assert fs.read_file(p) == b"secret"                 # root bypasses mode bits
    assert not owner.access(p, os.R_OK) and fs.access(p, os.R_OK | os.W_OK)
    fs.chmod(p, 0o200)
    assert owner.access(p, os.W_OK) and not owner.access(p, os.R_OK)


def test_search_permission_on_every_directory_of_a_walk(fs, wd, meta_cluster):
    fs.makedirs(f"{wd}/a/b/c")
    fs.write_file(f"{wd}/a/b/c/f", b"x")
    user = meta_cluster.client(uid=1100)
    assert user.read_file(f"{wd}/a/b/c/f") == b"x"
    fs.chmod(f"{wd}/a/b", 0o754)                        # r but no x for others
    expect_errno(errno.EACCES, user.read_file, f"{wd}/a/b/c/f")
    expect_errno(errno.EACCES, user.stat, f"{wd}/a/b/c")
    assert user.listdir(f"{wd}/a/b") == ["c"]           # names need only R
    expect_errno(errno.EACCES, user.scandir, f"{wd}/a/b")   # inodes need X as well
    fs.chmod(f"{wd}/a/b", 0o711)
    expect_errno(errno.EACCES, user.listdir, f"{wd}/a/b")
    assert user.read_file(f"{wd}/a/b/c/f") == b"x"


def test_create_remove_rename_need_write_and_search_on_the_directory(fs, wd, meta_cluster):
    fs.mkdir(f"{wd}/d", 0o755)
    fs.mkdir(f"{wd}/mine", 0o777)
    fs.write_file(f"{wd}/d/f", b"")
    user = meta_cluster.client(uid=1200)
    expect_errno(errno.EACCES, user.write_file, f"{wd}/d/new", b"")
    expect_errno(errno.EACCES, user.mkdir, f"{wd}/d/sub")
    expect_errno(errno.EACCES, user.symlink, "x", f"{wd}/d/sl")
    expect_errno(errno.EACCES, user.remove, f"{wd}/d/f")
    expect_errno(errno.EACCES, user.rename, f"{wd}/d/f", f"{wd}/mine/f")
    expect_errno(errno.EACCES, user.link, f"{wd}/d/f", f"{wd}/d/g")
    user.link(f"{wd}/d/f", f"{wd}/mine/g")              # linking a file others own is allowed
    user.write_file(f"{wd}/mine/own", b"")
    expect_errno(errno.EACCES, user.rename, f"{wd}/mine/own", f"{wd}/d/own")
    s = user.stat(f"{wd}/mine/own")
    assert (s.st_uid, s.st_gid) == (1200, 1200)


def test_sticky_directory_protects_other_users_entries(fs, wd, meta_cluster):
    fs.mkdir(f"{wd}/tmp")
    fs.chmod(f"{wd}/tmp", 0o1777)
    alice = meta_cluster.client(uid=1301)
    bob = meta_cluster.client(uid=1302)
    alice.write_file(f"{wd}/tmp/a", b"")
    bob.write_file(f"{wd}/tmp/b", b"")
    expect_errno(errno.EPERM, bob.remove, f"{wd}/tmp/a")
    expect_errno(errno.EPERM, bob.rename, f"{wd}/tmp/a", f"{wd}/tmp/c")
    expect_errno(errno.EPERM, bob.rename, f"{wd}/tmp/b", f"{wd}/tmp/a")     # replacing alice's file
    alice.remove(f"{wd}/tmp/a")
    fs.remove(f"{wd}/tmp/b")                            # root may
    fs.chown(f"{wd}/tmp", 1303, 1303)
    bob.write_file(f"{wd}/tmp/b", b"")
    dir_owner = meta_cluster.client(uid=1303)
    dir_owner.remove(f"{wd}/tmp/b")                     # the directory's owner may


def test_setgid_directory_passes_its_group_on(fs, wd, meta_cluster):
    fs.mkdir(f"{wd}/shared")
    fs.chown(f"{wd}/shared", 0, 777)
    fs.chmod(f"{wd}/shared", 0o2777)
    user = meta_cluster.client(uid=1400, gid=1400)
    user.write_file(f"{wd}/shared/f", b"")
    user.mkdir(f"{wd}/shared/sub")
    assert fs.stat(f"{wd}/shared/f").st_gid == 777
    sub = fs.stat(f"{wd}/shared/sub")
    assert sub.st_gid == 777 and sub.st_mode & st.S_ISGID
    user.mkdir(f"{wd}/shared/sub/deeper")
    assert fs.stat(f"{wd}/shared/sub/deeper").st_gid == 777


def test_ownership_rules_of_chmod_chown_utime(fs, wd, meta_cluster):
    p = f"{wd}/f"
    fs.write_file(p, b"")
    fs.chown(p, 1500, 1500)
    owner = meta_cluster.client(uid=1500, gid=1500, groups=(60,))
    stranger = meta_cluster.client(uid=1501)
    owner.chmod(p, 0o600)
    expect_errno(errno.EPERM, stranger.chmod, p, 0o777)
    expect_errno(errno.EPERM, owner.chown, p, 1501, -1)             # only root gives files away
    owner.chown(p, -1, 60)                                          # to a group the owner is in
    expect_errno(errno.EPERM, owner.chown, p, -1, 61)
    expect_errno(errno.EPERM, stranger.utime, p, ns=(1, 1))         # explicit times: owner only
    expect_errno(errno.EACCES, stranger.utime, p)                   # "now" needs W
    fs.chmod(p, 0o666)
    stranger.utime(p)
    owner.chmod(p, 0o2755)                                          # gid 60 is owner's group: kept
    assert fs.stat(p).st_mode & st.S_ISGID
    fs.chown(p, 1500, 99)
    owner.chmod(p, 0o2755)                                          # not in group 99: S_ISGID dropped
    assert not fs.stat(p).st_mode & st.S_ISGID


def test_recursive_remove_needs_permission_on_the_whole_tree(fs, wd, meta_cluster):
    user = meta_cluster.client(uid=1600)
    user.makedirs(f"{wd}/t/a/b")
    user.write_file(f"{wd}/t/a/b/f", b"")
    fs.mkdir(f"{wd}/t/rootdir", 0o755)                  # a subdirectory the user cannot write
    expect_errno(errno.EACCES, user.rmtree, f"{wd}/t")
    fs.chmod(f"{wd}/t/rootdir", 0o777)
    user.rmtree(f"{wd}/t")
    assert fs.listdir(wd) == []


def test_length_and_time_updates_take_the_owner_a_writer_or_a_write_session(fs, wd, meta_cluster):
    from threefs.proto import meta_pb2 as mp

    p = f"{wd}/f"
    fs.write_file(p, b"x" * 10000)                       # past the inline limit: on storage
    fs.chmod(p, 0o644)
    ino = fs.stat(p).st_ino
    before = fs.stat(p)
    other = meta_cluster.client(uid=4001, gid=4001)

    def sync(client, **kw):
        m = client.aio.meta
        return client.run(m.call("Sync", mp.SyncReq(base=m.base(), inode=ino, **kw), mp.SyncRsp))

    hint = mp.VersionedLength(length=1 << 30, truncate_ver=0)
    for kw in ({"update_length": True, "length_hint": hint}, {"modified": True}, {"update_length": True},
               {"end_fresh": True}, {"session_id": os.urandom(16), "modified": True}):
        expect_errno(errno.EACCES, sync, other, **kw)
    m = other.aio.meta
    expect_errno(errno.EACCES, other.run, m.call("Close", mp.CloseReq(base=m.base(), inode=ino, modified=True,
                                                                       session_id=os.urandom(16)), mp.CloseRsp))
    assert sync(other).inode.length == 10000           # a sync that changes nothing needs no right
    after = fs.stat(p)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    fs.chmod(p, 0o666)
    f = other.open(p, "r+b")                             # a writer by mode at its open...
    fs.chmod(p, 0o644)                                   # ...keeps its sync and close when the mode changes
    f.seek(10000)
    f.write(b"tail")
    f.flush()
    f.fsync()
    f.write(b"more")
    f.close()
    assert fs.read_file(p) == b"x" * 10000 + b"tailmore"
    assert fs.stat(p).st_size == 10008
