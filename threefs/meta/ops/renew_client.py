"""renewClient: a client holding write sessions proves it is alive (its sessions are not pruned)."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.sessions import touch_lease
from threefs.proto import meta_pb2 as mp


async def renew_client(ctx: MetaContext, txn: Transaction, req: mp.RenewClientReq) -> mp.RenewClientRsp:
    if len(req.base.client_id) != 16:
        raise make_error(Code.INVALID_ARGUMENT, "renewClient needs a 16-byte client id")
    touch_lease(txn, req.base)
    return mp.RenewClientRsp(timeout_ms=int(ctx.config.client_timeout * 1000))
