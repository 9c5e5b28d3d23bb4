"""pruneSession: drop write sessions a client could not close (or every session of the client),
so that GC of their files is not held up until the client's lease expires."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta.ops.context import MetaContext
from threefs.meta.sessions import check_session_id
from threefs.proto import meta_pb2 as mp


async def prune_session(ctx: MetaContext, txn: Transaction, req: mp.PruneSessionReq) -> mp.PruneSessionRsp:
    client = req.base.client_id
    if len(client) != 16:
        raise make_error(Code.INVALID_ARGUMENT, "pruneSession needs the caller's 16-byte client id")
    pruned = 0
    if req.all_of_client:
        rows = await txn.get_range(keys.INODE_SESSION, keys.prefix_end(keys.INODE_SESSION))
        for k, v in rows:
            if mp.FileSession.FromString(v).client_id == client:
                txn.clear(k)
                pruned += 1
        txn.clear(keys.client_lease_key(client))
        return mp.PruneSessionRsp(pruned=pruned)
    for s in req.sessions:
        check_session_id(s.session_id)
        key = keys.session_key(s.inode, s.session_id)
        raw = await txn.get(key)
        if raw is None:
            continue
        if mp.FileSession.FromString(raw).client_id != client:
            raise make_error(Code.NOT_PERMITTED, f"session of inode {s.inode:#x} belongs to another client")
        txn.clear(key)
        pruned += 1
    return mp.PruneSessionRsp(pruned=pruned)
