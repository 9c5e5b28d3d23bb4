"""CRAQ on real storage processes: replica agreement, committed-only reads, chain-version fencing,
head-only writes, end-to-end checksums (corrupt replicas are detected, never returned)."""
from __future__ import annotations

import asyncio
import errno
import os
import threading

import pytest
from crc32c import crc32c

from itest_util import CHUNK, chunk_data_path, chunk_location, flip_byte, query_chunk_cli, rand_bytes
from page_cache_util import evict
from threefs.client.fs import AsyncClient, Client
from threefs.common.errors import Code, FSError
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import storage_pb2 as spb


def replicas(client, chain_id: int) -> list[int]:
    return [t.target_id for t in client.aio.mgmtd.routing.chain(chain_id).targets]


def query(client, target_id: int, chunk_id: bytes) -> spb.QueryChunkRsp:
    return client._runner.run(client.aio.storage.query_chunk(target_id, chunk_id))


# ---- replica agreement ---------------------------------------------------------------------------

def test_replicas_agree_on_versions_size_and_checksum(cluster, client, workdir):
    path = f"{workdir}/agree"
    n_chunks = 5
    data = bytearray(rand_bytes(n_chunks * CHUNK - 1000, 21))     # last chunk partial
    with client.open(path, "wb") as f:
        f.write(data)
        for k in range(2):                                        # two more updates of chunk 0
            patch = rand_bytes(777, 30 + k)
            f.pwrite(patch, 100 + k * 5000)
            data[100 + k * 5000:100 + k * 5000 + 777] = patch
    assert client.read_file(path) == bytes(data)

    for index in range(n_chunks):
        chain, cid = chunk_location(client, path, index)
        expect = bytes(data[index * CHUNK:(index + 1) * CHUNK])
        metas = []
        for tid in replicas(client, chain):
            rsp = query(client, tid, cid)
            assert rsp.found, f"chunk {index} missing on target {tid}"
            metas.append(rsp.meta)
        for m in metas:
            assert m.commit_ver == m.update_ver, f"chunk {index}: pending version left on target {m.target_id}"
            assert m.size == len(expect)
            assert m.checksum == crc32c(expect)
        assert len({(m.commit_ver, m.size, m.checksum) for m in metas}) == 1
        assert metas[0].commit_ver == (3 if index == 0 else 1)   # one version per update

    # the admin CLI reports the same thing
    for index in (0, n_chunks - 1):
        out = query_chunk_cli(cluster, path, index)
        chain, cid = chunk_location(client, path, index)
        assert out["chunk_id"] == cid.hex() and out["chain_id"] == chain and out["index"] == index
        expect = bytes(data[index * CHUNK:(index + 1) * CHUNK])
        reps = out["replicas"]
        assert [r["target_id"] for r in reps] == replicas(client, chain)
        for r in reps:
            assert r["found"] and r["public"] == "SERVING"
            assert r["commit_ver"] == r["update_ver"] == (3 if index == 0 else 1)
            assert r["size"] == len(expect)
            assert int(r["checksum"], 16) == crc32c(expect)


# ---- committed-only reads -------------------------------------------------------------------------

@pytest.mark.parametrize("offset,length", [(0, CHUNK), (1000, 30_000)], ids=["whole-chunk", "inside-chunk"])
def test_concurrent_writer_and_reader_never_see_torn_data(cluster, client, workdir, offset, length):
    """A reader of a region being rewritten sees exactly one written version each time."""
    path = f"{workdir}/hot"
    base = rand_bytes(2 * CHUNK, 40)
    client.write_file(path, base)
    versions = 60
    values = {0x10 + v for v in range(versions)}
    done = threading.Event()
    errors: list[BaseException] = []
    seen: list[int] = []

    first_read = threading.Event()

    def writer() -> None:
        try:
            first_read.wait(timeout=30)
            with client.open(path, "r+b") as f:
                for v in range(versions):
                    f.pwrite(bytes([0x10 + v]) * length, offset)
        except BaseException as e:   # noqa: BLE001
            errors.append(e)
        finally:
            done.set()

    with Client(cluster.mgmtd_address) as reader:
        with reader.open(path, "rb") as r:
            t = threading.Thread(target=writer)
            t.start()
            reads = 0
            while reads < 2000 and (not done.is_set() or reads < 20):
                whole = r.pread(2 * CHUNK, 0)
                reads += 1
                first_read.set()
                region = whole[offset:offset + length]
                assert len(whole) == 2 * CHUNK
                # bytes outside the region are never disturbed
                assert whole[:offset] == base[:offset]
                assert whole[offset + length:] == base[offset + length:]
                if region == base[offset:offset + length]:
                    seen.append(-1)
                    continue
                first = region[0]
                assert region == bytes([first]) * length, f"torn read: mixed bytes {sorted(set(region))[:8]}"
                assert first in values, f"read a value never written: {first:#x}"
                seen.append(first)
            t.join(timeout=60)
    assert not t.is_alive()
    assert not errors, errors
    assert seen, "the reader never read"
    written_seen = set(seen) - {-1}
    assert len(written_seen) >= 2, f"reads never overlapped the writes: saw {sorted(set(seen))}"
    # once the writer is done, the last write wins
    assert client.read_file(path)[offset:offset + length] == bytes([0x10 + versions - 1]) * length


def test_concurrent_writers_to_one_chunk_leave_identical_replicas(cluster, client, workdir):
    """Two clients rewriting the same chunk: the head serializes them; replicas end identical."""
    path = f"{workdir}/contended"
    client.write_file(path, bytes(CHUNK))
    chain, cid = chunk_location(client, path, 0)
    start_ver = query(client, replicas(client, chain)[0], cid).meta.commit_ver
    rounds = 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def writer(c: Client, base: int) -> None:
        try:
            with c.open(path, "r+b") as f:
                barrier.wait(timeout=30)
                for v in range(rounds):
                    f.pwrite(bytes([base + v]) * CHUNK, 0)
                    f.pwrite(bytes([base + v]) * 1000, 2000)       # partial: copy-on-write path
        except BaseException as e:   # noqa: BLE001
            errors.append(e)

    with Client(cluster.mgmtd_address) as other:
        threads = [threading.Thread(target=writer, args=(client, 0x20)),
                   threading.Thread(target=writer, args=(other, 0x80))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    metas = [query(client, t, cid).meta for t in replicas(client, chain)]
    assert len({(m.commit_ver, m.update_ver, m.size, m.checksum) for m in metas}) == 1, metas
    assert metas[0].commit_ver == metas[0].update_ver == start_ver + 4 * rounds   # every update one version
    content = client.read_file(path)
    assert metas[0].checksum == crc32c(content)
    # the last full-chunk write and the last partial write may come from different writers
    outer = content[:2000] + content[3000:]
    assert outer == bytes([outer[0]]) * len(outer)
    assert content[2000:3000] == bytes([content[2000]]) * 1000
    assert {outer[0], content[2000]} <= set(range(0x20, 0x20 + rounds)) | set(range(0x80, 0x80 + rounds))


# ---- chain-version fencing and head-only writes ---------------------------------------------------

async def _raw_write(address: str, io: spb.UpdateIO, data: bytes) -> spb.WriteRsp:
    rpc = RpcClient()
    try:
        req = spb.WriteReq(from_client=True, io=io,
                           tag=spb.UpdateTag(client_id=os.urandom(16), request_id=1, channel_id=1, seqnum=1))
        rsp, _ = await rpc.call(address, "Storage.Write", req, spb.WriteRsp, payload=data, timeout=10)
        return rsp
    finally:
        await rpc.close()


async def _routing(cluster) -> Routing:
    m = MgmtdClient(cluster.mgmtd_address)
    try:
        return await m.refresh(force=True)
    finally:
        await m.close()


def _raw_write_setup(cluster, client, path):
    data = rand_bytes(CHUNK, 50)
    client.write_file(path, data)
    chain, cid = chunk_location(client, path, 0)
    routing = asyncio.run(_routing(cluster))
    before = [query(client, t, cid).meta for t in replicas(client, chain)]
    return data, chain, cid, routing, before


def _assert_unchanged(client, path, data, chain, cid, before):
    after = [query(client, t, cid).meta for t in replicas(client, chain)]
    assert [(m.commit_ver, m.update_ver, m.checksum) for m in after] == \
        [(m.commit_ver, m.update_ver, m.checksum) for m in before]
    assert client.read_file(path) == data


@pytest.mark.parametrize("delta", [-1, +1, +1000])
def test_write_with_wrong_chain_version_is_rejected(cluster, client, workdir, delta):
    path = f"{workdir}/fenced"
    data, chain, cid, routing, before = _raw_write_setup(cluster, client, path)
    ver = routing.chain(chain).chain_version
    evil = b"\xEE" * 4096
    io = spb.UpdateIO(chain_id=chain, chain_ver=ver + delta, chunk_id=cid, offset=0, length=len(evil),
                      chunk_size=CHUNK, type=spb.WRITE, checksum=crc32c(evil))
    with pytest.raises(FSError) as ei:
        asyncio.run(_raw_write(routing.target_address(routing.head(chain)), io, evil))
    assert ei.value.code == Code.ROUTING_VERSION_MISMATCH
    _assert_unchanged(client, path, data, chain, cid, before)


def test_write_to_non_head_is_rejected(cluster, client, workdir):
    path = f"{workdir}/nothead"
    data, chain, cid, routing, before = _raw_write_setup(cluster, client, path)
    ver = routing.chain(chain).chain_version
    serving = routing.serving(chain)
    assert len(serving) == 3
    evil = b"\xDD" * 4096
    io = spb.UpdateIO(chain_id=chain, chain_ver=ver, chunk_id=cid, offset=0, length=len(evil),
                      chunk_size=CHUNK, type=spb.WRITE, checksum=crc32c(evil))
    for tid in serving[1:]:
        with pytest.raises(FSError) as ei:
            asyncio.run(_raw_write(routing.target_address(tid), io, evil))
        assert ei.value.code == Code.NOT_HEAD, f"target {tid}"
    _assert_unchanged(client, path, data, chain, cid, before)
    # the same request to the head goes through (the fence is the role, not the request)
    rsp = asyncio.run(_raw_write(routing.target_address(serving[0]), io, evil))
    assert rsp.commit_ver == before[0].commit_ver + 1
    assert client.read_file(path) == evil + data[len(evil):]


def test_write_with_bad_payload_checksum_is_rejected(cluster, client, workdir):
    path = f"{workdir}/badcrc"
    data, chain, cid, routing, before = _raw_write_setup(cluster, client, path)
    evil = b"\xCC" * 4096
    io = spb.UpdateIO(chain_id=chain, chain_ver=routing.chain(chain).chain_version, chunk_id=cid, offset=0,
                      length=len(evil), chunk_size=CHUNK, type=spb.WRITE, checksum=crc32c(evil) ^ 1)
    with pytest.raises(FSError) as ei:
        asyncio.run(_raw_write(routing.target_address(routing.head(chain)), io, evil))
    assert ei.value.code == Code.CHECKSUM_MISMATCH
    _assert_unchanged(client, path, data, chain, cid, before)


@pytest.mark.parametrize("delta", [-1, +1], ids=["older-chain-version", "newer-chain-version"])
async def test_client_with_stale_routing_refreshes_and_retries(cluster, workdir, delta):
    """A write sent with an outdated chain version is refused, then retried after a routing refresh."""
    c = AsyncClient(cluster.mgmtd_address)
    try:
        await c.mgmtd.refresh(force=True)                 # no background polling: the retry must refresh
        path = f"{workdir}/stale"
        data = rand_bytes(3 * CHUNK + 11, 60)
        f = await c.open(path, "wb")
        await f.pwrite(data, 0)
        await f.close()

        real = c.mgmtd.routing
        stale = cpb.RoutingInfo()
        stale.CopyFrom(real.info)
        stale.version = real.version - 1                  # an older routing view...
        for ch in stale.chains:
            ch.chain_version = max(0, ch.chain_version + delta)   # ...with other chain versions
        c.mgmtd.routing = Routing(stale)

        sent: list[tuple[int, int]] = []
        reads: list[tuple[int, int]] = []
        orig_call = c.rpc.call

        async def spy(address, method, request, *a, **kw):
            if method == "Storage.Write":
                sent.append((request.io.chain_id, request.io.chain_ver))
            elif method == "Storage.BatchRead":
                reads.extend((io.chain_id, io.chain_ver) for io in request.ios)
            return await orig_call(address, method, request, *a, **kw)

        c.rpc.call = spy
        patch = rand_bytes(CHUNK + 300, 61)
        f = await c.open(path, "r+b")
        await f.pwrite(patch, CHUNK - 150)
        await f.close()
        expect = data[:CHUNK - 150] + patch + data[CHUNK - 150 + len(patch):]

        assert c.mgmtd.routing.version == real.version    # refreshed
        real_ver = {ch.chain_id: ch.chain_version for ch in real.info.chains}
        stale_ver = {ch.chain_id: ch.chain_version for ch in stale.chains}
        assert any(v == stale_ver[ch] for ch, v in sent), "no write went out with the stale version"
        written = {ch for ch, _ in sent}
        for ch in written:
            assert (ch, real_ver[ch]) in sent, f"chain {ch} was never retried with its real version"
        assert await c.read_file(path) == expect

        # reads are fenced the same way: a stale view is refused, refreshed and retried
        c.mgmtd.routing = Routing(stale)
        assert await c.read_file(path) == expect
        assert c.mgmtd.routing.version == real.version
        assert any(v == stale_ver[ch] for ch, v in reads), "no read went out with the stale version"
        assert all(v in (stale_ver[ch], real_ver[ch]) for ch, v in reads)
        assert {(ch, real_ver[ch]) for ch, _ in reads} <= set(reads)
    finally:
        await c.close()
    with Client(cluster.mgmtd_address) as other:
        assert other.read_file(path) == expect


# ---- checksums end to end -------------------------------------------------------------------------

def _corrupt(cluster, client, path: str, index: int, targets: list[int] | None = None, at: int = 100) -> list[int]:
    chain, cid = chunk_location(client, path, index)
    hit = []
    for tid in targets if targets is not None else replicas(client, chain):
        rsp = query(client, tid, cid)
        assert rsp.found
        p = chunk_data_path(cluster, tid, cid, rsp.meta.commit_ver)
        assert p.exists(), f"expected data file {p}"
        flip_byte(p, at)
        hit.append(tid)
    return hit


def test_corruption_on_every_replica_is_eio(cluster, client, workdir):
    path = f"{workdir}/rotten"
    data = rand_bytes(4 * CHUNK, 70)
    client.write_file(path, data)
    _corrupt(cluster, client, path, 1)
    with Client(cluster.mgmtd_address) as fresh:
        for c in (client, fresh):
            with pytest.raises(OSError) as ei:
                c.read_file(path)
            assert ei.value.errno == errno.EIO
            with c.open(path, "rb") as f:
                with pytest.raises(OSError) as ei:
                    f.pread(10, CHUNK + 5000)        # far from the flipped byte, same chunk
                assert ei.value.errno == errno.EIO
                buf = bytearray(CHUNK)
                with pytest.raises(OSError) as ei:
                    f.preadinto(buf, CHUNK)
                assert ei.value.errno == errno.EIO
                # the other chunks are still readable
                assert f.pread(CHUNK, 0) == data[:CHUNK]
                assert f.pread(2 * CHUNK, 2 * CHUNK) == data[2 * CHUNK:]


def test_corruption_on_one_replica_is_read_around(cluster, client, workdir):
    path = f"{workdir}/one-bad"
    data = rand_bytes(3 * CHUNK, 80)
    client.write_file(path, data)
    chain, cid = chunk_location(client, path, 2)
    routing = client.aio.mgmtd.routing
    bad = replicas(client, chain)[0]
    _corrupt(cluster, client, path, 2, targets=[bad], at=CHUNK - 1)

    # the corrupted replica itself refuses to serve the chunk...
    async def raw_read(tid):
        rpc = RpcClient()
        try:
            req = spb.BatchReadReq(ios=[spb.ReadIO(chain_id=chain, chain_ver=routing.chain(chain).chain_version,
                                                   chunk_id=cid, offset=0, length=CHUNK)])
            rsp, payload = await rpc.call(routing.target_address(tid), "Storage.BatchRead", req, spb.BatchReadRsp,
                                          timeout=10)
            return rsp.results[0], payload
        finally:
            await rpc.close()

    res, _ = asyncio.run(raw_read(bad))
    assert res.status == Code.CHECKSUM_MISMATCH
    for good in replicas(client, chain)[1:]:
        res, payload = asyncio.run(raw_read(good))
        assert res.status == 0 and bytes(payload) == data[2 * CHUNK:]
    # ...and clients, whichever replica they pick first, get the right bytes
    with Client(cluster.mgmtd_address) as fresh:
        for _ in range(20):
            assert fresh.read_file(path) == data
            with fresh.open(path, "rb") as f:
                assert f.pread(100, 3 * CHUNK - 100) == data[-100:]


def test_cold_chunks_are_read_from_disk_on_io_threads(cluster, client, workdir):
    """Storage serves cached chunks on its loop; chunks whose pages were dropped take the I/O-thread path."""
    path = f"{workdir}/cold"
    data = rand_bytes(3 * CHUNK + 123, 90)
    client.write_file(path, data)
    os.sync()  # written pages become clean, so they can be dropped
    for index in range(4):
        chain, cid = chunk_location(client, path, index)
        for tid in replicas(client, chain):
            rsp = query(client, tid, cid)
            evict(chunk_data_path(cluster, tid, cid, rsp.meta.commit_ver))
    with Client(cluster.mgmtd_address) as fresh:
        assert fresh.read_file(path) == data
        with fresh.open(path, "rb") as f:
            assert f.pread(1000, CHUNK - 500) == data[CHUNK - 500:CHUNK + 500]
