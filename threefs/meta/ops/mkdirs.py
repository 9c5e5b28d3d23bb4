"""mkdirs: create a directory (optionally with its missing ancestors); children inherit its layout.

Read conflicts as create: the parent inode and the new entry's key. A setgid parent passes its
gid and the setgid bit on; the request id stamped in the entry makes a retry return the first result.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction
from threefs.meta import acl, dir_leases
from threefs.meta.ops.common import checked_layout, has_layout, live_parent, new_inode_id
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve, split
from threefs.meta.schema import DIRECTORY, check_name, dirent_for, load_dirent, load_inode, now_ns, \
    store_dirent, store_inode, touch_dir
from threefs.proto import meta_pb2 as mp


async def _mkdir_one(ctx: MetaContext, txn: Transaction, req: mp.MkdirsReq, parent_id: int, name: str) -> mp.Inode:
    user = req.base.user
    check_name(name)
    entry = await load_dirent(txn, parent_id, name)
    if entry is not None:
        if entry.uuid and entry.uuid == req.base.request_id:
            inode = await load_inode(txn, entry.id)
            if inode is not None:
                return inode
        raise make_error(Code.EXISTS, f"{name!r} exists")
    parent = await live_parent(txn, parent_id, f"mkdir {name!r}")
    await dir_leases.check_lease(txn, parent_id, req.base)
    acl.check(user, parent, acl.W | acl.X, f"mkdir in directory {parent_id:#x}")
    acl.check_mutable(parent, f"mkdir in directory {parent_id:#x}")
    now = now_ns()
    perm = req.perm & 0o7777
    gid = user.gid
    if parent.perm & acl.S_ISGID:
        gid, perm = parent.gid, perm | acl.S_ISGID
    inode = mp.Inode(id=await new_inode_id(ctx, txn), type=DIRECTORY, uid=user.uid, gid=gid, perm=perm, nlink=1,
                     atime_ns=now, mtime_ns=now, ctime_ns=now, parent=parent_id, name=name)
    inode.layout.CopyFrom(checked_layout(req.layout) if has_layout(req) else parent.layout)
    store_inode(txn, inode)
    store_dirent(txn, dirent_for(parent_id, name, inode, req.base.request_id))
    touch_dir(txn, parent_id, now)
    return inode


def _lease(ctx: MetaContext, txn: Transaction, req: mp.MkdirsReq, inode: mp.Inode) -> float:
    """The caller made this directory: lease it its entries when it asked (threefs.meta.dir_leases)."""
    return dir_leases.grant(txn, inode.id, req.base, req.lease_callback, ctx.config.dir_lease_ttl)


async def mkdirs(ctx: MetaContext, txn: Transaction, req: mp.MkdirsReq) -> mp.MkdirsRsp:
    user = req.base.user
    if not req.recursive:
        r = await resolve(txn, user, req.path, follow_last=False)
        if r.name == "":
            raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
        inode = await _mkdir_one(ctx, txn, req, r.parent, r.name)
        return mp.MkdirsRsp(inode=inode, lease_seconds=_lease(ctx, txn, req, inode))
    parts, _ = split(req.path.path)
    base = mp.PathAt(parent=req.path.parent, path="/" if req.path.path.startswith("/") else "")
    cur = (await resolve(txn, user, base, follow_last=True)).parent
    inode = await load_inode(txn, cur, snapshot=True)
    created = False
    for i, name in enumerate(parts):
        rr = await resolve(txn, user, mp.PathAt(parent=cur, path=name), follow_last=True)
        if rr.name == "":
            cur = rr.parent
        elif rr.entry is not None:
            if rr.entry.type != DIRECTORY:
                raise make_error(Code.EXISTS if i == len(parts) - 1 else Code.NOT_DIRECTORY,
                                 f"{name!r} exists and is not a directory")
            cur = rr.entry.id
        else:
            inode = await _mkdir_one(ctx, txn, req, rr.parent, rr.name)
            cur = inode.id
            created = True
            continue
        inode = await load_inode(txn, cur, snapshot=True)
        created = False
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    return mp.MkdirsRsp(inode=inode, lease_seconds=_lease(ctx, txn, req, inode) if created else 0.0)

