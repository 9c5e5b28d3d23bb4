"""Upload and download of one file through the WebHDFS gateway beside the native client, in the same run.

    python benchmarks/webhdfs.py [--size-mib 256] [--dir DIR]

Starts a temporary dev cluster (3 storage nodes, 1 MiB chunks) with a `root` user and a
`threefs hdfs serve` process, then:
  - native write: AsyncClient pwrite of 16 MiB blocks, 4 in flight, then close (no fsync);
  - WebHDFS upload: CREATE, 307, PUT of a streamed body (1 MiB pieces, `requests`), 201 Created;
  - native read: AsyncClient pread of 16 MiB blocks, 4 in flight;
  - WebHDFS download: OPEN streamed to the client in 1 MiB pieces.
Prints MB/s per case and the WebHDFS/native ratio (the gateway adds one HTTP hop and a copy).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threefs.cli.devcluster import ClusterSpec, DevCluster
from threefs.client.fs import AsyncClient
from threefs.proto import common_pb2 as cpb

MIB = 1 << 20
BLOCK = 16 * MIB


def pieces(size: int, piece: int = MIB) -> Iterator[bytes]:
    seed = os.urandom(piece)
    for i in range(0, size, piece):
        yield seed[: min(piece, size - i)]


async def native(mgmtd: str, path: str, size: int) -> tuple[float, float]:
    """Seconds to write then read `size` bytes with the native client."""
    data = b"".join(pieces(BLOCK))
    async with AsyncClient(mgmtd, user=cpb.UserInfo(uid=0, gid=0)) as c:
        t0 = time.perf_counter()
        f = await c.open(path, "wb")
        sem = asyncio.Semaphore(4)

        async def put(off: int) -> None:
            async with sem:
                await f.pwrite(memoryview(data)[: min(BLOCK, size - off)], off)

        await asyncio.gather(*(put(off) for off in range(0, size, BLOCK)))
        await f.close()
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        f = await c.open(path, "rb")

        async def get(off: int) -> int:
            async with sem:
                return len(await f.pread(BLOCK, off))

        got = sum(await asyncio.gather(*(get(off) for off in range(0, size, BLOCK))))
        await f.close()
        t_read = time.perf_counter() - t0
        assert got == size, (got, size)
    return t_write, t_read


def webhdfs(base: str, path: str, size: int) -> tuple[float, float]:
    """Seconds to upload then download `size` bytes through the gateway."""
    url = f"{base}/webhdfs/v1{path}"
    with requests.Session() as s:
        t0 = time.perf_counter()
        first = s.put(url, params={"op": "CREATE", "user.name": "root", "overwrite": "true"}, allow_redirects=False)
        assert first.status_code == 307, first.text
        rsp = s.put(first.headers["Location"], data=pieces(size))
        assert rsp.status_code == 201, rsp.text
        t_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        n = 0
        with s.get(url, params={"op": "OPEN", "user.name": "root"}, stream=True) as rsp:
            rsp.raise_for_status()
            for block in rsp.iter_content(MIB):
                n += len(block)
        t_down = time.perf_counter() - t0
        assert n == size, (n, size)
    return t_up, t_down


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--dir", default=None, help="Where the temporary cluster lives (default: a temp dir).")
    ns = ap.parse_args()
    size = ns.size_mib * MIB
    root = Path(tempfile.mkdtemp(prefix="webhdfs-bench-", dir=ns.dir))
    dc = DevCluster(root / "cluster", ClusterSpec(base_port=0, hdfs=True))
    try:
        base = dc.up()["webhdfs"].removesuffix("/webhdfs/v1")
        n_write, n_read = asyncio.run(native(dc.mgmtd_address, "/native.bin", size))
        w_up, w_down = webhdfs(base, "/webhdfs.bin", size)
        mb = size / 1e6
        print(f"file: {ns.size_mib} MiB; dev cluster {len(dc.chains())} chains x 3 replicas, 1 MiB chunks")
        print(f"{'case':<26}{'MB/s':>10}{'vs native':>12}")
        print(f"{'native write (close)':<26}{mb / n_write:>10.1f}{'':>12}")
        print(f"{'WebHDFS upload (CREATE)':<26}{mb / w_up:>10.1f}{n_write / w_up:>12.2f}")
        print(f"{'native read':<26}{mb / n_read:>10.1f}{'':>12}")
        print(f"{'WebHDFS download (OPEN)':<26}{mb / w_down:>10.1f}{n_read / w_down:>12.2f}")
    finally:
        dc.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
