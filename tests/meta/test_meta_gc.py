"""Deferred deletion: unlinked files go to the GC queue, their chunks are removed from storage
(never while a write session is open), recursive removes are O(1) and collected in the background."""
from __future__ import annotations

import errno
import time

from meta_util import CHUNK, expect_errno, wait_until
from threefs.common import placement
from threefs.proto import meta_pb2 as mp


def batch_stat(fs, *inodes: int) -> mp.BatchStatRsp:
    return fs.run(fs.aio.meta.call("BatchStat", mp.BatchStatReq(base=fs.aio.meta.base(), inodes=list(inodes)),
                                   mp.BatchStatRsp))


def gc_entries(fs) -> list[mp.DirEntry]:
    return list(fs.run(fs.aio.meta.call("GcList", mp.GcListReq(base=fs.aio.meta.base()), mp.GcListRsp)).entries)


def test_unlink_queues_the_inode_and_gc_removes_its_chunks(fs, wd, meta_cluster):
    p = f"{wd}/f"
    fs.write_file(p, b"q" * (5 * CHUNK + 7))
    ino = fs.stat(p).st_ino
    assert len(meta_cluster.chunks_of(ino)) == 6
    meta_cluster.call(meta_cluster.meta.gc.stop())
    try:
        fs.remove(p)
        expect_errno(errno.ENOENT, fs.stat, p)
        b = batch_stat(fs, ino)
        assert b.found[0] and b.inodes[0].nlink == 0          # still stat-able by id until collected
        [e] = [e for e in gc_entries(fs) if e.id == ino]
        assert e.name.startswith("S-") and e.gc_info.orig_path == p
    finally:
        meta_cluster.call(_restart_gc(meta_cluster.meta.gc))
    wait_until(lambda: not batch_stat(fs, ino).found[0], 30, "GC to delete the inode")
    assert meta_cluster.chunks_of(ino) == []


async def _restart_gc(gc) -> None:
    gc.start()


def test_gc_never_collects_a_file_open_for_writing(fs, wd, meta_cluster):
    p = f"{wd}/f"
    f = fs.open(p, "wb")
    f.write(b"w" * (2 * CHUNK))
    ino = f.inode.id
    fs.remove(p)
    meta_cluster.gc_drain(5)
    assert batch_stat(fs, ino).found[0] and len(meta_cluster.chunks_of(ino)) == 2
    f.write(b"still writing")                              # the unlinked file stays usable
    assert any(e.id == ino for e in gc_entries(fs))
    f.close()
    wait_until(lambda: not batch_stat(fs, ino).found[0], 30, "GC after the last writer closed")
    assert meta_cluster.chunks_of(ino) == []


def test_recursive_remove_is_o1_and_the_tree_is_collected(fs, wd, meta_cluster):
    inodes = []
    for d in range(4):
        fs.makedirs(f"{wd}/tree/d{d}/sub")
        for i in range(25):
            path = f"{wd}/tree/d{d}/sub/f{i}" if i % 2 else f"{wd}/tree/d{d}/f{i}"
            fs.write_file(path, b"t" * (100 + i))
            inodes.append(fs.stat(path).st_ino)
    fs.write_file(f"{wd}/keep", b"k")
    fs.link(f"{wd}/keep", f"{wd}/tree/d0/hardlink")         # survives: another link is outside
    dir_ino = fs.stat(f"{wd}/tree").st_ino
    t0 = time.perf_counter()
    fs.rmtree(f"{wd}/tree")
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"recursive remove took {elapsed:.3f}s"
    assert fs.listdir(wd) == ["keep"]
    wait_until(lambda: not any(batch_stat(fs, *inodes, dir_ino).found), 60, "GC of the removed tree")
    assert all(meta_cluster.chunks_of(i) == [] for i in inodes[:10])
    assert fs.read_file(f"{wd}/keep") == b"k" and fs.stat(f"{wd}/keep").st_nlink == 1


def test_orphaned_chunks_are_found(fs, wd, meta_cluster):
    fs.write_file(f"{wd}/live", b"l" * 10)
    ghost = 0x00FF_0000_0000_0001                            # an inode id that was never allocated
    storage = fs.aio.storage
    routing = fs.aio.mgmtd.routing
    chain = routing.table(1).chain_ids[0]
    fs.run(storage.write_chunk(chain, placement.chunk_id(ghost, 3), 0, b"leak", CHUNK))
    rsp = meta_cluster.orphans()
    assert {(o.inode, placement.parse_chunk_id(o.chunk_id)[2]) for o in rsp.chunks} == {(ghost, 3)}
    assert rsp.scanned_targets == 3 and rsp.scanned_chunks >= 2 and not rsp.unreachable_targets
    begin, end = placement.chunk_range(ghost)
    fs.run(storage.remove_chunks(chain, begin, end))
    assert meta_cluster.orphans().chunks == []
