"""create: open a file, creating it (O_CREAT) with a layout from its directory when it is missing.

Read conflicts: the parent inode (a concurrent rmdir or rename of the directory) and the new
entry's key (a concurrent create of the same name); a write open adds its session row in the same
transaction. The entry stores the request id, so a retried create returns the first result.
"""
from __future__ import annotations

import os

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases
from threefs.meta.ops.allocate_inodes import check_owned
from threefs.meta.ops.common import checked_layout, has_layout, live_parent, new_inode_id
from threefs.meta.ops.context import MetaContext
from threefs.meta.ops.open import open_inode, with_inline_data, write_access
from threefs.meta.path import resolve
from threefs.meta.schema import FILE, dirent_for, load_dirent, load_inode, now_ns, store_dirent, store_inline, \
    store_inode, touch_dir
from threefs.meta.sessions import add_session
from threefs.proto import meta_pb2 as mp


async def create(ctx: MetaContext, txn: Transaction, req: mp.CreateReq) -> mp.CreateRsp:
    user = req.base.user
    excl = bool(req.flags & os.O_EXCL)
    r = await resolve(txn, user, req.path, follow_last=not excl and not req.flags & os.O_NOFOLLOW)
    if r.name == "":
        raise make_error(Code.EXISTS if excl else Code.IS_DIRECTORY, f"{req.path.path!r} is a directory")
    entry = await load_dirent(txn, r.parent, r.name)
    if entry is not None:
        if entry.uuid and entry.uuid == req.base.request_id:      # our own earlier attempt committed
            inode = await load_inode(txn, entry.id)
            if inode is not None:
                return mp.CreateRsp(inode=inode, created=True, inline_max=ctx.config.inline_max)
        if excl:
            raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
        inode = await load_inode(txn, entry.id)
        if inode is None:
            raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
        o = open_inode(txn, req.base, inode, req.flags, req.session_id, req.path.path)
        return await with_inline_data(txn, mp.CreateRsp(inode=o.inode, need_truncate=o.need_truncate, created=False))
    if r.trailing_slash:
        raise make_error(Code.IS_DIRECTORY, f"{req.path.path!r}: cannot create a file named with a trailing slash")
    if req.flags & os.O_DIRECTORY:
        raise make_error(Code.INVALID_ARGUMENT, "O_CREAT with O_DIRECTORY")
    parent = await live_parent(txn, r.parent, f"create {req.path.path!r}")
    await dir_leases.check_lease(txn, r.parent, req.base)
    acl.check(user, parent, acl.W | acl.X, f"create in directory {r.parent:#x}")
    acl.check_mutable(parent, f"create in directory {r.parent:#x}")
    default = checked_layout(req.layout) if has_layout(req) else parent.layout
    layout = await ctx.file_layout(default)
    now = req.time_ns if req.inode_id and req.time_ns > 0 else now_ns()
    gid = parent.gid if parent.perm & acl.S_ISGID else user.gid
    perm = req.perm & 0o7777
    if perm & acl.S_ISGID and user.uid != 0 and not acl.in_group(user, gid):
        perm &= ~acl.S_ISGID
    if req.inode_id:
        await check_owned(txn, req.base, req.inode_id)
    inode = mp.Inode(id=req.inode_id or await new_inode_id(ctx, txn), type=FILE, uid=user.uid, gid=gid, perm=perm, nlink=1,
                     atime_ns=now, mtime_ns=now, ctime_ns=now, fresh=True)
    inode.layout.CopyFrom(layout)
    if req.inline_data:
        if len(req.inline_data) > min(ctx.config.inline_max, layout.chunk_size):
            raise make_error(Code.INVALID_ARGUMENT, f"{len(req.inline_data)} bytes of content are too many to keep "
                                                    f"in meta (at most {min(ctx.config.inline_max, layout.chunk_size)})")
        store_inline(txn, inode, req.inline_data)
    store_inode(txn, inode)
    store_dirent(txn, dirent_for(r.parent, r.name, inode, req.base.request_id))
    touch_dir(txn, r.parent, now)
    if write_access(req.flags):
        if not req.session_id:
            raise make_error(Code.INVALID_ARGUMENT, f"a write open of {req.path.path!r} needs a session id")
        add_session(txn, req.base, inode.id, req.session_id)
    return mp.CreateRsp(inode=inode, created=True, inline_max=ctx.config.inline_max)
