"""Metadata operation rates of the dev cluster: create, stat, rename and unlink of empty files by N
concurrent client tasks, beside the framed-RPC round-trip rate measured in the same run (the
transport's ceiling for one-RPC operations).

    python benchmarks/metadata.py [--tasks 32] [--files 4000] [--procs 1] [--dir DIR]

Every operation is one meta RPC and one serializable transaction on meta's rocksdb engine (group
commit: concurrent transactions share an fsync). unlink also queues the inode for GC.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from threefs.cli.devcluster import ClusterSpec, DevCluster  # noqa: E402
from threefs.client.fs import AsyncClient  # noqa: E402
from threefs.net.rpc import RpcClient, RpcServer, install_uvloop  # noqa: E402
from threefs.proto import meta_pb2  # noqa: E402

PHASES = ("create", "stat", "rename", "unlink")


# ---- the limit: framed-RPC round trips -------------------------------------------------------
def _echo_server(port_q) -> None:
    install_uvloop()

    async def main() -> None:
        server = RpcServer("127.0.0.1", 0)

        async def echo(req, payload):
            return meta_pb2.StatFsRsp(), None

        server.register("Echo.Ping", meta_pb2.StatFsReq, echo)
        address = await server.start()
        port_q.put(address)
        await asyncio.Event().wait()

    asyncio.run(main())


def rpc_rate(tasks: int, seconds: float = 3.0) -> float:
    """Round trips/s of a no-op framed RPC from `tasks` concurrent tasks to another process."""
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_echo_server, args=(q,), daemon=True)
    p.start()
    address = q.get(timeout=30)

    async def run() -> float:
        rpc = RpcClient()
        count = 0
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            nonlocal count
            while time.perf_counter() < deadline:
                await rpc.call(address, "Echo.Ping", meta_pb2.StatFsReq(), meta_pb2.StatFsRsp)
                count += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(tasks)))
        dt = time.perf_counter() - t0
        await rpc.close()
        return count / dt

    try:
        install_uvloop()
        return asyncio.run(run())
    finally:
        p.kill()
        p.join()


# ---- the operations ------------------------------------------------------------------------------
async def _phases(mgmtd: str, root: str, proc: int, tasks: int, files: int, barrier) -> dict[str, tuple[float, float]]:
    """Run every phase (after a barrier across processes); returns phase -> (start, end) wall times."""
    times = {}
    async with AsyncClient(mgmtd) as c:
        names = [f"{root}/p{proc}-f{i}" for i in range(files)]
        chunks = [names[t::tasks] for t in range(tasks)]
        ops = {
            "create": lambda n: c.mknod(n),
            "stat": lambda n: c.stat(n),
            "rename": lambda n: c.rename(n, n + ".r"),
            "unlink": lambda n: c.remove(n + ".r"),
        }
        for phase in PHASES:
            await asyncio.get_running_loop().run_in_executor(None, barrier.wait)

            async def worker(mine: list[str], op=ops[phase]) -> None:
                for n in mine:
                    await op(n)

            t0 = time.time()
            await asyncio.gather(*(worker(m) for m in chunks))
            times[phase] = (t0, time.time())
    return times


def _client_proc(mgmtd: str, root: str, proc: int, tasks: int, files: int, barrier, out) -> None:
    install_uvloop()
    out.put(asyncio.run(_phases(mgmtd, root, proc, tasks, files, barrier)))


def run_ops(mgmtd: str, procs: int, tasks: int, files: int) -> dict[str, float]:
    """ops/s of each phase over all client processes."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(procs)
    out = ctx.Queue()
    per_proc = files // procs
    ps = [ctx.Process(target=_client_proc, args=(mgmtd, "/bench", i, tasks // procs or 1, per_proc, barrier, out))
          for i in range(procs)]
    for p in ps:
        p.start()
    results = [out.get(timeout=1800) for _ in ps]
    for p in ps:
        p.join()
    rates = {}
    for phase in PHASES:
        start = min(r[phase][0] for r in results)
        end = max(r[phase][1] for r in results)
        rates[phase] = per_proc * procs / (end - start)
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=32, help="concurrent client tasks (over all processes)")
    ap.add_argument("--files", type=int, default=4000, help="files per phase (over all processes)")
    ap.add_argument("--procs", type=int, default=1, help="client processes")
    ap.add_argument("--dir", type=Path, default=None, help="where the dev cluster keeps its data (default: a temp dir)")
    ns = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="threefs-mdbench-", dir=ns.dir))
    dc = DevCluster(base / "cluster", ClusterSpec(storage_nodes=1, targets_per_node=1, replicas=1,
                                                  heartbeat_interval=0.5))
    try:
        dc.up(timeout=120)

        async def prepare() -> None:
            async with AsyncClient(dc.mgmtd_address) as c:
                await c.mkdir("/bench")

        install_uvloop()
        asyncio.run(prepare())
        limit = rpc_rate(ns.tasks)
        rates = run_ops(dc.mgmtd_address, ns.procs, ns.tasks, ns.files)
        print(f"metadata ops of empty files: {ns.files} files, {ns.tasks} tasks in {ns.procs} client process(es), "
              f"meta on rocksdb; cpus={os.cpu_count()}")
        print(f"  {'limit: framed RPC no-op':<26} {limit:>9.0f} ops/s")
        for phase in PHASES:
            print(f"  {phase:<26} {rates[phase]:>9.0f} ops/s   {rates[phase] / limit:6.1%} of the RPC limit")
    finally:
        dc.down()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
