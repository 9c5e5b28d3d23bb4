"""Storage targets on file systems that fill up (64 MiB tmpfs each): a write that does not fit fails at once
with ENOSPC and a message that says so; what was acknowledged before reads back exact; removing files
frees the space and writes work again (the reserve keeps the targets' metadata writable, so removals can
be logged on a full disk)."""
from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import time
from pathlib import Path

import pytest

from threefs.cli.devcluster import ClusterSpec, DevCluster
from threefs.client.fs import AsyncClient
from threefs.proto import common_pb2 as cpb

MIB = 1 << 20
TMPFS = "64m"


def _mount_tmpfs(path: Path) -> None:
    path.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS}", "tmpfs", str(path)], capture_output=True,
                       text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here to fill up (needs root): {r.stderr.strip()}")


@pytest.mark.timeout(240)
def test_a_full_target_refuses_writes_with_enospc_and_frees_space_on_removal(tmp_path) -> None:
    spec = ClusterSpec(base_port=0, storage_nodes=3, targets_per_node=1, replicas=3, chunk_size=MIB,
                       heartbeat_interval=0.2, gc_interval=0.1, fuse=False, s3=False, hdfs=False)
    dc = DevCluster(tmp_path / "c", spec)
    dc._plan()
    mounted: list[Path] = []
    try:
        for p in dc.procs:
            if p.role == "storage":
                mounted.append(tmp_path / "c" / f"storage-{p.node_id}")
                _mount_tmpfs(mounted[-1])
        dc.up(timeout=60)

        async def scenario() -> None:
            c = await AsyncClient(dc.mgmtd_address).connect()
            try:
                keep = os.urandom(8 * MIB)
                f = await c.open("/keep.bin", "wb")
                await f.write(keep)
                await f.close()
                free_before = (await c.statfs()).free

                f = await c.open("/big.bin", "wb")
                block, written = os.urandom(MIB), 0
                t0 = time.monotonic()
                with pytest.raises(OSError) as e:
                    for _ in range(100):              # far more than fits
                        await f.write(block)
                        written += MIB
                    await f.fsync()
                assert e.value.errno == errno.ENOSPC
                assert "is full" in str(e.value) and "kept for its metadata" in str(e.value)
                assert time.monotonic() - t0 < 20, "ENOSPC is not retried like a transient failure"
                assert 32 * MIB <= written < 64 * MIB
                try:
                    await f.close()                   # bytes still buffered when the write failed may fail again
                except OSError as again:
                    assert again.errno == errno.ENOSPC
                assert await c.read_file("/keep.bin") == keep
                assert (await c.statfs()).free < free_before - 32 * MIB

                await c.remove("/big.bin")            # logged on the full targets, thanks to the reserve

                async def min_target_free() -> int:
                    nodes = [n.address for n in c.mgmtd.routing.nodes_of_type(cpb.STORAGE)]
                    infos = await asyncio.gather(*(c.storage.space_info(a) for a in nodes))
                    return min(t.free for info in infos for t in info.targets)

                async def freed() -> None:            # every target, not the sum: meta removes chunks per chain
                    while await min_target_free() < 40 * MIB:
                        await asyncio.sleep(0.1)
                await asyncio.wait_for(freed(), 60)
                after = os.urandom(24 * MIB)
                f = await c.open("/after.bin", "wb")
                await f.write(after)
                await f.fsync()
                await f.close()
                assert await c.read_file("/after.bin") == after
            finally:
                await c.close()

        asyncio.run(scenario())
    finally:
        dc.down()
        for m in mounted:
            subprocess.run(["umount", str(m)], check=False, capture_output=True)
