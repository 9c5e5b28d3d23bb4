"""Against the real dev cluster (separate processes): deleting a 1 GiB file, the admin commands
(set-layout, fsck, find-orphaned-chunks, gc-list/gc-run, session-list, user-*) and `rm -r`."""
from __future__ import annotations

import asyncio
import json
import os
import time

from meta_race import race
from meta_util import threefs_cli, wait_until
from threefs.client.fs import AsyncClient
from threefs.common import placement
from threefs.proto import storage_pb2 as spb

GIB = 1 << 30
BLOCK = 64 << 20


def cli_json(cluster, *args: str):
    return json.loads(threefs_cli(*args, "--json", "--mgmtd", cluster.mgmtd_address).stdout)


async def write_big(mgmtd: str, path: str, size: int) -> None:
    """Write `size` bytes with large concurrent writes (each split per chunk by the client)."""
    block = os.urandom(BLOCK)
    async with AsyncClient(mgmtd) as c:
        f = await c.open(path, "wb")
        sem = asyncio.Semaphore(4)

        async def one(off: int) -> None:
            async with sem:
                await f.pwrite(block, off)

        try:
            await asyncio.gather(*(one(off) for off in range(0, size, BLOCK)))
        finally:
            await f.close()


async def chunks_on_targets(mgmtd: str, inode: int) -> dict[int, int]:
    """target id -> number of chunks of `inode` it holds."""
    async with AsyncClient(mgmtd) as c:
        routing = await c.mgmtd.refresh(force=True)
        out = {}
        for t in routing.targets.values():
            if not t.chain_id:
                continue
            rsp, _ = await c.rpc.call(routing.target_address(t.target_id), "Storage.GetAllChunkMeta",
                                      spb.GetAllChunkMetaReq(target_id=t.target_id), spb.GetAllChunkMetaRsp,
                                      timeout=60)
            out[t.target_id] = sum(placement.parse_chunk_id(m.chunk_id)[0] == inode for m in rsp.metas)
        return out


async def replicas_holding(mgmtd: str, inode, chunks: int) -> int:
    """How many (chunk, replica) pairs of the file's chunks query-chunk still finds."""
    from threefs.client.file_io import FileIO
    async with AsyncClient(mgmtd) as c:
        fio = FileIO(inode, c.mgmtd, c.storage)
        found = 0
        for i in range(chunks):
            chain = c.mgmtd.routing.chain(fio.chain_of(i))
            for t in chain.targets:
                found += (await c.storage.query_chunk(t.target_id, placement.chunk_id(inode.id, i))).found
        return found


def test_deleting_a_1gib_file_is_instant_and_gc_clears_every_replica(cluster, client, workdir):
    threefs_cli("admin", "set-layout", workdir, "--chunk-size", "4M", "--mgmtd", cluster.mgmtd_address)
    path = f"{workdir}/big"
    asyncio.run(write_big(cluster.mgmtd_address, path, GIB))
    st = client.stat(path)
    assert st.st_size == GIB and st.inode.layout.chunk_size == 4 << 20
    chunks = GIB // (4 << 20)
    before = cli_json(cluster, "admin", "query-chunk", path, str(chunks - 1))
    assert [r["found"] for r in before["replicas"]] == [True, True, True]
    assert sum(asyncio.run(chunks_on_targets(cluster.mgmtd_address, st.st_ino)).values()) == 3 * chunks
    t0 = time.perf_counter()
    client.remove(path)
    elapsed = time.perf_counter() - t0
    print(f"unlink of a 1 GiB file returned in {elapsed * 1000:.1f} ms")
    assert elapsed < 0.5, f"unlink took {elapsed:.3f}s"
    wait_until(lambda: sum(asyncio.run(chunks_on_targets(cluster.mgmtd_address, st.st_ino)).values()) == 0,
               120, "GC to remove every chunk", interval=0.5)
    assert asyncio.run(replicas_holding(cluster.mgmtd_address, st.inode, chunks)) == 0
    gc = cli_json(cluster, "admin", "gc-list")
    assert all(e["inode"] != st.st_ino for e in gc["entries"])


def test_admin_commands_and_rm_r_on_the_dev_cluster(cluster, client, workdir):
    m = cluster.mgmtd_address
    client.makedirs(f"{workdir}/tree/a/b")
    for i in range(20):
        client.write_file(f"{workdir}/tree/a/b/f{i}", b"x" * (70 << 10))
    inodes = {client.stat(f"{workdir}/tree/a/b/f{i}").st_ino for i in range(20)}
    t0 = time.perf_counter()
    threefs_cli("rm", "-r", f"{workdir}/tree", "--mgmtd", m)
    assert time.perf_counter() - t0 < 30 and client.listdir(workdir) == []
    counts = asyncio.run(race(m, workdir, 2.0, tasks=8))
    assert sum(v for k, v in counts.items() if k != "failed") > 20, counts
    run = cli_json(cluster, "admin", "gc-run")
    assert run["collected"] >= 0
    wait_until(lambda: not any(e["inode"] in inodes for e in cli_json(cluster, "admin", "gc-list")["entries"]),
               60, "GC of the removed tree")
    wait_until(lambda: cli_json(cluster, "admin", "fsck", "--no-chunks")["gc_pending"] == 0, 60, "an empty GC queue")
    report = cli_json(cluster, "admin", "fsck")                 # namespace and leaked chunks
    assert report["errors"] == [] and report["orphaned_chunks"] == 0 and report["chunks_scanned"] > 0
    orphans = cli_json(cluster, "admin", "find-orphaned-chunks")
    assert orphans["orphaned"] == [] and not orphans["unreachable_targets"]
    sessions = cli_json(cluster, "admin", "session-list")
    assert isinstance(sessions, list)
    with client.open(f"{workdir}/open", "wb"):
        listed = cli_json(cluster, "admin", "session-list", f"{workdir}/open")
        assert len(listed) == 1 and listed[0]["host"]
    bad = threefs_cli("admin", "set-layout", workdir, "--chunk-size", "3000", "--mgmtd", m, check=False)
    assert bad.returncode == 1 and "power of two" in bad.stderr


def test_user_commands(cluster):
    m = cluster.mgmtd_address
    admin = cli_json(cluster, "admin", "user-add", "0", "root", "--root", "--admin")
    token = admin["token"]
    denied = threefs_cli("admin", "user-add", "1000", "alice", "--mgmtd", m, check=False)
    assert denied.returncode == 1 and "AUTH_FAILED" in denied.stderr
    alice = threefs_cli("admin", "user-add", "1000", "alice", "--groups", "5,6", "--token", token, "--mgmtd", m)
    alice_token = alice.stdout.strip()
    users = cli_json(cluster, "admin", "user-list", "--token", token)
    assert [(u["uid"], u["name"], u["token"]) for u in users] == [(0, "root", "***"), (1000, "alice", "***")]
    assert users[1]["groups"] == [5, 6]
    new = threefs_cli("admin", "user-set-token", "1000", "--token", token, "--mgmtd", m).stdout.strip()
    assert new and new != alice_token
    shown = cli_json(cluster, "admin", "user-list", "--show-tokens", "--token", token)
    assert shown[1]["token"] == new
    threefs_cli("admin", "user-remove", "1000", "--token", token, "--mgmtd", m)
    assert [u["uid"] for u in cli_json(cluster, "admin", "user-list", "--token", token)] == [0]
