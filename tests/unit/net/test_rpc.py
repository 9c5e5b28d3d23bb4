"""threefs.net.rpc over real sockets on 127.0.0.1 (each test runs on asyncio and on uvloop)."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import socket
import sys
from typing import AsyncIterator

import pytest
from google.protobuf import wrappers_pb2 as w

import threefs
from threefs.common.errors import Code, FSError, make_error
from threefs.net.rpc import RpcClient, RpcServer, install_uvloop
from threefs.proto import storage_pb2

pytestmark = pytest.mark.timeout(60)

WAIT = 10.0  # seconds any single wait in a test may take


def data(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def echo(req: w.BytesValue, payload: memoryview | None):
    """Echo the message and the payload (as a list, to exercise gather-writes)."""
    return req, None if payload is None else [payload[: len(payload) // 2], payload[len(payload) // 2:]]


async def digest(req: w.BytesValue, payload: memoryview | None):
    assert isinstance(payload, memoryview) and not payload.readonly and isinstance(payload.obj, bytearray)
    return w.BytesValue(value=hashlib.sha256(payload).digest()), None


async def generate(req: storage_pb2.ReadIO, payload: memoryview | None):
    """Answer a ReadIO with `length` deterministic bytes seeded by `offset`."""
    return storage_pb2.BatchReadRsp(results=[storage_pb2.ReadResult(length=req.length)]), data(req.length, req.offset)


@contextlib.asynccontextmanager
async def serving(port: int = 0, **extra) -> AsyncIterator[tuple[RpcServer, RpcClient, str]]:
    server = RpcServer(port=port)
    server.register("T.Echo", w.BytesValue, echo)
    server.register("T.Digest", w.BytesValue, digest)
    server.register("T.Generate", storage_pb2.ReadIO, generate)
    for name, (rtype, handler) in extra.items():
        server.register(f"T.{name}", rtype, handler)
    address = await server.start()
    client = RpcClient()
    try:
        yield server, client, address
    finally:
        await client.close()
        await server.stop()


@pytest.mark.asyncio
async def test_round_trip_without_and_with_payload():
    async with serving() as (server, client, addr):
        assert addr.startswith("127.0.0.1:") and server.address == addr
        msg, payload = await client.call(addr, "T.Echo", w.BytesValue(value=b"hello"), w.BytesValue)
        assert msg.value == b"hello" and payload is None
        msg, payload = await client.call(addr, "T.Echo", w.BytesValue(value=b"x"), w.BytesValue,
                                         payload=[b"abc", bytearray(b"def"), memoryview(b"ghi")])
        assert msg.value == b"x" and isinstance(payload, memoryview) and bytes(payload) == b"abcdefghi"


@pytest.mark.asyncio
async def test_register_service_exposes_methods():
    class Counter:
        def __init__(self) -> None:
            self.total = 0

        async def Add(self, req: w.UInt64Value, payload):
            self.total += req.value
            return w.UInt64Value(value=self.total), None

    counter = Counter()
    async with serving() as (server, client, addr):
        server.register_service("Counter", counter, {"Add": w.UInt64Value})
        for n in (2, 3):
            msg, _ = await client.call(addr, "Counter.Add", w.UInt64Value(value=n), w.UInt64Value)
        assert msg.value == 5 == counter.total


def test_install_uvloop_sets_policy():
    old = asyncio.get_event_loop_policy()
    try:
        installed = install_uvloop()
        assert installed == (type(asyncio.get_event_loop_policy()).__module__.startswith("uvloop"))
    finally:
        asyncio.set_event_loop_policy(old)


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [1 << 20, 16 << 20])
async def test_bulk_payload_byte_exact_both_directions(size):
    blob = data(size, size)
    async with serving() as (_, client, addr):
        msg, _ = await client.call(addr, "T.Digest", w.BytesValue(), w.BytesValue, payload=blob)
        assert msg.value == hashlib.sha256(blob).digest()
        _, payload = await client.call(addr, "T.Echo", w.BytesValue(), w.BytesValue, payload=memoryview(blob))
        assert payload.nbytes == size and payload == blob
        rsp, payload = await client.call(addr, "T.Generate", storage_pb2.ReadIO(offset=size, length=size),
                                         storage_pb2.BatchReadRsp)
        assert rsp.results[0].length == size and payload == blob


@pytest.mark.asyncio
async def test_concurrent_large_payloads_stay_intact():
    """8 x 4 MiB in flight each way at once: backpressure and chunked sends keep frames whole."""
    blobs = [data(4 << 20, i) for i in range(8)]
    async with serving() as (_, client, addr):
        calls = [client.call(addr, "T.Echo", w.BytesValue(value=bytes([i])), w.BytesValue, payload=b)
                 for i, b in enumerate(blobs)]
        results = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
        for i, (msg, payload) in enumerate(results):
            assert msg.value == bytes([i]) and payload == blobs[i]


@pytest.mark.asyncio
@pytest.mark.parametrize("size", [3000, 3 << 20])  # gathered in scratch / received directly
async def test_sink_scatters_into_caller_buffer(size):
    expected = data(size, 7)
    buf = bytearray(b"\xee" * (size + 300))
    view = memoryview(buf)
    a, b = size // 3, size // 2
    segments = [view[10:10 + a], view[100 + a:100 + b], view[200 + b:200 + size]]
    seen = []

    def sink(rsp: storage_pb2.BatchReadRsp) -> list[memoryview]:
        seen.append(rsp.results[0].length)
        return segments

    async with serving() as (_, client, addr):
        rsp, payload = await client.call(addr, "T.Generate", storage_pb2.ReadIO(offset=7, length=size),
                                         storage_pb2.BatchReadRsp, sink=sink)
    assert payload is None and seen == [size] and rsp.results[0].length == size
    assert buf[10:10 + a] == expected[:a]
    assert buf[100 + a:100 + b] == expected[a:b]
    assert buf[200 + b:200 + size] == expected[b:]
    gaps = buf[:10] + buf[10 + a:100 + a] + buf[100 + b:200 + b] + buf[200 + size:]
    assert gaps == b"\xee" * len(gaps)


@pytest.mark.asyncio
async def test_sink_mismatch_or_error_fails_only_that_call():
    async with serving() as (server, client, addr):
        for size in (1000, 2 << 20):
            read = storage_pb2.ReadIO(offset=1, length=size)
            short = bytearray(size - 1)
            with pytest.raises(FSError) as err:
                await client.call(addr, "T.Generate", read, storage_pb2.BatchReadRsp,
                                  sink=lambda _: [memoryview(short)])
            assert err.value.code == Code.INVALID_ARGUMENT and short == bytearray(size - 1)
            with pytest.raises(FSError) as err:  # read-only destination
                await client.call(addr, "T.Generate", read, storage_pb2.BatchReadRsp,
                                  sink=lambda _: [memoryview(bytes(size))])
            assert err.value.code == Code.INVALID_ARGUMENT

            def broken(_):
                raise ValueError("no buffer for you")

            with pytest.raises(ValueError, match="no buffer for you"):
                await client.call(addr, "T.Generate", read, storage_pb2.BatchReadRsp, sink=broken)
            _, payload = await client.call(addr, "T.Generate", read, storage_pb2.BatchReadRsp)
            assert payload == data(size, 1)
        assert len(server._conns) == 1  # the same connection served every call


@pytest.mark.asyncio
async def test_pipelined_calls_complete_out_of_order():
    n = 500
    released = [asyncio.Event() for _ in range(n)]
    arrived: list[int] = []
    all_arrived = asyncio.Event()

    async def hold(req: w.UInt64Value, payload):
        i = req.value
        arrived.append(i)
        if len(arrived) == n:
            all_arrived.set()
        await released[i].wait()
        if i:
            released[i - 1].set()  # responses go out strictly last-to-first
        return w.UInt64Value(value=i * 3), (str(i).encode() if i % 2 else None)

    finished: list[int] = []

    async def one(client: RpcClient, addr: str, i: int) -> None:
        msg, payload = await client.call(addr, "T.Hold", w.UInt64Value(value=i), w.UInt64Value)
        assert msg.value == i * 3
        assert (payload == str(i).encode()) if i % 2 else payload is None
        finished.append(i)

    async with serving(Hold=(w.UInt64Value, hold)) as (server, client, addr):
        calls = asyncio.gather(*(one(client, addr, i) for i in range(n)))
        await asyncio.wait_for(all_arrived.wait(), WAIT)  # every request is in flight at once
        assert len(server._conns) == 1
        released[n - 1].set()
        await asyncio.wait_for(calls, WAIT)
    assert finished == list(reversed(range(n)))


@pytest.mark.asyncio
async def test_connections_per_peer_round_robin():
    async with serving() as (server, _, addr):
        client = RpcClient(connections_per_peer=3)
        try:
            for _ in range(9):
                await client.call(addr, "T.Echo", w.BytesValue(value=b"v"), w.BytesValue)
            assert len(server._conns) == 3
        finally:
            await client.close()


@pytest.mark.asyncio
async def test_errors_propagate_with_codes():
    async def not_found(req, payload):
        raise make_error(Code.NOT_FOUND, "no such chunk")

    async def crash(req, payload):
        raise RuntimeError("boom")

    async def text(req, payload):
        return req, None

    handlers = dict(NotFound=(w.BytesValue, not_found), Crash=(w.BytesValue, crash), Text=(w.StringValue, text))
    async with serving(**handlers) as (_, client, addr):
        with pytest.raises(FileNotFoundError) as err:
            await client.call(addr, "T.NotFound", w.BytesValue(), w.BytesValue)
        assert err.value.code == Code.NOT_FOUND and err.value.strerror == "no such chunk"
        with pytest.raises(FSError) as err:
            await client.call(addr, "T.Crash", w.BytesValue(), w.BytesValue, payload=b"p" * 100)
        assert err.value.code == Code.INTERNAL and "boom" in err.value.strerror
        with pytest.raises(FSError) as err:
            await client.call(addr, "T.Nope", w.BytesValue(), w.BytesValue)
        assert err.value.code == Code.UNKNOWN_METHOD and "T.Nope" in err.value.strerror
        with pytest.raises(FSError) as err:  # undecodable request body (a string that is not UTF-8)
            await client.call(addr, "T.Text", w.BytesValue(value=b"\xff\xfe"), w.StringValue)
        assert err.value.code == Code.BAD_REQUEST
        msg, _ = await client.call(addr, "T.Echo", w.BytesValue(value=b"still fine"), w.BytesValue)
        assert msg.value == b"still fine"


@pytest.mark.asyncio
@pytest.mark.parametrize("late_size", [0, 100, 2 << 20])
@pytest.mark.parametrize("connected", [False, True], ids=["connecting", "connected"])
async def test_timeout_then_late_response_is_discarded(late_size, connected):
    """Both ways a call waits: connecting first (asyncio.timeout), or on an open connection (a timer)."""
    release, done = asyncio.Event(), asyncio.Event()

    async def slow(req: w.UInt64Value, payload):
        await release.wait()
        done.set()
        return w.UInt64Value(value=999), (b"L" * late_size or None)

    async with serving(Slow=(w.UInt64Value, slow)) as (server, client, addr):
        if connected:
            msg, _ = await client.call(addr, "T.Echo", w.BytesValue(value=b"up"), w.BytesValue)
            assert msg.value == b"up"
        target = bytearray(late_size)
        with pytest.raises(FSError) as err:
            await client.call(addr, "T.Slow", w.UInt64Value(), w.UInt64Value, timeout=0.2,
                              sink=lambda _: [memoryview(target)])
        assert err.value.code == Code.TIMEOUT and isinstance(err.value, TimeoutError)
        release.set()
        await asyncio.wait_for(done.wait(), WAIT)  # the late response is written before our next call
        for size in (0, 5000, 1 << 20):
            rsp, payload = await client.call(addr, "T.Generate", storage_pb2.ReadIO(offset=3, length=size),
                                             storage_pb2.BatchReadRsp)
            assert rsp.results[0].length == size and (payload or b"") == data(size, 3)
        assert target == bytearray(late_size)  # the late payload did not land in the old sink
        assert len(server._conns) == 1


@pytest.mark.asyncio
async def test_server_stop_fails_inflight_and_client_reconnects():
    entered = asyncio.Event()

    async def block(req, payload):
        entered.set()
        await asyncio.Event().wait()

    server = RpcServer()
    server.register("T.Block", w.BytesValue, block)
    addr = await server.start()
    port = int(addr.rsplit(":", 1)[1])
    client = RpcClient()
    try:
        inflight = [asyncio.ensure_future(client.call(addr, "T.Block", w.BytesValue(), w.BytesValue))
                    for _ in range(3)]
        await asyncio.wait_for(entered.wait(), WAIT)
        await server.stop()
        for fut in inflight:
            with pytest.raises(FSError) as err:
                await asyncio.wait_for(fut, WAIT)
            assert err.value.code == Code.UNAVAILABLE and addr in err.value.strerror
        async with serving(port=port) as (_, _c, addr2):
            assert addr2 == addr
            msg, _ = await client.call(addr, "T.Echo", w.BytesValue(value=b"back"), w.BytesValue)
            assert msg.value == b"back"
    finally:
        await client.close()


SERVER_SCRIPT = """
import asyncio, sys
from google.protobuf import wrappers_pb2 as w
from threefs.net.rpc import RpcServer

async def block(req, payload):
    print("entered", flush=True)
    await asyncio.Event().wait()

async def echo(req, payload):
    return req, None

async def main():
    server = RpcServer(port=int(sys.argv[1]))
    server.register("T.Block", w.BytesValue, block)
    server.register("T.Echo", w.BytesValue, echo)
    print(await server.start(), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


REPO = os.path.dirname(os.path.dirname(os.path.abspath(threefs.__file__)))
CHILD_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}


async def spawn_server(port: int) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", SERVER_SCRIPT, str(port),
                                                stdout=asyncio.subprocess.PIPE, env=CHILD_ENV)
    line = await asyncio.wait_for(proc.stdout.readline(), WAIT)
    return proc, line.decode().strip()


@pytest.mark.asyncio
async def test_killed_server_fails_inflight_and_client_reconnects():
    proc, addr = await spawn_server(0)
    client = RpcClient()
    try:
        call = asyncio.ensure_future(client.call(addr, "T.Block", w.BytesValue(), w.BytesValue))
        assert await asyncio.wait_for(proc.stdout.readline(), WAIT) == b"entered\n"
        proc.kill()
        await proc.wait()
        with pytest.raises(FSError) as err:
            await asyncio.wait_for(call, WAIT)
        assert err.value.code == Code.UNAVAILABLE
        with pytest.raises(FSError) as err:  # nobody listens now
            await client.call(addr, "T.Echo", w.BytesValue(), w.BytesValue)
        assert err.value.code == Code.UNAVAILABLE and addr in err.value.strerror
        proc, addr2 = await spawn_server(int(addr.rsplit(":", 1)[1]))
        assert addr2 == addr
        msg, _ = await client.call(addr, "T.Echo", w.BytesValue(value=b"again"), w.BytesValue)
        assert msg.value == b"again"
    finally:
        await client.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@pytest.mark.asyncio
async def test_close_during_connect_fails_the_call_as_unavailable(monkeypatch):
    client = RpcClient()
    connecting = asyncio.Event()

    async def never(address: str):
        connecting.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(client, "_connect", never)
    call = asyncio.ensure_future(client.call("127.0.0.1:9", "T.Echo", w.BytesValue(), w.BytesValue))
    await asyncio.wait_for(connecting.wait(), WAIT)
    await client.close()
    with pytest.raises(FSError) as err:
        await asyncio.wait_for(call, WAIT)
    assert err.value.code == Code.UNAVAILABLE and "127.0.0.1:9" in err.value.strerror


@pytest.mark.asyncio
async def test_connect_refused_names_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = "127.0.0.1:%d" % s.getsockname()[1]
    client = RpcClient(connect_timeout=2.0)
    try:
        with pytest.raises(FSError) as err:
            await client.call(addr, "T.Echo", w.BytesValue(), w.BytesValue)
        assert err.value.code == Code.UNAVAILABLE and isinstance(err.value, ConnectionError)
        assert addr in err.value.strerror
    finally:
        await client.close()
