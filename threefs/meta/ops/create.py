"""create/open: open an existing file or create a new one with a layout from its directory.

Read conflicts: the parent inode (a concurrent rmdir) and the new entry's key (a concurrent
create of the same name); a write open also adds a session row (INOS) in the same transaction.
"""
from __future__ import annotations

import os

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve
from threefs.meta.schema import (DIRECTORY, FILE, SYMLINK, dirent_for, load_dirent, load_inode, now_ns,
                                 store_dirent, store_inode)
from threefs.proto import meta_pb2 as mp

S_ISGID = 0o2000


def wants_write(flags: int) -> bool:
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR) or bool(flags & os.O_TRUNC)


def _access(flags: int) -> int:
    mode = flags & os.O_ACCMODE
    want = acl.R if mode in (os.O_RDONLY, os.O_RDWR) else 0
    if mode in (os.O_WRONLY, os.O_RDWR) or flags & os.O_TRUNC:
        want |= acl.W
    return want


def _add_session(txn: Transaction, req_base: mp.ReqBase, inode_id: int, session_id: bytes) -> None:
    if session_id:
        s = mp.DirEntry(id=inode_id, uuid=req_base.client_id)   # compact: who holds the session
        txn.set(keys.session_key(inode_id, session_id), s.SerializeToString())


async def open_inode(txn: Transaction, req_base: mp.ReqBase, inode: mp.Inode, flags: int,
                     session_id: bytes, name: str) -> mp.OpenRsp:
    """Checks and session bookkeeping for opening an existing inode."""
    if inode.type == DIRECTORY and wants_write(flags):
        raise make_error(Code.IS_DIRECTORY, f"{name!r} is a directory")
    if inode.type == SYMLINK:
        raise make_error(Code.TOO_MANY_SYMLINKS, f"{name!r} is a symbolic link")
    acl.check(req_base.user, inode, _access(flags), f"open {name!r}")
    if inode.type == FILE and wants_write(flags):
        _add_session(txn, req_base, inode.id, session_id)
    need_truncate = bool(flags & os.O_TRUNC) and inode.type == FILE and inode.length > 0
    return mp.OpenRsp(inode=inode, need_truncate=need_truncate)


async def open_(ctx: MetaContext, txn: Transaction, req: mp.OpenReq) -> mp.OpenRsp:
    r = await resolve(txn, req.base.user, req.path, follow_last=True)
    inode_id = r.parent if r.name == "" else (r.entry.id if r.entry else None)
    if inode_id is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} does not exist")
    inode = await load_inode(txn, inode_id, snapshot=not wants_write(req.flags))
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    return await open_inode(txn, req.base, inode, req.flags, req.session_id, req.path.path)


async def create(ctx: MetaContext, txn: Transaction, req: mp.CreateReq) -> mp.CreateRsp:
    user = req.base.user
    excl = bool(req.flags & os.O_EXCL)
    r = await resolve(txn, user, req.path, follow_last=not excl)
    if r.name == "":
        if excl:
            raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
        raise make_error(Code.IS_DIRECTORY, f"{req.path.path!r} is a directory")
    txn.add_read_conflict(keys.inode_key(r.parent))
    entry = await load_dirent(txn, r.parent, r.name)
    if entry is not None:
        if entry.uuid and entry.uuid == req.base.request_id:      # our own earlier attempt succeeded
            inode = await load_inode(txn, entry.id)
            if inode is not None:
                return mp.CreateRsp(inode=inode, created=True)
        if excl:
            raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
        inode = await load_inode(txn, entry.id)
        if inode is None:
            raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
        o = await open_inode(txn, req.base, inode, req.flags, req.session_id, req.path.path)
        return mp.CreateRsp(inode=o.inode, need_truncate=o.need_truncate, created=False)
    parent = await load_inode(txn, r.parent)
    if parent is None or parent.nlink == 0:
        raise make_error(Code.NOT_FOUND, f"the directory of {req.path.path!r} was removed")
    acl.check(user, r.parent_acl, acl.W | acl.X, f"create in directory {r.parent:#x}")
    default = req.layout if req.HasField("layout") and req.layout.chunk_size else parent.layout
    layout = await ctx.file_layout(default)
    now = now_ns()
    gid = parent.gid if parent.perm & S_ISGID else user.gid
    inode = mp.Inode(id=await ctx.allocator.allocate(), type=FILE, uid=user.uid, gid=gid,
                     perm=req.perm & 0o7777, nlink=1, atime_ns=now, mtime_ns=now, ctime_ns=now)
    inode.layout.CopyFrom(layout)
    store_inode(txn, inode)
    store_dirent(txn, dirent_for(r.parent, r.name, inode, req.base.request_id))
    if wants_write(req.flags):
        _add_session(txn, req.base, inode.id, req.session_id)
    return mp.CreateRsp(inode=inode, created=True)
