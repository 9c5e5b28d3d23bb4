"""Large writes: one replica per chunk keeps it in its page cache (and mapped), the others write it past
the cache (O_DIRECT), and reads are served by that one replica, past the page cache once it is cold
(`threefs admin drop-cache`, then the pages dropped; real processes, 1 MiB chunks)."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from itest_util import chunk_location, rand_bytes, start_cluster, target_dir
from page_cache_util import cached, evict

from threefs.client.fs import Client
from threefs.storage import page_map

MIB = 1 << 20


def _files(dc, target_id: int, chunk_id: bytes) -> list[Path]:
    return sorted((target_dir(dc, target_id) / "data").glob(f"*/{chunk_id.hex()}.*"))


def _direct_io_works(directory: Path) -> bool:
    probe = directory / "direct-probe"
    buf = memoryview(bytearray(2 * 4096))
    start = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % 4096
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    try:
        os.pwrite(fd, buf[start:start + 4096], 0)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()


def _read_bytes_sent(dc) -> dict[int, float]:
    """Payload bytes each storage node has sent in answer to reads, from its Prometheus endpoint."""
    out = {}
    for p in dc.status()["processes"]:
        if p["role"] == "storage":
            text = urllib.request.urlopen(p["metrics"], timeout=10).read().decode()
            out[p["node_id"]] = sum(
                s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                if s.name == "threefs_rpc_payload_bytes_total"
                and s.labels == {"method": "Storage.BatchRead", "direction": "out"})
    return out


@pytest.mark.skipif(not page_map.AVAILABLE, reason="mmap/mincore are needed to see page-cache residency")
def test_one_replica_caches_each_chunk_and_serves_its_reads(tmp_path):
    if not _direct_io_works(tmp_path):
        pytest.skip(f"the file system under {tmp_path} refuses O_DIRECT, so every replica writes through the cache")
    dc = start_cluster(tmp_path / "c", chunk_size=MIB, targets_per_node=1)
    try:
        with Client(dc.mgmtd_address) as c:
            data = rand_bytes(9 * MIB, 3)
            with c.open("/big", "wb") as f:
                f.write(data)
            routing = c.aio.mgmtd.routing
            chunks = []
            for index in range(9):
                chain, chunk_id = chunk_location(c, "/big", index)
                owner = routing.cache_replica(chain, chunk_id)
                replicas = routing.serving(chain)
                assert owner in replicas and len(replicas) == 3
                for t in replicas:
                    files = _files(dc, t, chunk_id)
                    assert len(files) == 1, files
                    assert cached(files[0]) == (t == owner), f"chunk {index} on target {t} (owner {owner})"
                chunks.append((owner, replicas, chunk_id))
            assert len({owner for owner, _, _ in chunks}) > 1     # reads spread over the nodes
            # The owners keep what they wrote mapped, and the kernel does not drop mapped pages: first
            # they let go of them
            out = subprocess.run([sys.executable, "-m", "threefs", "admin", "drop-cache", "--mgmtd",
                                  dc.mgmtd_address, "--json"], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            released = {r["node_id"]: r["released"] for r in json.loads(out.stdout)}
            assert released == {node: sum(owner // 100 == node for owner, _, _ in chunks) for node in released}
            for _, replicas, chunk_id in chunks:                  # cold: a read must now go to some disk
                for t in replicas:
                    evict(_files(dc, t, chunk_id)[0])
            before = _read_bytes_sent(dc)
            assert c.read_file("/big") == data
            sent = {node: n - before[node] for node, n in _read_bytes_sent(dc).items()}
            owned = {node: MIB * sum(owner // 100 == node for owner, _, _ in chunks) for node in sent}
            assert sent == owned                                  # each chunk served by its owner alone
            for _, replicas, chunk_id in chunks:                  # large cold reads go past the page cache
                for t in replicas:
                    assert not cached(_files(dc, t, chunk_id)[0])
    finally:
        dc.down()
