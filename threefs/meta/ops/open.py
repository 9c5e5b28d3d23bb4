"""open: open an existing file (or directory, read-only); a write open adds a session row.

Read-only opens create no state (3FS: training jobs open millions of files); a write open
re-reads the inode with a conflict so an unlink racing it is serialized before or after.
"""
from __future__ import annotations

import os

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.inline import InlineMigrationNeeded
from threefs.meta.schema import DIRECTORY, FILE, SYMLINK, drop_inline, load_inline, load_inode, store_inode
from threefs.meta.sessions import add_session
from threefs.proto import meta_pb2 as mp


def write_access(flags: int) -> bool:
    return flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)


def wants_write(flags: int) -> bool:
    return write_access(flags) or bool(flags & os.O_TRUNC)


def access_bits(flags: int) -> int:
    mode = flags & os.O_ACCMODE
    if mode not in (os.O_RDONLY, os.O_WRONLY, os.O_RDWR):
        raise make_error(Code.INVALID_ARGUMENT, f"invalid access mode in flags {flags:#o}")
    want = acl.R if mode in (os.O_RDONLY, os.O_RDWR) else 0
    if wants_write(flags):
        want |= acl.W
    return want


def open_inode(txn: Transaction, base: mp.ReqBase, inode: mp.Inode, flags: int, session_id: bytes,
               name: str) -> mp.OpenRsp:
    """Checks and session bookkeeping for opening an existing inode."""
    if inode.type == SYMLINK:
        raise make_error(Code.TOO_MANY_SYMLINKS, f"{name!r} is a symbolic link (O_NOFOLLOW)")
    if flags & os.O_DIRECTORY and inode.type != DIRECTORY:
        raise make_error(Code.NOT_DIRECTORY, f"{name!r} is not a directory")
    if inode.type == DIRECTORY and wants_write(flags):
        raise make_error(Code.IS_DIRECTORY, f"{name!r} is a directory")
    acl.check(base.user, inode, access_bits(flags), f"open {name!r}")
    if wants_write(flags):
        acl.check_mutable(inode, f"open {name!r} for writing")
    if inode.type == FILE and wants_write(flags):
        _before_write_open(txn, inode, flags)
    if inode.type == FILE and write_access(flags):
        if not session_id:
            raise make_error(Code.INVALID_ARGUMENT, f"a write open of {name!r} needs a session id")
        add_session(txn, base, inode.id, session_id)
    need_truncate = bool(flags & os.O_TRUNC) and inode.type == FILE and inode.length > 0
    return mp.OpenRsp(inode=inode, need_truncate=need_truncate)


def _before_write_open(txn: Transaction, inode: mp.Inode, flags: int) -> None:
    """A write open ends the creator's right to put content inline; an inline file moves to storage
    first (O_TRUNC just drops its content: the truncate that follows removes any chunk copy)."""
    if inode.inline:
        if not flags & os.O_TRUNC:
            raise InlineMigrationNeeded(inode.id)
        drop_inline(txn, inode)
        store_inode(txn, inode)
    elif inode.fresh:
        inode.fresh = False
        store_inode(txn, inode)


async def with_inline_data(txn: Transaction, rsp: mp.OpenRsp | mp.CreateRsp) -> mp.OpenRsp | mp.CreateRsp:
    """Add an inline file's content to an open's answer (a read open of a small file needs no storage)."""
    if rsp.inode.inline:
        rsp.inline_data = await load_inline(txn, rsp.inode.id, snapshot=True)
    return rsp


async def open_(ctx: MetaContext, txn: Transaction, req: mp.OpenReq) -> mp.OpenRsp:
    follow = not req.flags & os.O_NOFOLLOW
    r, inode_id = await resolve_existing(txn, req.base.user, req.path, follow_last=follow)
    inode = await load_inode(txn, inode_id, snapshot=not wants_write(req.flags))
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    return await with_inline_data(txn, open_inode(txn, req.base, inode, req.flags, req.session_id, req.path.path))
