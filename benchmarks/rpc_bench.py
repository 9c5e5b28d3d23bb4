"""Benchmark threefs.net.rpc on loopback against raw Python TCP measured in the same run.

Run: `python benchmarks/rpc_bench.py [--volume-mib 2048] [--calls 20000] [--repeat 3] [--no-uvloop]`.
Peers (raw TCP and the RPC server) run in separate processes so both sides get a core.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import socket
import struct
import sys
import time
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from google.protobuf import wrappers_pb2 as w  # noqa: E402

from threefs.net.rpc import RpcClient, RpcServer, install_uvloop  # noqa: E402

MIB = 1 << 20
SMALL = 100


# ---- raw TCP peer (blocking sockets, preallocated buffers) -----------------------------------
def _recv_exact(sock: socket.socket, view: memoryview) -> None:
    while view:
        n = sock.recv_into(view)
        if not n:
            raise ConnectionError("peer closed")
        view = view[n:]


def raw_peer(listener: socket.socket) -> None:
    """Serve raw-TCP tests: 'S' sink (count bytes), 'G' source (send N bytes), 'E' stream echo."""
    buf = bytearray(MIB)
    view = memoryview(buf)
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            op = conn.recv(1)
            if not op or op == b"Q":
                return
            if op == b"S":
                total = 0
                while n := conn.recv_into(view):
                    total += n
                conn.sendall(struct.pack("<Q", total))
            elif op == b"G":
                (total,) = struct.unpack("<Q", conn.recv(8))
                for _ in range(total // MIB):
                    conn.sendall(view)
            elif op == b"E":
                while n := conn.recv_into(view):
                    conn.sendall(view[:n])


def raw_bulk_send(port: int, volume: int) -> float:
    """Client -> peer: blocking sendall of 1 MiB messages; bytes/s."""
    data = memoryview(bytearray(os.urandom(MIB)))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"S")
        t = time.perf_counter()
        for _ in range(volume // MIB):
            s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        (total,) = struct.unpack("<Q", s.recv(8))
        return total / (time.perf_counter() - t)


def raw_bulk_recv(port: int, volume: int) -> float:
    """Peer -> client: recv_into a preallocated 1 MiB buffer; bytes/s."""
    buf = memoryview(bytearray(MIB))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"G" + struct.pack("<Q", volume))
        t = time.perf_counter()
        for _ in range(volume // MIB):
            _recv_exact(s, buf)
        return volume / (time.perf_counter() - t)


def raw_ping_pong(port: int, count: int) -> float:
    """Sequential 100-byte round trips; round trips/s."""
    msg, buf = os.urandom(SMALL), memoryview(bytearray(SMALL))
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"E")
        t = time.perf_counter()
        for _ in range(count):
            s.sendall(msg)
            _recv_exact(s, buf)
        return count / (time.perf_counter() - t)


# ---- RPC server process ----------------------------------------------------------------------
def rpc_server_main(conn, use_uvloop: bool) -> None:
    if use_uvloop:
        install_uvloop()
    source = memoryview(bytes(os.urandom(4 * MIB)))

    async def put(req: w.UInt64Value, payload: memoryview | None):
        return w.UInt64Value(value=len(payload) if payload is not None else 0), None

    async def get(req: w.UInt64Value, payload):
        return w.UInt64Value(value=req.value), source[: req.value]

    async def echo(req: w.BytesValue, payload):
        return req, None

    async def main() -> None:
        server = RpcServer()
        server.register("Bench.Put", w.UInt64Value, put)
        server.register("Bench.Get", w.UInt64Value, get)
        server.register("Bench.Echo", w.BytesValue, echo)
        conn.send(await server.start())
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"
        await server.stop()

    asyncio.run(main())


async def run_workers(n: int, per_worker: int, one: Callable[[int], object]) -> float:
    """Run `n` concurrent workers of `per_worker` calls each; seconds taken."""
    async def worker(k: int) -> None:
        for _ in range(per_worker):
            await one(k)

    t = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(n)))
    return time.perf_counter() - t


async def rpc_benchmarks(address: str, volume: int, calls: int, repeat: int) -> dict[str, float]:
    """Each figure is the best of `repeat` runs (these VMs are noisy)."""
    client = RpcClient()

    async def best(n: int, per_worker: int, one: Callable[[int], object]) -> float:
        return min([await run_workers(n, per_worker, one) for _ in range(repeat)])

    results: dict[str, float] = {}
    inflight = 8
    try:
        for size in (MIB, 4 * MIB):
            payload = memoryview(bytearray(os.urandom(size)))
            n = max(1, volume // size // inflight)

            async def put(_: int) -> None:
                rsp, _p = await client.call(address, "Bench.Put", w.UInt64Value(), w.UInt64Value,
                                            payload=payload, timeout=60)
                assert rsp.value == size

            bufs = [bytearray(size) for _ in range(inflight)]

            async def get(k: int) -> None:
                await client.call(address, "Bench.Get", w.UInt64Value(value=size), w.UInt64Value,
                                  timeout=60, sink=lambda rsp: [memoryview(bufs[k])])

            await run_workers(inflight, 2, put)  # warm up
            results[f"put {size // MIB}"] = n * inflight * size / await best(inflight, n, put)
            await run_workers(inflight, 2, get)
            results[f"get {size // MIB}"] = n * inflight * size / await best(inflight, n, get)

        msg = w.BytesValue(value=os.urandom(SMALL))

        async def echo(_: int) -> None:
            await client.call(address, "Bench.Echo", msg, w.BytesValue)

        await run_workers(1, 500, echo)
        results["small seq"] = calls / await best(1, calls, echo)
        results["small 64"] = (calls // 64 * 64) / await best(64, calls // 64, echo)
    finally:
        await client.close()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--volume-mib", type=int, default=2048, help="bytes moved per bulk figure")
    ap.add_argument("--calls", type=int, default=20000, help="calls per small-call figure")
    ap.add_argument("--repeat", type=int, default=3, help="report the best of this many runs")
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args()
    volume = args.volume_mib * MIB
    ctx = mp.get_context("spawn")

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    peer = ctx.Process(target=raw_peer, args=(listener,), daemon=True)
    peer.start()
    raw_bulk_send(port, 256 * MIB)  # warm up
    raw_send = max(raw_bulk_send(port, volume) for _ in range(args.repeat))
    raw_recv = max(raw_bulk_recv(port, volume) for _ in range(args.repeat))
    raw_pp = max(raw_ping_pong(port, args.calls) for _ in range(args.repeat))
    socket.create_connection(("127.0.0.1", port)).sendall(b"Q")
    peer.join(10)
    listener.close()

    use_uvloop = not args.no_uvloop and install_uvloop()
    parent, child = ctx.Pipe()
    server = ctx.Process(target=rpc_server_main, args=(child, use_uvloop), daemon=True)
    server.start()
    address = parent.recv()
    try:
        rpc = asyncio.run(rpc_benchmarks(address, volume, args.calls, args.repeat))
    finally:
        parent.send("stop")
        server.join(10)

    gbs = lambda v: f"{v / 1e9:.2f} GB/s"  # noqa: E731
    rate = lambda v: f"{v / 1e3:.1f}k/s"  # noqa: E731
    rows = [
        ("raw TCP 1 MiB sendall, client->peer", gbs(raw_send), gbs(raw_send), 1.0),
        ("raw TCP 1 MiB recv_into, peer->client", gbs(raw_recv), gbs(raw_recv), 1.0),
        ("raw TCP 100 B ping-pong", rate(raw_pp), rate(raw_pp), 1.0),
    ]
    for size in (1, 4):
        put, get = rpc[f"put {size}"], rpc[f"get {size}"]
        rows.append((f"rpc {size} MiB client->server, 8 in flight", gbs(put), gbs(raw_send), put / raw_send))
        rows.append((f"rpc {size} MiB server->client sink, 8 in flight", gbs(get), gbs(raw_recv), get / raw_recv))
    rows.append(("rpc 100 B calls, sequential", rate(rpc["small seq"]), rate(raw_pp), rpc["small seq"] / raw_pp))
    rows.append(("rpc 100 B calls, 64 in flight", rate(rpc["small 64"]), rate(raw_pp), rpc["small 64"] / raw_pp))

    print(f"threefs.net.rpc on loopback ({'uvloop' if use_uvloop else 'asyncio'}, "
          f"{os.cpu_count()} CPUs, {args.volume_mib} MiB per bulk figure, {args.calls} small calls, "
          f"best of {args.repeat})")
    print(f"{'measurement':<46} {'result':>12} {'raw limit':>12} {'ratio':>6}")
    for name, value, limit, ratio in rows:
        print(f"{name:<46} {value:>12} {limit:>12} {ratio:>6.2f}")


if __name__ == "__main__":
    main()
