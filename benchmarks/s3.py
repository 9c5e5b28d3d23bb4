"""S3 gateway throughput and small-object rates beside the native client, in the same run.

    python benchmarks/s3.py [--objects 4] [--size-mib 64] [--clients 4] [--rounds 5] [--small 1000] [--dir DIR]

Starts a temporary dev cluster (3 storage nodes, 1 MiB chunks) with an admin user, an S3 key and
a `threefs s3 serve` process, then, with `--clients` concurrent workers:
  - native write/read: AsyncClient tasks, one object each at a time (16 MiB blocks, 4 in flight);
  - S3 PUT/GET: one boto3 client per thread, put_object / get_object of whole objects. boto3's
    default over plain HTTP signs the payload (it SHA-256es the body before sending; the gateway
    checks it) and adds x-amz-checksum-crc32; a second PUT row uses
    Config(s3={"payload_signing_enabled": False}) (UNSIGNED-PAYLOAD: the CRC32 still guards the body,
    the signature does not cover it; a choice for trusted networks);
  - the large-object cases run `--rounds` times, each round into fresh names (no overwrites: a
    rewrite would time truncation and garbage collection, not writing), native and S3 back to back
    with the order alternating between rounds; each case reports its median, and S3/native is the
    median of the per-round ratios (pairs measured seconds apart, so load from elsewhere on the
    machine mostly cancels out);
  - 4 KiB objects: native create+write+close / open+read, and S3 PUT / GET, as operations per second;
  - multipart: the large objects again as uniform 8 MiB parts (plus a smaller last part, parts of one
    object in parallel), reporting upload MB/s and the CompleteMultipartUpload time, which the
    staging layout keeps independent of the object's size (uniform parts: no bytes are copied).
Prints MB/s (or ops/s) per case and the S3/native ratio (target: >= 0.6 for large objects), and for the
large-object cases the range over the rounds.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threefs.cli.devcluster import ClusterSpec, DevCluster
from threefs.client.fs import AsyncClient
from threefs.proto import common_pb2 as cpb

MIB = 1 << 20
BLOCK = 16 * MIB


async def native_write(mgmtd: str, data: bytes, n: int, workers: int, tag: str) -> float:
    """Seconds to write `n` fresh objects of len(data) bytes with `workers` concurrent tasks."""
    size = len(data)
    async with AsyncClient(mgmtd, user=cpb.UserInfo(uid=0, gid=0)) as c:
        await c.mkdir(f"/native-{tag}", exist_ok=True)
        sem = asyncio.Semaphore(workers)

        async def put(i: int) -> None:
            async with sem:
                f = await c.open(f"/native-{tag}/o{i}", "wb")
                blocks = asyncio.Semaphore(4)

                async def w(off: int) -> None:
                    async with blocks:
                        await f.pwrite(memoryview(data)[off:off + BLOCK], off)
                await asyncio.gather(*(w(off) for off in range(0, size, BLOCK)))
                await f.close()

        t0 = time.perf_counter()
        await asyncio.gather(*(put(i) for i in range(n)))
        return time.perf_counter() - t0


async def native_read(mgmtd: str, n: int, size: int, workers: int, tag: str) -> float:
    """Seconds to read the `n` objects native_write wrote under `tag`."""
    async with AsyncClient(mgmtd, user=cpb.UserInfo(uid=0, gid=0)) as c:
        sem = asyncio.Semaphore(workers)

        async def get(i: int) -> None:
            async with sem:
                f = await c.open(f"/native-{tag}/o{i}", "rb")
                blocks = asyncio.Semaphore(4)

                async def r(off: int) -> int:
                    async with blocks:
                        return len(await f.pread(BLOCK, off))
                got = sum(await asyncio.gather(*(r(off) for off in range(0, size, BLOCK))))
                await f.close()
                assert got == size

        t0 = time.perf_counter()
        await asyncio.gather(*(get(i) for i in range(n)))
        return time.perf_counter() - t0


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


def s3_clients(endpoint: str, access: str, secret: str, workers: int, signed: bool = True) -> list:
    """One boto3 client per worker; `signed=False`: UNSIGNED-PAYLOAD (boto3 skips hashing the body)."""
    s3cfg = {"addressing_style": "path"} if signed else {"addressing_style": "path", "payload_signing_enabled": False}
    return [boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                         region_name="us-east-1", config=Config(s3=s3cfg, max_pool_connections=4))
            for _ in range(workers)]


def s3_put(clients: list, bucket: str, data: bytes, n: int, prefix: str) -> float:
    """Seconds to PUT `n` objects (one thread per client)."""
    workers = len(clients)

    def put(i: int) -> None:
        clients[i % workers].put_object(Bucket=bucket, Key=f"{prefix}/o{i}", Body=data)

    with ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        list(pool.map(put, range(n)))
        return time.perf_counter() - t0


def s3_get(clients: list, bucket: str, size: int, n: int, prefix: str) -> float:
    """Seconds to GET the `n` objects s3_put wrote under `prefix`."""
    workers = len(clients)

    def get(i: int) -> None:
        body = clients[i % workers].get_object(Bucket=bucket, Key=f"{prefix}/o{i}")["Body"]
        n_read = 0
        while chunk := body.read(MIB):
            n_read += len(chunk)
        assert n_read == size

    with ThreadPoolExecutor(workers) as pool:
        t0 = time.perf_counter()
        list(pool.map(get, range(n)))
        return time.perf_counter() - t0


def s3_run(endpoint: str, access: str, secret: str, bucket: str, n: int, size: int, workers: int,
           prefix: str) -> tuple[float, float]:
    """Seconds to PUT then GET `n` objects of `size` bytes from `workers` threads (one boto3 client each)."""
    clients = s3_clients(endpoint, access, secret, workers)
    data = os.urandom(size)
    return s3_put(clients, bucket, data, n, prefix), s3_get(clients, bucket, size, n, prefix)


def large_rounds(dc: DevCluster, endpoint: str, access: str, secret: str, bucket: str, n: int, size: int,
                 workers: int, rounds: int) -> dict[str, list[float]]:
    """Per round, seconds of each large-object case: native write/read, S3 PUT (signed and unsigned
    payload) and GET; fresh names every round, native and S3 back to back, order alternating."""
    data = os.urandom(size)
    signed = s3_clients(endpoint, access, secret, workers)
    unsigned = s3_clients(endpoint, access, secret, workers, signed=False)
    t: dict[str, list[float]] = {k: [] for k in ("nw", "sw", "uw", "nr", "sr")}
    for r in range(rounds):
        tag = f"r{r}"
        writes = [("nw", partial(asyncio.run, native_write(dc.mgmtd_address, data, n, workers, tag))),
                  ("sw", partial(s3_put, signed, bucket, data, n, f"large-{tag}")),
                  ("uw", partial(s3_put, unsigned, bucket, data, n, f"large-u{tag}"))]
        reads = [("nr", partial(asyncio.run, native_read(dc.mgmtd_address, n, size, workers, tag))),
                 ("sr", partial(s3_get, signed, bucket, size, n, f"large-{tag}"))]
        for phase in (writes, reads):
            for k, fn in (phase if r % 2 == 0 else phase[::-1]):
                t[k].append(fn())
    return t


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
    ap.add_argument("--rounds", type=int, default=5,
                    help="Rounds of the large-object cases (medians reported; with 3, one noisy pair moved the median).")
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

        t = large_rounds(dc, endpoint, access, secret, "bench", ns.objects, size, ns.clients, ns.rounds)
        ns_w, ns_r = asyncio.run(native_small(dc.mgmtd_address, ns.small, ns.clients * 4))
        ss_w, ss_r = s3_run(endpoint, access, secret, "bench", ns.small, 4096, ns.clients, "small")
        mp_up, mp_done = s3_multipart(endpoint, access, secret, "bench", ns.objects, size + 12345, ns.clients)
        mb = ns.objects * size / 1e6
        med = statistics.median

        def rate(k: str) -> float:
            return mb / med(t[k])

        def ratio(k: str, native: str) -> float:        # median of the per-round ratios
            return med(a / b for a, b in zip(t[native], t[k]))

        def spread(k: str) -> str:
            return f"{mb / max(t[k]):.0f}-{mb / min(t[k]):.0f}"

        label = f"{ns.size_mib} MiB"
        print(f"{ns.objects} x {ns.size_mib} MiB objects ({ns.rounds} rounds, medians), {ns.small} x 4 KiB objects, "
              f"{ns.clients} clients; dev cluster {len(dc.chains())} chains x 3 replicas, 1 MiB chunks")
        print(f"{'case':<36}{'value':>10}{'unit':>7}{'S3/native':>11}   rounds (MB/s)")
        rows = [("native write " + label, "nw", None), ("S3 PUT " + label, "sw", "nw"),
                ("S3 PUT " + label + " UNSIGNED-PAYLOAD", "uw", "nw"),
                ("native read " + label, "nr", None), ("S3 GET " + label, "sr", "nr")]
        for name, k, native in rows:
            r = f"{ratio(k, native):>11.2f}" if native else " " * 11
            print(f"{name:<36}{rate(k):>10.1f}{'MB/s':>7}{r}   {spread(k)}")
        print(f"{'native create 4 KiB':<36}{ns.small / ns_w:>10.0f}{'ops/s':>7}")
        print(f"{'S3 PUT 4 KiB':<36}{ns.small / ss_w:>10.0f}{'ops/s':>7}{ns_w / ss_w:>11.2f}")
        print(f"{'native read 4 KiB':<36}{ns.small / ns_r:>10.0f}{'ops/s':>7}")
        print(f"{'S3 GET 4 KiB':<36}{ns.small / ss_r:>10.0f}{'ops/s':>7}{ns_r / ss_r:>11.2f}")
        print(f"{'S3 multipart upload':<36}{(mb + ns.objects * 12345 / 1e6) / mp_up:>10.1f}{'MB/s':>7}"
              f"{med(t['nw']) / mp_up:>11.2f}")
        print(f"{'S3 multipart complete':<36}{mp_done * 1e3:>10.1f}{'ms':>7}")
    finally:
        dc.down()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
