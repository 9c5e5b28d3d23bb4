"""mkdirs: create a directory (optionally with its missing ancestors); children inherit its layout."""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve
from threefs.meta.schema import DIRECTORY, check_name, dirent_for, load_dirent, load_inode, now_ns, store_dirent, store_inode
from threefs.proto import meta_pb2 as mp

S_ISGID = 0o2000


async def _mkdir_one(ctx: MetaContext, txn: Transaction, req: mp.MkdirsReq, parent_id: int, parent_acl: mp.Acl,
                     name: str) -> mp.Inode:
    user = req.base.user
    check_name(name)
    txn.add_read_conflict(keys.inode_key(parent_id))
    entry = await load_dirent(txn, parent_id, name)
    if entry is not None:
        if entry.uuid and entry.uuid == req.base.request_id:
            inode = await load_inode(txn, entry.id)
            if inode is not None:
                return inode
        raise make_error(Code.EXISTS, f"{name!r} exists")
    parent = await load_inode(txn, parent_id)
    if parent is None or parent.nlink == 0:
        raise make_error(Code.NOT_FOUND, f"directory {parent_id:#x} was removed")
    acl.check(user, parent_acl, acl.W | acl.X, f"mkdir in directory {parent_id:#x}")
    now = now_ns()
    perm = req.perm & 0o7777
    gid = user.gid
    if parent.perm & S_ISGID:
        gid, perm = parent.gid, perm | S_ISGID
    inode = mp.Inode(id=await ctx.allocator.allocate(), type=DIRECTORY, uid=user.uid, gid=gid, perm=perm, nlink=1,
                     atime_ns=now, mtime_ns=now, ctime_ns=now, parent=parent_id, name=name)
    inode.layout.CopyFrom(req.layout if req.HasField("layout") and req.layout.chunk_size else parent.layout)
    store_inode(txn, inode)
    store_dirent(txn, dirent_for(parent_id, name, inode, req.base.request_id))
    return inode


async def mkdirs(ctx: MetaContext, txn: Transaction, req: mp.MkdirsReq) -> mp.MkdirsRsp:
    user = req.base.user
    if not req.recursive:
        r = await resolve(txn, user, req.path, follow_last=False)
        if r.name == "":
            raise make_error(Code.EXISTS, f"{req.path.path!r} exists")
        return mp.MkdirsRsp(inode=await _mkdir_one(ctx, txn, req, r.parent, r.parent_acl, r.name))
    # recursive: walk components, creating the missing ones
    parts = [p for p in req.path.path.split("/") if p and p != "."]
    base = mp.PathAt(parent=req.path.parent, path="/" if req.path.path.startswith("/") else "")
    r = await resolve(txn, user, base, follow_last=True)
    cur, cur_acl = r.parent, r.parent_acl
    inode = await load_inode(txn, cur, snapshot=True)
    for name in parts:
        rr = await resolve(txn, user, mp.PathAt(parent=cur, path=name), follow_last=True)
        if rr.name == "":
            cur, cur_acl = rr.parent, rr.parent_acl
            inode = await load_inode(txn, cur, snapshot=True)
            continue
        if rr.entry is not None:
            if rr.entry.type != DIRECTORY:
                raise make_error(Code.NOT_DIRECTORY, f"{name!r} exists and is not a directory")
            cur, cur_acl = rr.entry.id, rr.entry.dir_acl
            inode = await load_inode(txn, cur, snapshot=True)
            continue
        inode = await _mkdir_one(ctx, txn, req, rr.parent, rr.parent_acl, rr.name)
        cur, cur_acl = inode.id, mp.Acl(uid=inode.uid, gid=inode.gid, perm=inode.perm)
    return mp.MkdirsRsp(inode=inode)
