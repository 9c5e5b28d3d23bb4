"""sync/close: update a file's length (hint or precise query) and end write sessions.

The precise length is queried from storage before the transaction (no I/O inside it); the
transaction then applies it with the VersionedLength rules (3FS §2.7): a precise length that is
shorter (or follows a truncate) bumps the truncate version; a hint is adopted only when it is
from the current truncate epoch and longer. A changed length by a non-owner drops S_ISUID/S_ISGID.
Changing a file's length, times or content takes its owner, write permission, or the session of a
write open (a mode changed since the open does not revoke the open writer's sync and close).
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import FILE, drop_inline, load_inode, now_ns, store_inline, store_inode
from threefs.meta.sessions import remove_session
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp


def apply_length(inode: mp.Inode, *, precise: int | None, hint: mp.VersionedLength | None, truncated: bool) -> bool:
    """Update inode.length; returns True if it changed."""
    old = inode.length
    if precise is not None:
        if precise < inode.length or truncated:
            inode.truncate_ver += 1
        inode.length = precise
    elif hint is not None and hint.truncate_ver == inode.truncate_ver and hint.length > inode.length:
        inode.length = hint.length
    if inode.length != old:
        inode.mtime_ns = inode.ctime_ns = now_ns()
        return True
    return False


def _written_by(user: cpb.UserInfo, inode: mp.Inode) -> None:
    if user.uid not in (0, inode.uid):
        inode.perm &= ~(acl.S_ISUID | acl.S_ISGID)


async def _file(txn: Transaction, inode_id: int) -> mp.Inode:
    inode = await load_inode(txn, inode_id)
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"inode {inode_id:#x} does not exist")
    return inode


def _apply_write(inode: mp.Inode, req: mp.SyncReq | mp.CloseReq, precise: int | None, truncated: bool) -> bool:
    """A writer's sync/close: the length, and mtime/ctime when it wrote (even in place, length unchanged,
    so tools that compare size and mtime, like rsync and make, see the change); True if the inode changed.
    An inline file's length is its content's: storage knows nothing of it."""
    changed = req.update_length and not inode.inline and apply_length(
        inode, precise=precise, hint=req.length_hint if req.HasField("length_hint") else None, truncated=truncated)
    if req.modified and not changed:
        inode.mtime_ns = inode.ctime_ns = now_ns()
        changed = True
    if changed:
        _written_by(req.base.user, inode)
    return changed


def _accepts_inline(ctx: MetaContext, inode: mp.Inode, data: bytes) -> bool:
    """Content from the creating handle stays in meta while no one else opened the file for writing
    and it fits, in meta and in chunk 0 (where it moves later) (threefs.meta.inline)."""
    return (inode.type == FILE and inode.fresh and len(data) <= min(ctx.config.inline_max, inode.layout.chunk_size)
            and (inode.inline or inode.length == 0) and inode.truncate_ver == 0)


def _may_place_content(user: cpb.UserInfo, inode: mp.Inode) -> bool:
    """Putting a file's content in meta, or dropping it from there, takes its owner (the creator,
    whatever mode it gave the file) or write permission."""
    return acl.is_owner(user, inode) or acl.allowed(user, inode.uid, inode.gid, inode.perm, acl.W)


async def check_writer(txn: Transaction, user: cpb.UserInfo, inode: mp.Inode, session_id: bytes) -> None:
    """A sync or close that changes the file: its owner, write permission, or a live write session."""
    if _may_place_content(user, inode):
        return
    if session_id and await txn.snapshot_get(keys.session_key(inode.id, session_id)) is not None:
        return
    raise make_error(Code.PERMISSION_DENIED, f"inode {inode.id:#x}: not its owner, no write permission "
                                             f"and no write session of it")


async def sync(ctx: MetaContext, txn: Transaction, req: mp.SyncReq, precise: int | None) -> mp.SyncRsp:
    inode = await _file(txn, req.inode)
    if req.inline_data:
        if not (_accepts_inline(ctx, inode, req.inline_data) and _may_place_content(req.base.user, inode)):
            return mp.SyncRsp(inode=inode, inline_accepted=False)      # the writer sends it to storage
        store_inline(txn, inode, req.inline_data)
        inode.mtime_ns = inode.ctime_ns = now_ns()
        _written_by(req.base.user, inode)
        store_inode(txn, inode)
        return mp.SyncRsp(inode=inode, inline_accepted=True)
    if req.update_length or req.modified or req.truncated or req.end_fresh or req.clear_inline:
        await check_writer(txn, req.base.user, inode, req.session_id)
    changed = False
    if req.end_fresh and inode.fresh:             # inline content (if any) is frozen from now on
        inode.fresh = False
        changed = True
    if req.clear_inline and inode.inline:         # the writer put the content on storage first
        drop_inline(txn, inode)
        changed = True
    if inode.type == FILE and _apply_write(inode, req, precise, req.truncated):
        changed = True
    if changed:
        store_inode(txn, inode)
    return mp.SyncRsp(inode=inode)


async def close(ctx: MetaContext, txn: Transaction, req: mp.CloseReq, precise: int | None) -> mp.CloseRsp:
    inode = await _file(txn, req.inode)
    if req.update_length or req.modified:
        await check_writer(txn, req.base.user, inode, req.session_id)
    if req.session_id:
        remove_session(txn, req.inode, req.session_id)
    if inode.type == FILE and _apply_write(inode, req, precise, False):
        store_inode(txn, inode)
    return mp.CloseRsp(inode=inode)
