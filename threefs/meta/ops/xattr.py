"""Extended attributes of the user.* namespace: set, get, list, remove (stored under XATR + inode + name).

Linux rules: only user.* names are supported here (EOPNOTSUPP otherwise); user attributes live on
regular files and directories only (EPERM on symlinks); reading needs R, changing needs W on the
inode; names are at most 255 bytes and values at most 64 KiB (ERANGE / E2BIG-like OUT_OF_RANGE);
a missing attribute is ENODATA; XATTR_CREATE on an existing one is EEXIST, XATTR_REPLACE on a
missing one is ENODATA.
"""
from __future__ import annotations

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import Transaction
from threefs.meta import acl
from threefs.meta.ops.common import must_exist
from threefs.meta.ops.context import MetaContext
from threefs.meta.path import resolve_existing
from threefs.meta.schema import SYMLINK, load_inode, now_ns, store_inode
from threefs.proto import meta_pb2 as mp

XATTR_CREATE = 1
XATTR_REPLACE = 2
MAX_NAME = 255
MAX_VALUE = 64 << 10
MAX_TOTAL = 1 << 20          # per inode, all names and values together
NAMESPACE = "user."


def _check_name(name: str) -> None:
    if not name.startswith(NAMESPACE) or len(name) == len(NAMESPACE):
        raise make_error(Code.NOT_SUPPORTED, f"extended attribute {name!r}: only the user.* namespace is supported")
    if len(name.encode()) > MAX_NAME or "\0" in name:
        raise make_error(Code.OUT_OF_RANGE, f"extended attribute name longer than {MAX_NAME} bytes")


async def _target(txn: Transaction, req, want: int, *, write: bool) -> mp.Inode:
    _, inode_id = await resolve_existing(txn, req.base.user, req.path, follow_last=req.follow_last)
    inode = await (must_exist(txn, inode_id, req.path.path) if write else load_inode(txn, inode_id, snapshot=True))
    if inode is None:
        raise make_error(Code.NOT_FOUND, f"{req.path.path!r} vanished")
    if inode.type == SYMLINK:
        raise make_error(Code.NOT_PERMITTED, "user extended attributes are not allowed on symbolic links")
    acl.check(req.base.user, inode, want, f"extended attributes of {req.path.path!r}")
    return inode


async def set_xattr(ctx: MetaContext, txn: Transaction, req: mp.SetXattrReq) -> mp.SetXattrRsp:
    _check_name(req.name)
    if req.flags & ~(XATTR_CREATE | XATTR_REPLACE) or req.flags == XATTR_CREATE | XATTR_REPLACE:
        raise make_error(Code.INVALID_ARGUMENT, f"bad setxattr flags {req.flags:#x}")
    if len(req.value) > MAX_VALUE:
        raise make_error(Code.OUT_OF_RANGE, f"extended attribute values are limited to {MAX_VALUE} bytes")
    inode = await _target(txn, req, acl.W, write=True)
    key = keys.xattr_key(inode.id, req.name)
    old = await txn.get(key)
    if old is not None and req.flags & XATTR_CREATE:
        raise make_error(Code.EXISTS, f"extended attribute {req.name!r} exists")
    if old is None and req.flags & XATTR_REPLACE:
        raise make_error(Code.NO_DATA, f"no extended attribute {req.name!r}")
    prefix = keys.xattr_prefix(inode.id)
    total = sum(len(k) - len(prefix) + len(v) for k, v in await txn.get_range(prefix, keys.prefix_end(prefix)))
    total += len(req.name.encode()) + len(req.value) - (len(req.name.encode()) + len(old) if old is not None else 0)
    if total > MAX_TOTAL:
        raise make_error(Code.NO_SPACE, f"extended attributes of one inode are limited to {MAX_TOTAL} bytes")
    txn.set(key, bytes(req.value))
    inode.ctime_ns = now_ns()
    store_inode(txn, inode)
    return mp.SetXattrRsp()


async def get_xattr(ctx: MetaContext, txn: Transaction, req: mp.GetXattrReq) -> mp.GetXattrRsp:
    _check_name(req.name)
    inode = await _target(txn, req, acl.R, write=False)
    value = await txn.snapshot_get(keys.xattr_key(inode.id, req.name))
    if value is None:
        raise make_error(Code.NO_DATA, f"no extended attribute {req.name!r}")
    return mp.GetXattrRsp(value=value)


async def list_xattr(ctx: MetaContext, txn: Transaction, req: mp.ListXattrReq) -> mp.ListXattrRsp:
    inode = await _target(txn, req, acl.R, write=False)
    prefix = keys.xattr_prefix(inode.id)
    rows = await txn.get_range(prefix, keys.prefix_end(prefix), snapshot=True)
    return mp.ListXattrRsp(names=[k[len(prefix):].decode() for k, _ in rows])


async def remove_xattr(ctx: MetaContext, txn: Transaction, req: mp.RemoveXattrReq) -> mp.RemoveXattrRsp:
    _check_name(req.name)
    inode = await _target(txn, req, acl.W, write=True)
    key = keys.xattr_key(inode.id, req.name)
    if await txn.get(key) is None:
        raise make_error(Code.NO_DATA, f"no extended attribute {req.name!r}")
    txn.clear(key)
    inode.ctime_ns = now_ns()
    store_inode(txn, inode)
    return mp.RemoveXattrRsp()
