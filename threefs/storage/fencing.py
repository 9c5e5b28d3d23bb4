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
    """`rpc.call(...)`, abandoned once any of `chain_ids` has another version in newer routing info.

    The call runs in the caller's task; a routing change that moves one of the chains cancels that
    task, and the cancellation becomes ROUTING_VERSION_MISMATCH here (a task and a wait per call
    cost the random-read path several event-loop turns)."""
    versions = {c: routing.chains[c].chain_version if c in routing.chains else -1 for c in chain_ids}
    task = asyncio.current_task()
    assert task is not None
    moved: list[int] = []
    waiting = True          # False once the call is over: a callback already scheduled must not cancel
    change = mgmtd.next_change()

    def on_change(fut: asyncio.Future[Routing]) -> None:
        nonlocal change
        if not waiting or fut.cancelled() or moved:
            return
        now = fut.result()
        moved.extend(c for c, v in versions.items() if c not in now.chains or now.chains[c].chain_version != v)
        if moved:
            task.cancel()
        else:
            change = mgmtd.next_change()
            change.add_done_callback(on_change)

    change.add_done_callback(on_change)
    try:
        return await rpc.call(address, method, req, rsp_type, **kw)
    except asyncio.CancelledError:
        if moved and task.uncancel() == 0:     # our cancellation alone: the chain moved
            raise make_error(Code.ROUTING_VERSION_MISMATCH,
                             f"chain {moved[0]} changed while waiting for {address}") from None
        raise
    finally:
        waiting = False     # (removing the callback is not enough: the future may have scheduled it already)
        change.remove_done_callback(on_change)
