"""listSessions (admin): write sessions of one inode or of the whole file system, with client leases."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.sessions import leases, sessions_of
from threefs.proto import meta_pb2 as mp


async def list_sessions(ctx: MetaContext, txn: Transaction, req: mp.ListSessionsReq) -> mp.ListSessionsRsp:
    if not req.all and req.inode == 0:
        raise make_error(Code.INVALID_ARGUMENT, "name an inode or ask for all sessions")
    rows = await sessions_of(txn, None if req.all else req.inode)
    clients = await leases(txn)
    rsp = mp.ListSessionsRsp(sessions=rows)
    rsp.clients.extend(clients[c] for c in sorted({s.client_id for s in rows}) if c in clients)
    return rsp
