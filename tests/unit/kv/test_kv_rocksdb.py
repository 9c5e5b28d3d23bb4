"""RocksKV specifics: group commit, persistence, the directory lock, durability under SIGKILL."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

import threefs
from threefs.common.errors import Code, FSError
from threefs.kv.engine import TransactionConflict, open_engine
from threefs.kv.memory import MemoryKV
from threefs.kv.rocksdb import DatabaseLockedError, RocksKV

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]

REPO_ROOT = str(Path(threefs.__file__).resolve().parent.parent)


async def test_group_commit_shares_synced_batches(rocks: RocksKV) -> None:
    async def commit(i: int) -> None:
        txn = rocks.transaction()
        txn.set(b"key%04d" % i, b"value%d" % i)
        await txn.commit()

    await asyncio.wait_for(asyncio.gather(*(commit(i) for i in range(200))), 30)
    assert rocks.stats["commits"] == 200
    assert rocks.stats["batches"] < rocks.stats["commits"] // 10
    txn = rocks.transaction()
    assert len(await txn.get_range(b"key", b"kez")) == 200
    txn.cancel()


async def test_commit_returns_after_its_batch_is_applied(rocks: RocksKV) -> None:
    txn = rocks.transaction()
    txn.set(b"k", b"v")
    await txn.commit()
    assert rocks.tracker.applied == rocks.tracker.version
    after = rocks.transaction()
    assert after.read_version == rocks.tracker.version
    assert await after.get(b"k") == b"v"
    after.cancel()


async def test_inflight_batch_is_invisible_and_later_commits_share_the_next_batch(
    rocks: RocksKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    writing, release, queued = asyncio.Event(), threading.Event(), asyncio.Event()
    real_write, real_enqueue = rocks._write, rocks.enqueue

    def held_write(batch: list) -> None:
        loop.call_soon_threadsafe(writing.set)
        assert release.wait(30)
        real_write(batch)

    async def counted_enqueue(item) -> None:
        if len(rocks._queue) == 9:
            queued.set()
        await real_enqueue(item)

    monkeypatch.setattr(rocks, "_write", held_write)
    first, pair = rocks.transaction(), rocks.transaction()
    first.set(b"k", b"1")
    pair.set(b"j", b"1")          # two commits: a batch for the commit thread (a lone one is written inline)
    first_commit = asyncio.create_task(first.commit())
    pair_commit = asyncio.create_task(pair.commit())
    await asyncio.wait_for(writing.wait(), 10)
    reader = rocks.transaction()  # the batch is being written: not yet visible
    assert reader.read_version < rocks.tracker.version
    assert await reader.get(b"k") is None
    monkeypatch.setattr(rocks, "enqueue", counted_enqueue)
    later = []
    for i in range(10):
        txn = rocks.transaction()
        txn.set(b"later%d" % i, b"v")
        later.append(asyncio.create_task(txn.commit()))
    await asyncio.wait_for(queued.wait(), 10)
    assert not first_commit.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(first_commit, pair_commit, *later), 30)
    assert rocks.stats == {"commits": 12, "batches": 2}
    reader.set(b"other", b"x")
    with pytest.raises(TransactionConflict):  # it read k before the in-flight commit applied
        await reader.commit()


async def test_range_scans_read_their_view_past_tombstones_and_newer_writes(
    rocks: RocksKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan that no newer commit touched reads a fresh bounded iterator (not walking the
    tombstones of deleted rows past its end); one that a newer commit touched, even a commit
    written to the database but not yet applied, still reads the transaction's own view."""
    txn = rocks.transaction()
    txn.set(b"a/1", b"1")
    for i in range(3000):
        txn.set(b"s/%06d" % i, b"x")
    await txn.commit()
    txn = rocks.transaction()
    for i in range(3000):
        txn.clear(b"s/%06d" % i)              # point tombstones past every scanned range below
    txn.set(b"z", b"live")
    await txn.commit()
    bounded = []
    real_bounded = rocks.bounded_iter
    monkeypatch.setattr(rocks, "bounded_iter", lambda b, e: bounded.append((b, e)) or real_bounded(b, e))

    loop = asyncio.get_running_loop()
    written, release = asyncio.Event(), threading.Event()
    real_write = rocks._write

    def write_then_hold(batch: list) -> None:
        real_write(batch)                       # in the database, not yet applied
        loop.call_soon_threadsafe(written.set)
        assert release.wait(30)

    reader = rocks.transaction()
    monkeypatch.setattr(rocks, "_write", write_then_hold)
    w1, w2 = rocks.transaction(), rocks.transaction()
    w1.clear(b"a/1")
    w1.set(b"a/2", b"2")
    w2.set(b"c/1", b"c")                        # two commits: a batch for the commit thread
    commits = asyncio.gather(w1.commit(), w2.commit())
    await asyncio.wait_for(written.wait(), 10)
    assert await reader.get_range(b"a/", b"a0") == [(b"a/1", b"1")]
    assert await reader.get_range(b"c/", b"c0", reverse=True) == []
    assert bounded == []                        # both ranges were touched after the reader's view
    assert await reader.get_range(b"b/", b"b0") == []
    assert await reader.get_range(b"s/", b"s0", limit=1) == []
    assert bounded == [(b"b/", b"b0"), (b"s/", b"s0")]
    release.set()
    await asyncio.wait_for(commits, 10)
    bounded.clear()
    after = rocks.transaction()
    assert await after.get_range(b"a/", b"a0") == [(b"a/2", b"2")]
    assert await after.get_range(b"a", b"zz", reverse=True, limit=2) == [(b"z", b"live"), (b"c/1", b"c")]
    assert bounded == [(b"a/", b"a0"), (b"a", b"zz")]
    reader.cancel()
    after.cancel()


async def test_process_durable_commit_is_written_at_once_and_synced_by_the_next_durable_one(rocks: RocksKV) -> None:
    txn = rocks.transaction()
    txn.durable = False
    txn.set(b"k", b"1")
    await txn.commit()
    assert rocks._writer is None and rocks._unsynced          # no batch, no fsync: written from the loop
    reader = rocks.transaction()
    assert await reader.get(b"k") == b"1"
    reader.cancel()
    noop = rocks.transaction()       # a durable commit without writes still vouches for the earlier one
    await noop.commit()
    assert not rocks._unsynced
    txn = rocks.transaction()
    txn.durable = False
    txn.set(b"k", b"2")
    await txn.commit()
    txn = rocks.transaction()
    txn.set(b"j", b"1")
    await txn.commit()
    assert not rocks._unsynced                                  # the synced batch covered the WAL before it
    assert rocks.stats == {"commits": 3, "batches": 3}


async def test_process_durable_commit_waits_behind_a_batch_in_flight(
    rocks: RocksKV, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    writing, release = asyncio.Event(), threading.Event()
    real_write = rocks._write

    def held_write(batch: list) -> None:
        loop.call_soon_threadsafe(writing.set)
        assert release.wait(30)
        real_write(batch)

    queued = asyncio.Event()
    real_enqueue = rocks.enqueue

    async def noted_enqueue(item) -> None:
        queued.set()
        await real_enqueue(item)

    monkeypatch.setattr(rocks, "_write", held_write)
    first, pair = rocks.transaction(), rocks.transaction()
    first.set(b"a", b"1")
    pair.set(b"a2", b"1")         # two commits: a batch for the commit thread (a lone one is written inline)
    first_commit = asyncio.create_task(first.commit())
    pair_commit = asyncio.create_task(pair.commit())
    await asyncio.wait_for(writing.wait(), 10)
    monkeypatch.setattr(rocks, "enqueue", noted_enqueue)
    second = rocks.transaction()
    second.durable = False
    second.set(b"b", b"1")
    second_commit = asyncio.create_task(second.commit())
    await asyncio.wait_for(queued.wait(), 10)   # written inline it would be applied before the in-flight version
    assert not second_commit.done()
    release.set()
    await asyncio.wait_for(asyncio.gather(first_commit, pair_commit, second_commit), 30)
    assert rocks.tracker.applied == rocks.tracker.version
    txn = rocks.transaction()
    assert await txn.get_range(b"", b"\xff") == [(b"a", b"1"), (b"a2", b"1"), (b"b", b"1")]
    txn.cancel()


async def test_reopen_persists(tmp_path: Path) -> None:
    engine = RocksKV(tmp_path / "db")
    txn = engine.transaction()
    txn.set(b"a", b"1")
    txn.set(b"b", b"2")
    await txn.commit()
    txn = engine.transaction()
    txn.clear_range(b"b", b"c")
    await txn.commit()
    held = engine.transaction()  # a live transaction must not keep the database open
    assert await held.get_range(b"", b"\xff") == [(b"a", b"1")]
    await engine.close()
    with pytest.raises(FSError):
        await held.get(b"a")
    engine = RocksKV(tmp_path / "db")
    txn = engine.transaction()
    assert await txn.get_range(b"", b"\xff") == [(b"a", b"1")]
    txn.cancel()
    await engine.close()


async def test_locked_path_names_the_path(rocks: RocksKV) -> None:
    with pytest.raises(DatabaseLockedError) as info:
        RocksKV(rocks.path)
    assert rocks.path in str(info.value)
    assert info.value.code == Code.BUSY


async def test_open_engine_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = open_engine("memory://")
    assert isinstance(memory, MemoryKV)
    await memory.close()
    absolute = open_engine(f"rocksdb://{tmp_path}/abs")
    assert isinstance(absolute, RocksKV) and absolute.path == f"{tmp_path}/abs"
    await absolute.close()
    monkeypatch.chdir(tmp_path)
    relative = open_engine("rocksdb://rel/db")
    assert isinstance(relative, RocksKV) and relative.path == "rel/db"
    await relative.close()
    assert (tmp_path / "rel" / "db").is_dir()
    for bad in ("etcd://x", "rocksdb://", "memory:///x", "/plain/path", ""):
        with pytest.raises(ValueError):
            open_engine(bad)


CHILD = """
import asyncio, sys
from threefs.kv.rocksdb import RocksKV

async def main(path, durable):
    engine = RocksKV(path)
    print("open", flush=True)
    async def worker(w):
        for i in range(w, 10**9, 8):
            txn = engine.transaction()
            txn.durable = durable == "1"
            txn.set(b"k%09d" % i, b"v%d" % i)
            await txn.commit()
            print(i, flush=True)
    await asyncio.gather(*(worker(w) for w in range(8)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("durable", [True, False], ids=["durable", "process-durable"])
async def test_acknowledged_commits_survive_sigkill(tmp_path: Path, durable: bool) -> None:
    """Durable and process-durable (unsynced WAL) commits alike survive SIGKILL of the process."""
    path = str(tmp_path / "db")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, path, "1" if durable else "0", stdout=asyncio.subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    acked: set[int] = set()
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"open\n"
        with pytest.raises(DatabaseLockedError):  # the lock holds across processes
            RocksKV(path)
        while len(acked) < 300:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line.endswith(b"\n"), "child exited early"
            acked.add(int(line))
    finally:
        proc.send_signal(signal.SIGKILL)
    rest = await asyncio.wait_for(proc.stdout.read(), 30)  # acks printed before the kill count too
    acked.update(int(line) for line in rest.split(b"\n")[:-1])
    assert await asyncio.wait_for(proc.wait(), 30) == -signal.SIGKILL
    engine = RocksKV(path)
    try:
        txn = engine.transaction()
        stored = dict(await txn.get_range(b"k", b"l"))
        missing = [i for i in acked if stored.get(b"k%09d" % i) != b"v%d" % i]
        assert not missing, f"{len(missing)} acknowledged commits lost, e.g. {missing[:5]}"
        txn.cancel()
    finally:
        await engine.close()


async def test_durable_batches_fsync_every_live_wal_file_without_the_gil(rocks: RocksKV, monkeypatch) -> None:
    """A durable batch returns only after the WAL file that holds it was fsynced through os.fsync
    (which releases the GIL, unlike rocksdict's synced write); after rocksdb switches to a new WAL
    (a memtable flush), the new file and the directory are synced too."""
    from threefs.common import wal_sync
    synced: list[tuple[int, int]] = []
    real = os.fsync

    def spy(fd: int) -> None:
        st = os.fstat(fd)
        synced.append((st.st_dev, st.st_ino))
        real(fd)

    monkeypatch.setattr(wal_sync.os, "fsync", spy)
    monkeypatch.setattr(wal_sync.os, "fdatasync", spy)

    def live_wals() -> set[tuple[int, int]]:
        out = set()
        for n in os.listdir(rocks.path):
            if n.endswith(".log") and n[:-4].isdigit():
                st = os.stat(os.path.join(rocks.path, n))
                out.add((st.st_dev, st.st_ino))
        return out

    for round_ in range(2):
        before = len(synced)
        t1, t2 = rocks.transaction(), rocks.transaction()      # two at once: a batch, via the commit thread
        t1.set(b"w%d" % round_, b"x" * 1000)
        t2.set(b"v%d" % round_, b"x" * 1000)
        await asyncio.gather(t1.commit(), t2.commit())
        assert live_wals() and live_wals() <= set(synced[before:])
        rocks._db.flush()                   # memtable to an SST: rocksdb starts a new WAL file
    dir_st = os.stat(rocks.path)
    assert (dir_st.st_dev, dir_st.st_ino) in synced            # the new WAL's directory entry


async def test_a_lone_durable_commit_is_written_from_the_loop(rocks: RocksKV, monkeypatch: pytest.MonkeyPatch) -> None:
    """No other commit waiting: no trip through the commit thread (its round trip cost twice the fsync)."""
    threads: list[str] = []
    real_write, real_synced = rocks._write, rocks._write_synced

    def noted_write(batch: list) -> None:
        threads.append(threading.current_thread().name)
        real_write(batch)

    def noted_synced(batch: list) -> None:
        threads.append("synced " + threading.current_thread().name)
        real_synced(batch)

    monkeypatch.setattr(rocks, "_write", noted_write)
    monkeypatch.setattr(rocks, "_write_synced", noted_synced)
    txn = rocks.transaction()
    txn.set(b"k", b"v")
    await txn.commit()
    t1, t2 = rocks.transaction(), rocks.transaction()
    t1.set(b"a", b"1")
    t2.set(b"b", b"1")
    await asyncio.gather(t1.commit(), t2.commit())
    assert threads == ["synced " + threading.main_thread().name, "rocksdb-commit_0"]
    assert not rocks._unsynced


async def test_a_lone_durable_commit_is_a_synced_rocksdb_write(rocks: RocksKV) -> None:
    """The lone commit's write asks rocksdb to sync the WAL (which covers the unsynced commit before it)."""
    real = rocks._db
    seen: list[bool] = []

    class Spy:
        def write(self, batch, opts) -> None:
            seen.append(opts.sync)
            real.write(batch, opts)

        def __getattr__(self, name):
            return getattr(real, name)

    rocks._db = Spy()
    try:
        quick = rocks.transaction()
        quick.durable = False
        quick.set(b"q", b"1")
        await quick.commit()
        assert rocks._unsynced and seen == [False]
        txn = rocks.transaction()
        txn.set(b"k", b"v")
        await txn.commit()
        assert seen == [False, True] and not rocks._unsynced
    finally:
        rocks._db = real
