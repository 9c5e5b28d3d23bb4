"""S3 gateway throughput and small-object rates beside the native client, in the same run.

    python benchmarks/s3.py [--objects 4] [--size-mib 64] [--clients 4] [--small 1000] [--dir DIR]

Starts a temporary dev cluster (3 storage nodes, 1 MiB chunks) with an admin user, an S3 key and
a `threefs s3 serve` process, then, with `--clients` concurrent workers:
  - native write/read: AsyncClient tasks, one object each at a time (16 MiB blocks, 4 in flight);
  - S3 PUT/GET: one boto3 client per thread, put_object / get_object of whole objects;
  - 4 KiB objects: native create+write+close / open+read, and S3 PUT / GET, as operations per second;
  - multipart: the large objects again as uniform 8 MiB parts (plus a smaller last part, parts of one
    object in parallel), reporting upload MB/s and the CompleteMultipartUpload time, which the
    staging layout keeps independent of the object's size (uniform parts: no bytes are copied).
Prints MB/s (or ops/s) per case and the S3/native ratio (target: >= 0.6 for large objects).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threefs.cli.devcluster import ClusterSpec, DevCluster
from threefs.client.fs import AsyncClient
from threefs.proto import common_pb2 as cpb

MIB = 1 << 20
BLOCK = 16 * MIB


async def native_large(mgmtd: str, n: int, size: int, workers: int) -> tuple[float, float]:
    """Seconds to write then read `n` objects of `size` bytes with `workers` concurrent tasks."""
    data = os.urandom(size)
    async with AsyncClient(mgmtd, user=cpb.UserInfo(uid=0, gid=0)) as c:
        await c.mkdir("/native", exist_ok=True)
        sem = asyncio.Semaphore(workers)

        async def put(i: int) -> None:
            async with sem:
                f = await c.open(f"/native/o{i}", "wb")
                blocks = asyncio.Semaphore(4)

                async def w(off: int) -> None:
                    async with blocks:
                        await f.pwrite(memoryview(data)[off:off + BLOCK], off)
                await asyncio.gather(*(w(off) for off in range(0, size, BLOCK)))
                await f.close()

        async def get(i: int) -> None:
            async with sem:
                f = await c.open(f"/native/o{i}", "rb")
                blocks = asyncio.Semaphore(4)

                async def r(off: int) -> int:
                    async with blocks:
                        return len(await f.pread(BLOCK, off))
                got = sum(await asyncio.gather(*(r(off) for off in range(0, size, BLOCK))))
                await f.close()
                assert got == size

        t0 = time.perf_counter()
        await asyncio.gather(*(put(i) for i in range(n)))
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        await asyncio.gather(*(get(i) for i in range(n)))
        return t_write, time.perf_counter() - t0


async def native_small(mgmtd: str, n: int, workers: int) -> tuple[float, float]:
    """Seconds to create+write+close then open+read `n` 4 KiB files with `workers` tasks."""
    data = os.urandom(4096)
    async with AsyncClient(mgmtd, user=cpb.UserInfo(uid=0, gid=0)) as c:
        await c.mkdir("/native-small", exist_ok=True)
        sem = asyncio.Semaphore(workers)

        async def put(i: int) -> None:
            async with sem:
                await c.write_file(f"/native-small/s{i}", data)

        async def get(i: int) -> None:
            async with sem:
                assert len(await c.read_file(f"/native-small/s{i}")) == 4096

        t0 = time.perf_counter()
        await asyncio.gather(*(put(i) for i in range(n)))
        t_write = time.perf_counter() - t0
        t0 = time.perf_counter()
        await asyncio.gather(*(get(i) for i in range(n)))
        return t_write, time.perf_counter() - t0


def s3_run(endpoint: str, access: str, secret: str, bucket: str, n: int, size: int, workers: int,
           prefix: str) -> tuple[float, float]:
    """Seconds to PUT then GET `n` objects of `size` bytes from `workers` threads (one boto3 client each)."""
    data = os.urandom(size)
    clients = [boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                            region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, max_pool_connections=4))
               for _ in range(workers)]

    def put(i: int) -> None:
        clients[i % workers].put_object(Bucket=bucket, Key=f"{prefix}/o{i}", Body=data)

    def get(i: int) -> None:
        body = clients[i % workers].get_object(Bucket=bucket, Key=f"{prefix}/o{i}")["Body"]
        n_read = 0
        while chunk := body.read(MIB):
            n_read += len(chunk)
        assert n_read == size

    with ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        list(pool.map(put, range(n)))
        t_put = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(pool.map(get, range(n)))
        return t_put, time.perf_counter() - t0


def s3_multipart(endpoint: str, access: str, secret: str, bucket: str, n: int, size: int, workers: int,
                 part: int = 8 * MIB) -> tuple[float, float]:
    """Seconds to upload the parts of `n` objects of `size` bytes (`workers` threads), and the slowest
    CompleteMultipartUpload."""
    data = os.urandom(size)
    c = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                     region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"}, max_pool_connections=workers))
    cuts = [(i, min(i + part, size)) for i in range(0, size, part)]
    ids = [c.create_multipart_upload(Bucket=bucket, Key=f"mp/o{i}")["UploadId"] for i in range(n)]
    etags: dict[tuple[int, int], str] = {}

    def put(job: tuple[int, int]) -> None:
        i, p = job
        a, b = cuts[p]
        etags[job] = c.upload_part(Bucket=bucket, Key=f"mp/o{i}", UploadId=ids[i], PartNumber=p + 1,
                                   Body=data[a:b])["ETag"]

    with ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        list(pool.map(put, [(i, p) for i in range(n) for p in range(len(cuts))]))
        t_up = time.perf_counter() - t0
    t_done = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        c.complete_multipart_upload(Bucket=bucket, Key=f"mp/o{i}", UploadId=ids[i], MultipartUpload={
            "Parts": [{"PartNumber": p + 1, "ETag": etags[i, p]} for p in range(len(cuts))]})
        t_done = max(t_done, time.perf_counter() - t0)
    return t_up, t_done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=4, help="Large objects per case.")
    ap.add_argument("--size-mib", type=int, default=64)
    ap.add_argument("--clients", type=int, default=4, help="Concurrent workers (boto3 clients / tasks).")
    ap.add_argument("--small", type=int, default=1000, help="4 KiB objects per case.")
    ap.add_argument("--dir", default=None, help="Where the temporary cluster lives (default: a temp dir).")
    ns = ap.parse_args()
    size = ns.size_mib * MIB
    root = Path(tempfile.mkdtemp(prefix="s3-bench-", dir=ns.dir))
    dc = DevCluster(root / "cluster", ClusterSpec(base_port=0, s3=True))
    try:
        st = dc.up()          # starts the gateway with the dev admin user's token and S3 key
        endpoint, access, secret = st["s3"], st["s3_access_key"], st["s3_secret_key"]
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                     region_name="us-east-1", config=Config(s3={"addressing_style": "path"})
                     ).create_bucket(Bucket="bench")

        n_w, n_r = asyncio.run(native_large(dc.mgmtd_address, ns.objects, size, ns.clients))
        s_w, s_r = s3_run(endpoint, access, secret, "bench", ns.objects, size, ns.clients, "large")
        ns_w, ns_r = asyncio.run(native_small(dc.mgmtd_address, ns.small, ns.clients * 4))
        ss_w, ss_r = s3_run(endpoint, access, secret, "bench", ns.small, 4096, ns.clients, "small")
        mp_up, mp_done = s3_multipart(endpoint, access, secret, "bench", ns.objects, size + 12345, ns.clients)
        mb = ns.objects * size / 1e6
        print(f"{ns.objects} x {ns.size_mib} MiB objects, {ns.small} x 4 KiB objects, {ns.clients} clients; "
              f"dev cluster {len(dc.chains())} chains x 3 replicas, 1 MiB chunks")
        print(f"{'case':<28}{'value':>12}{'unit':>8}{'S3/native':>12}")
        print(f"{'native write 64 MiB':<28}{mb / n_w:>12.1f}{'MB/s':>8}")
        print(f"{'S3 PUT 64 MiB':<28}{mb / s_w:>12.1f}{'MB/s':>8}{n_w / s_w:>12.2f}")
        print(f"{'native read 64 MiB':<28}{mb / n_r:>12.1f}{'MB/s':>8}")
        print(f"{'S3 GET 64 MiB':<28}{mb / s_r:>12.1f}{'MB/s':>8}{n_r / s_r:>12.2f}")
        print(f"{'native create 4 KiB':<28}{ns.small / ns_w:>12.0f}{'ops/s':>8}")
        print(f"{'S3 PUT 4 KiB':<28}{ns.small / ss_w:>12.0f}{'ops/s':>8}{ns_w / ss_w:>12.2f}")
        print(f"{'native read 4 KiB':<28}{ns.small / ns_r:>12.0f}{'ops/s':>8}")
        print(f"{'S3 GET 4 KiB':<28}{ns.small / ss_r:>12.0f}{'ops/s':>8}{ns_r / ss_r:>12.2f}")
        print(f"{'S3 multipart upload':<28}{(mb + ns.objects * 12345 / 1e6) / mp_up:>12.1f}{'MB/s':>8}"
              f"{n_w / mp_up:>12.2f}")
        print(f"{'S3 multipart complete':<28}{mp_done * 1e3:>12.1f}{'ms':>8}")
    finally:
        dc.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
