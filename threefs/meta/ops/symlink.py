"""symlink: a symlink inode holding its target path (resolved at use, relative to the link's directory).

Read conflicts as create (parent inode, new entry key); the entry carries the request id for retries.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases
from threefs.meta.ops.common import live_parent, new_inode_id
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve
from threefs.meta.schema import MAX_PATH, SYMLINK, dirent_for, load_dirent, load_inode, now_ns, store_dirent, \
    store_inode, touch_dir
from threefs.proto import meta_pb2 as mp


async def symlink(ctx: MetaContext, txn: Transaction, req: mp.SymlinkReq) -> mp.SymlinkRsp:
    user = req.base.user
    if not req.target:
        raise make_error(Code.NOT_FOUND, "a symlink target cannot be empty")
    if len(req.target.encode()) >= MAX_PATH:
        raise make_error(Code.NAME_TOO_LONG, f"symlink target longer than {MAX_PATH - 1} bytes")
    if "\0" in req.target:
        raise make_error(Code.INVALID_ARGUMENT, "symlink target contains NUL")
    r = await resolve(txn, user, req.path, follow_last=False)
    if r.name == "":
        raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
    entry = await load_dirent(txn, r.parent, r.name)
    if entry is not None:
        if entry.uuid and entry.uuid == req.base.request_id:
            inode = await load_inode(txn, entry.id)
            if inode is not None:
                return mp.SymlinkRsp(inode=inode)
        raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
    if r.trailing_slash:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r}: a symlink name cannot end with a slash")
    parent = await live_parent(txn, r.parent, f"symlink {req.path.path!r}")
    await dir_leases.check_lease(txn, r.parent, req.base)
    acl.check(user, parent, acl.W | acl.X, f"symlink in directory {r.parent:#x}")
    acl.check_mutable(parent, f"symlink in directory {r.parent:#x}")
    now = now_ns()
    inode = mp.Inode(id=await new_inode_id(ctx, txn), type=SYMLINK, uid=user.uid,
                     gid=parent.gid if parent.perm & acl.S_ISGID else user.gid, perm=0o777, nlink=1,
                     atime_ns=now, mtime_ns=now, ctime_ns=now, target=req.target)
    store_inode(txn, inode)
    store_dirent(txn, dirent_for(r.parent, r.name, inode, req.base.request_id))
    touch_dir(txn, r.parent, now)
    return mp.SymlinkRsp(inode=inode)
