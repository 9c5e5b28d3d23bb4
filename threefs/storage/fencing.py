"""RPCs to a replica that give up as soon as mgmtd reconfigures the replica's chain.

A hung replica (SIGSTOP, a frozen VM) keeps its TCP connections open, so a call to it would only end at
its timeout. Once mgmtd has noticed (heartbeat timeout) it bumps the chain version; every caller (a
client writing to a head, a predecessor forwarding to its successor) then abandons the call with the
retryable ROUTING_VERSION_MISMATCH and retries against the chain's new shape.
"""
from __future__ import annotations

import asyncio
from typing import Any

from threefs.common.errors import Code, make_error
from threefs.mgmtd.client import MgmtdClient
from threefs.mgmtd.routing import Routing
from threefs.net.rpc import RpcClient


async def call_fenced(rpc: RpcClient, mgmtd: MgmtdClient, routing: Routing, chain_ids: set[int], address: str,
                      method: str, req, rsp_type, **kw: Any) -> tuple[Any, Any]:
    """`rpc.call(...)`, abandoned once any of `chain_ids` has another version in newer routing info."""
    versions = {c: routing.chains[c].chain_version if c in routing.chains else -1 for c in chain_ids}
    call = asyncio.ensure_future(rpc.call(address, method, req, rsp_type, **kw))
    try:
        while True:
            change = mgmtd.next_change()
            done, _ = await asyncio.wait({call, change}, return_when=asyncio.FIRST_COMPLETED)
            if call in done:
                return call.result()
            now = change.result()
            moved = [c for c, v in versions.items() if c not in now.chains or now.chains[c].chain_version != v]
            if moved:
                raise make_error(Code.ROUTING_VERSION_MISMATCH, f"chain {moved[0]} changed while waiting for {address}")
    finally:
        if not call.done():
            call.cancel()
