"""Where a read that misses the page cache runs: a small one on the event loop when it is the node's only
request, and on an I/O thread otherwise (the thread hop costs more than the read on these VMs; with other
requests in flight the loop must stay free for them); a large one with O_DIRECT on an I/O thread."""
from __future__ import annotations

import os
import threading

import pytest
from page_cache_util import any_cached, evict
from test_local_states import CID, SER, UP, FakeMgmtd

from threefs.net.rpc import RpcClient
from threefs.proto import storage_pb2 as spb
from threefs.storage.chunk_engine import ChunkEngine
from threefs.storage.service import StorageConfig, StorageService, Target


def _evict(engine: ChunkEngine, offset: int, length: int) -> bool:
    """Drop the chunk's data pages from the page cache; False where the kernel kept any page of the range."""
    paths = list((engine.target_dir / "data").glob(f"*/{CID.hex()}.*"))
    for path in paths:
        evict(path)
    return bool(paths) and not any(any_cached(p, offset, length) for p in paths)


def _node(tmp_path, data: bytes, **config) -> tuple[ChunkEngine, StorageService]:
    """A storage service with one serving target holding `data` as chunk CID (committed)."""
    eng = ChunkEngine(tmp_path / "t", 101)
    eng.update(CID, update_ver=1, chain_ver=5, kind=spb.WRITE, data=data, chunk_size=1 << 20)
    eng.commit(CID, 1, 5)
    t = Target(101, tmp_path / "t", eng)
    m = FakeMgmtd()
    svc = StorageService(1, [t], m, RpcClient(), io_threads=1,   # type: ignore[arg-type]
                         config=StorageConfig(**config))
    svc.apply_routing(m.set(5, SER))
    t.local_state = UP
    return eng, svc


async def test_lone_small_disk_read_runs_on_the_loop_else_on_a_thread(tmp_path):
    data = os.urandom(256 << 10)
    eng, svc = _node(tmp_path, data)
    calls: list[tuple[str, bool]] = []
    read = eng.read

    def spy(*args, **kw):
        calls.append((threading.current_thread().name, kw.get("nowait", False)))
        return read(*args, **kw)

    eng.read = spy  # type: ignore[method-assign]
    req = spb.BatchReadReq(ios=[spb.ReadIO(chain_id=1, chain_ver=5, chunk_id=CID, offset=4096, length=64 << 10)])
    try:
        for others, where in ((0, "MainThread"), (1, "storage-io")):
            if not _evict(eng, 4096, 64 << 10):
                pytest.skip("the kernel kept the chunk's pages cached (no cold read to place)")
            svc.requests_in_flight = lambda n=others: n + 1      # this request, plus `others`
            calls.clear()
            rsp, out = await svc.BatchRead(req, None)
            assert rsp.results[0].status == 0 and bytes(out[0]) == data[4096:4096 + (64 << 10)]
            blocking = [name for name, nowait in calls if not nowait]
            assert len(blocking) == 1 and blocking[0].startswith(where), (others, calls)
    finally:
        svc.pool.shutdown()


@pytest.mark.parametrize("direct", [True, False])
async def test_large_cold_read_is_served_past_the_page_cache(tmp_path, direct):
    """A read larger than SMALL_READ whose pages are not cached is read with O_DIRECT (no page-cache
    fill and copy), unless the node is configured for buffered reads (`--buffered-reads`)."""
    data = os.urandom(1 << 20)
    eng, svc = _node(tmp_path, data, direct_reads=direct)
    req = spb.BatchReadReq(ios=[spb.ReadIO(chain_id=1, chain_ver=5, chunk_id=CID, offset=0, length=1 << 20)])
    try:
        if not _evict(eng, 0, 1 << 20):
            pytest.skip("the kernel kept the chunk's pages cached (no cold read to place)")
        rsp, out = await svc.BatchRead(req, None)
        assert rsp.results[0].status == 0 and bytes(out[0]) == data
        if eng._direct_reads is False:
            pytest.skip(f"the file system under {tmp_path} refuses O_DIRECT reads")
        path = next((eng.target_dir / "data").glob(f"*/{CID.hex()}.*"))
        assert any_cached(path, 0, 1 << 20) == (not direct)
    finally:
        svc.pool.shutdown()
