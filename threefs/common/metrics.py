"""Prometheus metrics shared by every service, and the /metrics endpoint a service exposes.

Framed-RPC servers (meta, storage) and the mgmtd gRPC servicer record each request here: count by
status, latency, and payload bytes. Gateways add their own per-operation metrics to the same registry.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram, start_http_server

RPC_REQUESTS = Counter("threefs_rpc_requests", "Requests served, by service method and status code",
                       ["method", "status"])
RPC_LATENCY = Histogram("threefs_rpc_latency_seconds", "Time from request decode to response, by method",
                        ["method"], buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                             0.5, 1.0, 2.5, 5.0, 10.0))
RPC_BYTES = Counter("threefs_rpc_payload_bytes", "Bulk payload bytes, by method and direction (in/out)",
                    ["method", "direction"])
MAPPED_READ_BYTES = Counter("threefs_storage_mapped_read_bytes", "Chunk bytes a storage node sent from a kept "
                            "mapping, by whether this read checked their CRCs (checked: yes) or found them "
                            "checked during their stay in memory (no)", ["checked"])


_children: dict[tuple, tuple] = {}     # (method, status) -> labelled metrics: labels() takes a lock per call


def observe_rpc(method: str, status: int, seconds: float, bytes_in: int, bytes_out: int) -> None:
    """Record one served request."""
    c = _children.get((method, status))
    if c is None:
        c = _children[(method, status)] = (RPC_REQUESTS.labels(method, str(status)), RPC_LATENCY.labels(method),
                                           RPC_BYTES.labels(method, "in"), RPC_BYTES.labels(method, "out"))
    c[0].inc()
    c[1].observe(seconds)
    if bytes_in:
        c[2].inc(bytes_in)
    if bytes_out:
        c[3].inc(bytes_out)


@contextmanager
def timed(method: str) -> Iterator[dict]:
    """Time a block; the caller sets result['status'] (0 by default)."""
    result = {"status": 0}
    start = time.perf_counter()
    try:
        yield result
    finally:
        observe_rpc(method, result["status"], time.perf_counter() - start, 0, 0)


def serve_metrics(host: str, port: int) -> str:
    """Expose /metrics over HTTP in a background thread; returns "host:port"."""
    server, _ = start_http_server(port, addr=host)
    return f"{host}:{server.server_port}"
