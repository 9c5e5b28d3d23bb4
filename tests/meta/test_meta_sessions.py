"""Write sessions and file length: session rows for write opens only, length hints, precise length
on close/fsync, VersionedLength rules, and pruning of sessions whose client vanished."""
from __future__ import annotations

import os

from meta_util import CHUNK, TEST_CONFIG, wait_until
from threefs.proto import meta_pb2 as mp


def sessions(fs, path: str) -> list[mp.FileSession]:
    ino = fs.stat(path).st_ino
    rsp = fs.run(fs.aio.meta.call("ListSessions", mp.ListSessionsReq(base=fs.aio.meta.base(), inode=ino),
                                  mp.ListSessionsRsp))
    return list(rsp.sessions)


def test_write_opens_hold_a_session_until_close_and_reads_hold_none(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"x")
    # a small new file's close ends its session in the next batch (its length went to meta with it)
    wait_until(lambda: sessions(fs, p) == [], 10, "the session of a small file's close to go")
    with fs.open(p, "rb"):
        assert sessions(fs, p) == []
    f = fs.open(p, "r+b")
    g = fs.open(p, "ab")
    rows = sessions(fs, p)
    assert len(rows) == 2 and {r.client_id for r in rows} == {fs.aio.meta.client_id}
    f.close()
    assert len(sessions(fs, p)) == 1
    g.close()
    assert sessions(fs, p) == []


def test_close_and_fsync_record_the_precise_length(fs, wd, meta_cluster):
    p = f"{wd}/f"
    other = meta_cluster.client(uid=0)
    f = fs.open(p, "wb")
    f.write(b"a" * (CHUNK + 100))
    f.fsync()
    assert other.stat(p).st_size == CHUNK + 100
    f.write(b"b" * 50)
    f.close()
    assert other.stat(p).st_size == CHUNK + 150


def test_writers_send_length_hints_while_open(fs, wd, meta_cluster):
    p = f"{wd}/f"
    other = meta_cluster.client(uid=0)
    big = TEST_CONFIG.inline_max + 1         # a smaller new file waits in memory until close (meta.inline)
    with fs.open(p, "wb") as f:
        f.write(b"z" * big)
        wait_until(lambda: other.stat(p).st_size == big, 20, "the length hint to reach meta")
        f.write(b"z" * 1000)
        wait_until(lambda: other.stat(p).st_size == big + 1000, 20, "the second hint")


def test_hints_from_an_older_truncate_epoch_are_ignored(fs, wd):
    p = f"{wd}/f"
    fs.write_file(p, b"x" * 100)
    inode = fs.stat(p).inode
    fs.truncate(p, 10)
    assert fs.stat(p).inode.truncate_ver == inode.truncate_ver + 1

    def sync(length: int, ver: int) -> mp.Inode:
        req = mp.SyncReq(base=fs.aio.meta.base(), inode=inode.id, update_length=True,
                         length_hint=mp.VersionedLength(length=length, truncate_ver=ver))
        return fs.run(fs.aio.meta.call("Sync", req, mp.SyncRsp)).inode

    assert sync(100, inode.truncate_ver).length == 10               # stale epoch: ignored
    assert sync(5, inode.truncate_ver + 1).length == 10             # shorter hint: ignored
    assert sync(60, inode.truncate_ver + 1).length == 60            # current epoch, longer: adopted
    req = mp.SyncReq(base=fs.aio.meta.base(), inode=inode.id, update_length=True)   # precise
    rsp = fs.run(fs.aio.meta.call("Sync", req, mp.SyncRsp)).inode
    assert rsp.length == 10 and rsp.truncate_ver == inode.truncate_ver + 2         # shrank: new epoch


def test_sessions_of_vanished_clients_are_pruned(fs, wd, meta_cluster):
    live = meta_cluster.client(uid=0)
    gone = meta_cluster.client(uid=0)
    lf = live.open(f"{wd}/live", "wb")
    gf = gone.open(f"{wd}/gone", "wb")
    gone.run(_stop_renewing(gone.aio))              # the client stops renewing, as if killed
    assert len(sessions(fs, f"{wd}/gone")) == 1
    wait_until(lambda: not sessions(fs, f"{wd}/gone"), 10 * TEST_CONFIG.client_timeout,
               "the vanished client's session to be pruned")
    assert len(sessions(fs, f"{wd}/live")) == 1    # a renewing client keeps its session
    lf.close()
    gf.close()                                      # closing a pruned session is harmless
    assert sessions(fs, f"{wd}/live") == []


async def _stop_renewing(aio) -> None:
    aio._lease_task.cancel()


def test_prune_session_rpc_and_client_close_drop_sessions(fs, wd, meta_cluster):
    c = meta_cluster.client(uid=0)
    f = c.open(f"{wd}/a", "wb")
    af = f.async_file
    req = mp.PruneSessionReq(base=c.aio.meta.base(),
                             sessions=[mp.FileSession(inode=af.inode.id, session_id=af.session_id)])
    assert c.run(c.aio.meta.call("PruneSession", req, mp.PruneSessionRsp)).pruned == 1
    assert sessions(fs, f"{wd}/a") == []
    f.close()
    c.open(f"{wd}/b", "wb")                         # left open
    c.run(c.aio._end_writers())                     # what AsyncClient.close does
    assert sessions(fs, f"{wd}/b") == []


def test_write_open_without_a_session_id_is_refused(fs, wd):
    req = mp.CreateReq(base=fs.aio.meta.base(), path=mp.PathAt(path=f"{wd}/x"), flags=os.O_CREAT | os.O_WRONLY,
                       perm=0o644)
    try:
        fs.run(fs.aio.meta.call("Create", req, mp.CreateRsp))
        raise AssertionError("accepted")
    except OSError as e:
        assert e.errno == 22


def test_creates_commit_without_fsync_and_a_sync_makes_them_crash_proof(fs, wd, meta_cluster, monkeypatch):
    """DESIGN §8: a create need only survive SIGKILL (unsynced WAL); sync/close/fsyncdir make it crash-proof."""
    kv = meta_cluster.kv
    if not hasattr(kv, "write_now"):
        return                                  # engines that sync every commit have nothing to check
    inline: list[bool] = []
    real = kv.write_now

    def spy(*args):
        inline.append(real(*args))
        return inline[-1]

    monkeypatch.setattr(kv, "write_now", spy)
    fs.mknod(f"{wd}/f")
    assert inline, "the create went through the synced group commit"
    monkeypatch.setattr(kv, "write_now", real)
    d = fs.stat(wd).st_ino
    fs.run(fs.aio.meta.call("Sync", mp.SyncReq(base=fs.aio.meta.base(), inode=d), mp.SyncRsp))  # fsyncdir
    assert not kv._unsynced
