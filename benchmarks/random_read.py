"""Random reads through threefs: the batched zero-copy ring (usrbio) beside plain per-call pread.

    python benchmarks/random_read.py [--size-mib 2048] [--files 8] [--mgmtd HOST:PORT] [--mount DIR]

Writes a file set (default 2 GiB in 8 files; a temporary dev cluster unless --mgmtd is given),
then reads 4 KiB, 64 KiB and 1 MiB blocks at random aligned offsets:
  - plain:   File.pread through the os-like Client, one call at a time;
  - batched: one ring per batch size (1, 16, 256, 1024) with io_depth = batch size, each round
             prepares a full batch into an iovec, submits it and waits for all of it;
  - FUSE:    os.pread on the same files under --mount (the FUSE mount of a later issue).
It prints IOPS and MiB/s per case and the ratio of batched 4 KiB at io_depth 256 to plain 4 KiB
(target: >= 5x), once from the table and once as the median of alternating short runs (less
sensitive to load from other processes). Data is served from the storage nodes' page cache.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threefs.cli.devcluster import ClusterSpec, DevCluster  # noqa: E402
from threefs.client.fs import Client  # noqa: E402
from threefs.client.usrbio import deregister_fd, make_ioring, make_iovec, register_fd  # noqa: E402
from threefs.net.rpc import install_uvloop  # noqa: E402

MIB = 1 << 20
SIZES = {"4KiB": 4 << 10, "64KiB": 64 << 10, "1MiB": 1 << 20}
BATCHES = (1, 16, 256, 1024)


def write_files(c: Client, root: str, total: int, files: int) -> list[str]:
    """`files` files of total/files bytes each, written with concurrent 16 MiB pwrites."""
    c.makedirs(root, exist_ok=True)
    per = total // files
    block = os.urandom(16 * MIB)
    paths = []
    t0 = time.perf_counter()

    async def one(path: str) -> None:
        f = await c.aio.open(path, "wb")
        try:
            sem = asyncio.Semaphore(4)

            async def piece(off: int) -> None:
                async with sem:
                    await f.pwrite(memoryview(block)[:min(len(block), per - off)], off)

            await asyncio.gather(*(piece(off) for off in range(0, per, len(block))))
        finally:
            await f.close()

    for i in range(files):
        path = f"{root}/data-{i:03d}"
        c.run(one(path))
        paths.append(path)
    dt = time.perf_counter() - t0
    print(f"wrote {files} files x {per / MIB:.0f} MiB = {files * per / MIB:.0f} MiB in {dt:.1f}s "
          f"({files * per / MIB / dt:.0f} MiB/s, 3 replicas)")
    return paths


def offsets(rng: random.Random, lengths: list[int], size: int, n: int) -> list[tuple[int, int]]:
    """n (file index, offset) pairs: random files, offsets aligned to the I/O size."""
    out = []
    for _ in range(n):
        i = rng.randrange(len(lengths))
        out.append((i, rng.randrange(0, (lengths[i] - size) // size + 1) * size))
    return out


def plain(c: Client, paths: list[str], lengths: list[int], size: int, seconds: float) -> tuple[int, float]:
    """(ops, seconds) of one-at-a-time File.pread calls."""
    handles = [c.open(p, "rb") for p in paths]
    rng = random.Random(size)
    try:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for i, off in offsets(rng, lengths, size, 16):
                if len(handles[i].pread(size, off)) != size:
                    raise RuntimeError("short read")
                n += 1
        return n, time.perf_counter() - t0
    finally:
        for h in handles:
            h.close()


def batched(c: Client, fds: list[int], lengths: list[int], size: int, batch: int, seconds: float,
            iov) -> tuple[int, float]:
    """(ops, seconds) of full batches through a ring with io_depth = batch."""
    rng = random.Random(size * 7919 + batch)
    with make_ioring(c, batch, for_read=True, io_depth=batch) as ring:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for k, (i, off) in enumerate(offsets(rng, lengths, size, batch)):
                ring.prepare(iov[k * size:(k + 1) * size], True, fds[i], off)
            for r in ring.submit().wait(min_results=batch):
                if r.result != size:
                    raise RuntimeError(f"read returned {r.result}")
            n += batch
        return n, time.perf_counter() - t0


def fuse(mount: str, paths: list[str], lengths: list[int], size: int, seconds: float) -> tuple[int, float]:
    """(ops, seconds) of one-at-a-time os.pread calls on the files under a FUSE mount."""
    fds = [os.open(os.path.join(mount, p.lstrip("/")), os.O_RDONLY) for p in paths]
    rng = random.Random(size + 1)
    try:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for i, off in offsets(rng, lengths, size, 16):
                if len(os.pread(fds[i], size, off)) != size:
                    raise RuntimeError("short read")
                n += 1
        return n, time.perf_counter() - t0
    finally:
        for fd in fds:
            os.close(fd)


def row(name: str, ops: int, dt: float, size: int) -> float:
    iops = ops / dt
    print(f"  {name:<28} {iops:>10.0f} IOPS {iops * size / MIB:>9.1f} MiB/s   ({ops} reads in {dt:.1f}s)", flush=True)
    return iops


def run(mgmtd: str, args: argparse.Namespace) -> int:
    install_uvloop()
    c = Client(mgmtd)
    try:
        root = args.root
        total = args.size_mib * MIB
        if args.reuse and c.exists(root) and len(c.listdir(root)) >= args.files:
            paths = [f"{root}/data-{i:03d}" for i in range(args.files)]
            print(f"reusing {root}")
        else:
            if c.exists(root):
                c.rmtree(root)
            paths = write_files(c, root, total, args.files)
        lengths = [c.stat(p).st_size for p in paths]
        fds = [register_fd(p, client=c) for p in paths]
        print(f"file set: {len(paths)} files, {sum(lengths) / MIB:.0f} MiB; {args.seconds:.1f}s per case")
        print("FUSE mount: " + (args.mount if args.mount else "not given"))
        results: dict[tuple[str, str], float] = {}
        for name, size in SIZES.items():
            print(f"{name} random reads:")
            ops, dt = plain(c, paths, lengths, size, args.seconds)
            results[(name, "plain")] = row("plain pread (1 call at a time)", ops, dt, size)
            if args.mount:
                ops, dt = fuse(args.mount, paths, lengths, size, args.seconds)
                results[(name, "fuse")] = row("FUSE os.pread", ops, dt, size)
            fit = [b for b in BATCHES if b * size <= args.max_batch_mib * MIB]
            iov = make_iovec(max(fit) * size)
            try:
                for b in fit:
                    results[(name, f"b{b}")] = row(f"batched, io_depth {b}",
                                                   *batched(c, fds, lengths, size, b, args.seconds, iov), size)
            finally:
                iov.close()
            for b in BATCHES:
                if b not in fit:
                    print(f"  batched, io_depth {b:<14} skipped ({b} x {name} > --max-batch-mib {args.max_batch_mib})")
        ratio = results[("4KiB", "b256")] / results[("4KiB", "plain")]
        print(f"4 KiB: batched at io_depth 256 / plain per-call = {ratio:.1f}x (target >= 5x)")
        # the machine is shared and noisy: also alternate short runs of both and take the median ratio
        iov = make_iovec(256 * 4096)
        try:
            rounds = []
            for _ in range(args.rounds):
                p_ops, p_dt = plain(c, paths, lengths, 4096, 1.0)
                b_ops, b_dt = batched(c, fds, lengths, 4096, 256, 1.0, iov)
                rounds.append((b_ops / b_dt) / (p_ops / p_dt))
        finally:
            iov.close()
        rounds.sort()
        print(f"4 KiB: same ratio over {args.rounds} alternating 1s rounds: median {rounds[len(rounds) // 2]:.1f}x "
              f"(min {rounds[0]:.1f}x, max {rounds[-1]:.1f}x)")
        ratio = rounds[len(rounds) // 2]
        for fd in fds:
            deregister_fd(fd)
        if args.mount:
            print(f"4 KiB: batched at io_depth 256 / FUSE per-call = "
                  f"{results[('4KiB', 'b256')] / results[('4KiB', 'fuse')]:.1f}x")
        return 0 if ratio >= 5 else 1
    finally:
        c.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mgmtd", default=None, help="use this cluster (default: start a temporary dev cluster)")
    ap.add_argument("--dir", default=None, help="data directory of the temporary dev cluster")
    ap.add_argument("--root", default="/bench/random-read", help="threefs directory of the file set")
    ap.add_argument("--size-mib", type=int, default=2048, help="total size of the file set")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--chunk-mib", type=int, default=1, help="chunk size of the temporary cluster")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measured case")
    ap.add_argument("--max-batch-mib", type=int, default=256, help="largest batch (batch x I/O size) to run")
    ap.add_argument("--rounds", type=int, default=5, help="alternating plain/batched rounds for the 4 KiB ratio")
    ap.add_argument("--mount", default=None, help="a threefs FUSE mount to compare with")
    ap.add_argument("--reuse", action="store_true", help="reuse an existing file set under --root")
    args = ap.parse_args()
    if args.mgmtd:
        return run(args.mgmtd, args)
    with tempfile.TemporaryDirectory(prefix="threefs-bench-", dir=args.dir) as tmp:
        dc = DevCluster(tmp, ClusterSpec(base_port=0, chunk_size=args.chunk_mib * MIB))
        try:
            t0 = time.perf_counter()
            dc.up(timeout=90)
            print(f"dev cluster up in {time.perf_counter() - t0:.1f}s: 3 storage nodes x {dc.spec.targets_per_node} "
                  f"targets, 3 replicas, {args.chunk_mib} MiB chunks (mgmtd {dc.mgmtd_address})")
            return run(dc.mgmtd_address, args)
        finally:
            dc.down()


if __name__ == "__main__":
    sys.exit(main())
