"""Every framed-RPC request is counted and timed; the /metrics endpoint serves the registry."""
from __future__ import annotations

import urllib.request

from google.protobuf import wrappers_pb2 as w
from prometheus_client import REGISTRY

from threefs.common.errors import Code, make_error
from threefs.common.metrics import serve_metrics
from threefs.net.rpc import RpcClient, RpcServer


def _count(method: str, status: int) -> float:
    return REGISTRY.get_sample_value("threefs_rpc_requests_total", {"method": method, "status": str(status)}) or 0.0


async def test_rpc_requests_are_counted_by_status_and_bytes():
    server = RpcServer()

    async def echo(req, payload):
        if req.value == "fail":
            raise make_error(Code.NOT_FOUND, "no such thing")
        return w.StringValue(value=req.value), payload

    server.register("Test.Echo", w.StringValue, echo)
    address = await server.start()
    client = RpcClient()
    try:
        ok0, bad0 = _count("Test.Echo", 0), _count("Test.Echo", int(Code.NOT_FOUND))
        bytes0 = REGISTRY.get_sample_value("threefs_rpc_payload_bytes_total",
                                           {"method": "Test.Echo", "direction": "in"}) or 0.0
        await client.call(address, "Test.Echo", w.StringValue(value="x"), w.StringValue, payload=b"12345")
        try:
            await client.call(address, "Test.Echo", w.StringValue(value="fail"), w.StringValue)
        except FileNotFoundError:
            pass
        assert _count("Test.Echo", 0) == ok0 + 1
        assert _count("Test.Echo", int(Code.NOT_FOUND)) == bad0 + 1
        assert REGISTRY.get_sample_value("threefs_rpc_payload_bytes_total",
                                         {"method": "Test.Echo", "direction": "in"}) == bytes0 + 5
    finally:
        await client.close()
        await server.stop()


def test_metrics_endpoint_serves_the_registry():
    address = serve_metrics("127.0.0.1", 0)
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert "threefs_rpc_latency_seconds" in text
