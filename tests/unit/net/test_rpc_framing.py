"""The receive state machine of threefs.net.rpc, fed byte streams by hand (no sockets, no timing)."""
from __future__ import annotations

import asyncio
import random
import struct

import pytest
from google.protobuf import wrappers_pb2 as w

from threefs.common.errors import Code, FSError
from threefs.net.rpc import _AHEAD, RpcServer, _ClientConn, _Pending, _ServerConn
from threefs.proto.rpc_pb2 import RpcHeader

pytestmark = pytest.mark.timeout(60)


def frame(request_id: int, body: bytes, payload: bytes = b"", status: int = 0) -> bytes:
    header = RpcHeader(request_id=request_id, is_response=True, status=status,
                       body=w.BytesValue(value=body).SerializeToString()).SerializeToString()
    return struct.pack("<IQ", len(header), len(payload)) + header + payload


def feed(conn: _ClientConn, stream: bytes, chunk_sizes, reads: list[memoryview] | None = None) -> None:
    """Play the kernel: copy `stream` into the buffers the protocol hands out, in uneven reads."""
    pos = 0
    while pos < len(stream):
        buf = conn.get_buffer(-1)
        assert len(buf) > 0 and not buf.readonly
        n = min(len(buf), next(chunk_sizes), len(stream) - pos)
        buf[:n] = stream[pos:pos + n]
        if reads is not None:
            reads.append(buf)
        conn.buffer_updated(n)
        pos += n


def expect(conn: _ClientConn, request_id: int, sink=None) -> asyncio.Future:
    fut = asyncio.get_running_loop().create_future()
    conn.pending[request_id] = _Pending(fut, w.BytesValue, sink)
    return fut


@pytest.mark.asyncio(loop_factories=["asyncio"])  # loop-independent
@pytest.mark.parametrize("max_read", [1, 13, 4096, 1 << 30])
async def test_frames_split_anywhere_are_reassembled(max_read):
    rng = random.Random(max_read)
    big = max_read > 100  # byte-sized reads get a shorter stream
    sizes = [0, 1, 100, 70_000, 300_000 if big else 0, 0, 5, (2 << 20) if big else 1000]
    payloads = [rng.randbytes(n) for n in sizes]
    # some headers exceed the 256 KiB scratch buffer, which must grow for them
    bodies = [rng.randbytes(rng.choice([0, 3, 300_000 if big else 300])) for _ in sizes]
    conn = _ClientConn("test:1")
    futures = [expect(conn, i + 1) for i in range(len(sizes))]
    stream = b"".join(frame(i + 1, bodies[i], payloads[i]) for i in range(len(sizes)))
    chunks = iter(lambda: rng.randint(1, max_read), None)
    feed(conn, stream, chunks)
    for fut, body, payload in zip(futures, bodies, payloads):
        msg, got = fut.result()
        assert msg.value == body
        assert (got is None) if not payload else got == payload


@pytest.mark.asyncio(loop_factories=["asyncio"])  # loop-independent
async def test_many_small_frames_parse_from_one_read():
    conn = _ClientConn("test:1")
    futures = [expect(conn, i) for i in range(1, 201)]
    stream = b"".join(frame(i, b"m%d" % i) for i in range(1, 201))
    reads: list[memoryview] = []
    feed(conn, stream, iter(lambda: 1 << 30, None), reads)
    assert len(reads) == 1
    assert [f.result()[0].value for f in futures] == [b"m%d" % i for i in range(1, 201)]


@pytest.mark.asyncio(loop_factories=["asyncio"])  # loop-independent
async def test_large_payload_is_received_into_the_sink_buffers():
    """The protocol hands the kernel the caller's own buffers (no intermediate copy)."""
    payload = random.Random(1).randbytes(3 << 20)
    target = bytearray(len(payload))
    halves = [memoryview(target)[: 1 << 20], memoryview(target)[1 << 20:]]
    conn = _ClientConn("test:1")
    fut = expect(conn, 9, sink=lambda msg: halves)
    reads: list[memoryview] = []
    feed(conn, frame(9, b"hdr", payload), iter(lambda: 256 << 10, None), reads)
    assert fut.result()[1] is None and target == payload
    direct = [r for r in reads if r.obj is target]
    assert sum(r.nbytes for r in direct) >= len(payload) - (256 << 10)


@pytest.mark.asyncio(loop_factories=["asyncio"])  # loop-independent
async def test_a_read_into_scratch_takes_little_of_a_large_payload():
    """However much the kernel could hand over at once, a read into scratch stops _AHEAD past what the
    next frame is known to need, so at most that much of a large payload is copied out of scratch."""
    payload = random.Random(2).randbytes(1 << 20)
    target = bytearray(len(payload))
    conn = _ClientConn("test:1")
    fut = expect(conn, 3, sink=lambda msg: [memoryview(target)])
    reads: list[memoryview] = []
    feed(conn, frame(3, b"h" * 100, payload), iter(lambda: 1 << 30, None), reads)
    assert fut.result()[1] is None and target == payload
    direct = sum(r.nbytes for r in reads if r.obj is target)
    assert len(payload) - _AHEAD <= direct < len(payload)


@pytest.mark.asyncio(loop_factories=["asyncio"])  # loop-independent
async def test_forgotten_call_mid_payload_stops_writing_the_sink():
    payload = b"\x01" * (4 << 20)
    target = bytearray(len(payload))
    conn = _ClientConn("test:1")
    expect(conn, 5, sink=lambda msg: [memoryview(target)])
    after = expect(conn, 6)
    stream = frame(5, b"", payload) + frame(6, b"next", b"\x02" * 10)
    first = len(stream) // 4
    feed(conn, stream[:first], iter(lambda: 64 << 10, None))
    written = target.count(1)
    assert 0 < written < len(payload)
    conn.forget(5)  # e.g. the call timed out while its payload was arriving
    feed(conn, stream[first:], iter(lambda: 64 << 10, None))
    assert target.count(1) == written  # nothing more landed in the abandoned buffer
    msg, got = after.result()
    assert msg.value == b"next" and got == b"\x02" * 10


@pytest.mark.asyncio(loop_factories=["asyncio"])  # loop-independent
async def test_error_status_and_unknown_ids_discard_payloads():
    conn = _ClientConn("test:1")
    failing = expect(conn, 1)
    ok = expect(conn, 3)
    stream = frame(1, b"", b"x" * 100_000, status=int(Code.NOT_FOUND)) + frame(2, b"", b"y" * 2_000_000) \
        + frame(3, b"ok", b"z")
    feed(conn, stream, iter(lambda: 100_000, None))
    with pytest.raises(FSError) as err:
        failing.result()
    assert err.value.code == Code.NOT_FOUND
    assert ok.result()[0].value == b"ok" and ok.result()[1] == b"z"


class Capture(asyncio.Transport):
    """A transport that keeps what is written."""

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()

    def get_extra_info(self, name, default=None):
        return default

    def set_write_buffer_limits(self, high=None, low=None) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def write(self, data) -> None:
        self.data += data

    def writelines(self, parts) -> None:
        for part in parts:
            self.write(part)


@pytest.mark.asyncio(loop_factories=["asyncio"])
async def test_server_answers_timeout_for_requests_that_expired_in_its_queue():
    """Both requests arrive in one read; the first hogs the loop past the second's deadline."""
    loop = asyncio.get_running_loop()
    ran = []

    async def busy(req, payload):
        until = loop.time() + 0.05
        while loop.time() < until:  # CPU-bound work that blocks the event loop
            pass
        ran.append("busy")
        return req, None

    async def quick(req, payload):
        ran.append("quick")
        return req, None

    server = RpcServer()
    server.register("T.Busy", w.BytesValue, busy)
    server.register("T.Quick", w.BytesValue, quick)
    conn, out = _ServerConn(server), Capture()
    conn.connection_made(out)

    def request(rid: int, method: str, timeout_ms: int) -> bytes:
        header = RpcHeader(request_id=rid, method=method, timeout_ms=timeout_ms).SerializeToString()
        return struct.pack("<IQ", len(header), 0) + header

    feed(conn, request(1, "T.Busy", 0) + request(2, "T.Quick", 10), iter(lambda: 1 << 20, None))
    await asyncio.wait_for(asyncio.gather(*server._tasks), 10)
    assert ran == ["busy"]
    client = _ClientConn("test:1")
    ok, late = expect(client, 1), expect(client, 2)
    feed(client, bytes(out.data), iter(lambda: 1 << 20, None))
    assert ok.result()[0] == w.BytesValue()
    with pytest.raises(FSError) as err:
        late.result()
    assert err.value.code == Code.TIMEOUT
