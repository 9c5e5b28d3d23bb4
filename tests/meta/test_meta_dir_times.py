"""A directory's mtime and ctime move when an entry is added, removed or renamed (a blind write to a
key of their own, so creates in one directory never conflict); utimes on the directory wins."""
from __future__ import annotations

import asyncio
import time

from threefs.kv import keys


def _times(fs, path: str) -> tuple[int, int]:
    s = fs.stat(path)
    return s.st_mtime_ns, s.st_ctime_ns


def _moves(fs, path: str, fn) -> bool:
    before = _times(fs, path)
    fn()
    after = _times(fs, path)
    return after[0] > before[0] and after[1] > before[1]


def test_entry_changes_move_the_directory_times(fs, wd, meta_cluster):
    a, b = f"{wd}/a", f"{wd}/b"
    fs.mkdir(a)
    fs.mkdir(b)
    assert _moves(fs, a, lambda: fs.write_file(f"{a}/f", b"x"))            # create
    assert _moves(fs, a, lambda: fs.mkdir(f"{a}/sub"))                     # mkdir
    assert _moves(fs, a, lambda: fs.symlink("f", f"{a}/ln"))               # symlink
    assert _moves(fs, a, lambda: fs.link(f"{a}/f", f"{a}/f2"))             # link
    assert _moves(fs, a, lambda: fs.remove(f"{a}/f2"))                     # unlink
    assert _moves(fs, a, lambda: fs.rmdir(f"{a}/sub"))                     # rmdir
    before_b = _times(fs, b)
    assert _moves(fs, a, lambda: fs.rename(f"{a}/f", f"{b}/f"))            # rename out of a...
    assert _times(fs, b)[0] > before_b[0]                                  # ...and into b
    same = _times(fs, a)
    fs.write_file(f"{b}/f", b"rewritten")                                  # no entry change in a or b
    fs.chmod(f"{b}/f", 0o600)
    assert _times(fs, a) == same
    fs.utime(a, ns=(10**18, 10**18))                                       # explicit times win (tar, rsync)
    assert fs.stat(a).st_mtime_ns == 10**18
    assert _moves(fs, a, lambda: fs.write_file(f"{a}/later", b""))         # ...until the next change
    assert not meta_cluster.fsck().errors


def test_listings_show_the_moved_times(fs, wd):
    d = f"{wd}/d"
    fs.mkdir(d)
    fs.utime(d, ns=(10**18, 10**18))
    fs.write_file(f"{d}/x", b"")
    mtime = fs.stat(d).st_mtime_ns
    assert mtime > 10**18
    listed = {e.name: inode for e, inode in fs.run(fs.aio.scandir(wd))}
    assert listed["d"].mtime_ns == mtime


def test_creates_in_one_directory_leave_its_inode_record_alone(fs, wd, meta_cluster):
    """Creates write the directory's time blindly, never its inode: concurrent ones cannot conflict on it."""
    d = f"{wd}/many"
    fs.mkdir(d)
    ino = fs.stat(d).st_ino
    kv = meta_cluster.meta.ctx.kv

    async def raw_inode() -> bytes:
        txn = kv.transaction()
        try:
            return await txn.get(keys.inode_key(ino))
        finally:
            txn.cancel()

    before = meta_cluster.call(raw_inode())

    async def create_all():
        await asyncio.gather(*(fs.aio.write_file(f"{d}/f{i}", b"") for i in range(40)))

    started = time.time_ns()
    fs.run(create_all())
    ended = time.time_ns()
    assert len(fs.listdir(d)) == 40
    assert meta_cluster.call(raw_inode()) == before
    assert started <= fs.stat(d).st_mtime_ns <= ended    # one of the creates' times (the last commit's)
