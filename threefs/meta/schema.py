"""Metadata records in the KV engine: inodes (INOD) and directory entries (DENT); the inode allocator.

Key layouts come from threefs.kv.keys (the one prefix table); values are protobuf messages.
"""
from __future__ import annotations

import asyncio
import stat as st
import time

from threefs.common.errors import Code, make_error
from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn
from threefs.proto import meta_pb2 as mp

ROOT_ID = 0
GC_ROOT_ID = 1
MAX_NAME = 255                # bytes of one path component (NAME_MAX)
MAX_PATH = 4096               # bytes of a path or symlink target (PATH_MAX)
MAX_LINKS = 65535             # nlink limit of a file (3FS: u16)
AT_REMOVEDIR = 0x200
FS_IMMUTABLE_FL = 0x10        # chattr +i: no removal, rename, link, write-open or setattr
FILE, DIRECTORY, SYMLINK = mp.FILE, mp.DIRECTORY, mp.SYMLINK


def now_ns() -> int:
    return time.time_ns()


def check_name(name: str) -> None:
    """Reject names POSIX would reject (empty, '/', NUL, longer than 255 bytes)."""
    if not name or name in (".", ".."):
        raise make_error(Code.INVALID_ARGUMENT, f"invalid name {name!r}")
    if "/" in name or "\0" in name:
        raise make_error(Code.INVALID_ARGUMENT, f"name {name!r} contains '/' or NUL")
    if len(name.encode()) > MAX_NAME:
        raise make_error(Code.NAME_TOO_LONG, f"name is longer than {MAX_NAME} bytes")


async def load_inode(txn: Transaction, inode_id: int, *, snapshot: bool = False,
                     dir_times: bool = True) -> mp.Inode | None:
    """An inode; a directory's mtime/ctime include its last entry change (`touch_dir`) unless
    `dir_times` is off (path walks, which need only the ACL)."""
    raw = await (txn.snapshot_get if snapshot else txn.get)(keys.inode_key(inode_id))
    if raw is None:
        return None
    inode = mp.Inode.FromString(raw)
    if dir_times and inode.type == DIRECTORY:
        t = await txn.snapshot_get(keys.dir_mtime_key(inode_id))
        if t is not None:
            ns = int.from_bytes(t, "little")
            inode.mtime_ns = max(inode.mtime_ns, ns)
            inode.ctime_ns = max(inode.ctime_ns, ns)
    return inode


def touch_dir(txn: Transaction, dir_id: int, ns: int) -> None:
    """An entry of `dir_id` was added or removed at `ns`: its mtime and ctime move (POSIX).

    A blind write to a key of its own, not a change of the directory's inode, so that creates in
    one directory never conflict with each other (3FS leaves directory times alone for that reason);
    the latest writer wins, which is the newest time give or take concurrent commits."""
    if dir_id != GC_ROOT_ID:
        txn.set(keys.dir_mtime_key(dir_id), ns.to_bytes(8, "little"))


def clear_dir_times(txn: Transaction, dir_id: int) -> None:
    """Times set explicitly (utimes on a directory) replace those of its entry changes."""
    txn.clear(keys.dir_mtime_key(dir_id))


def store_inode(txn: Transaction, inode: mp.Inode) -> None:
    txn.set(keys.inode_key(inode.id), inode.SerializeToString())


def delete_inode(txn: Transaction, inode_id: int) -> None:
    """Delete an inode, its inline content, its entry-change time and its extended attributes."""
    txn.clear(keys.inode_key(inode_id))
    txn.clear(keys.inline_data_key(inode_id))
    txn.clear(keys.dir_mtime_key(inode_id))
    prefix = keys.xattr_prefix(inode_id)
    txn.clear_range(prefix, keys.prefix_end(prefix))


async def load_inline(txn: Transaction, inode_id: int, *, snapshot: bool = False) -> bytes:
    """The content of an inline file (b"" when none is stored)."""
    return await (txn.snapshot_get if snapshot else txn.get)(keys.inline_data_key(inode_id)) or b""


def store_inline(txn: Transaction, inode: mp.Inode, data: bytes) -> None:
    """Make `data` the whole content of `inode`, kept in meta (the caller stores the inode)."""
    inode.inline = True
    inode.length = len(data)
    txn.set(keys.inline_data_key(inode.id), data)


def drop_inline(txn: Transaction, inode: mp.Inode) -> None:
    """The content is on storage now (or gone): forget the inline copy (the caller stores the inode)."""
    inode.inline = False
    inode.fresh = False
    txn.clear(keys.inline_data_key(inode.id))


async def load_dirent(txn: Transaction, parent: int, name: str, *, snapshot: bool = False) -> mp.DirEntry | None:
    raw = await (txn.snapshot_get if snapshot else txn.get)(keys.dirent_key(parent, name))
    if raw is None:
        return None
    e = mp.DirEntry.FromString(raw)
    e.parent, e.name = parent, name
    return e


def store_dirent(txn: Transaction, entry: mp.DirEntry) -> None:
    value = mp.DirEntry()
    value.CopyFrom(entry)
    value.ClearField("parent")
    value.ClearField("name")
    txn.set(keys.dirent_key(entry.parent, entry.name), value.SerializeToString())


def delete_dirent(txn: Transaction, parent: int, name: str) -> None:
    txn.clear(keys.dirent_key(parent, name))


async def list_dirents(txn: Transaction, parent: int, prev: str = "", limit: int = 0,
                       *, snapshot: bool = True) -> list[mp.DirEntry]:
    """Entries of directory `parent` with names after `prev`, in name order."""
    prefix = keys.dirent_prefix(parent)
    begin = keys.dirent_key(parent, prev) + b"\0" if prev else prefix
    out = []
    for k, v in await txn.get_range(begin, keys.prefix_end(prefix), limit=limit, snapshot=snapshot):
        e = mp.DirEntry.FromString(v)
        e.parent, e.name = parent, k[len(prefix):].decode()
        out.append(e)
    return out


async def dir_is_empty(txn: Transaction, dir_id: int) -> bool:
    prefix = keys.dirent_prefix(dir_id)
    return not await txn.get_range(prefix, keys.prefix_end(prefix), limit=1)


def acl_of(inode: mp.Inode) -> mp.Acl:
    return mp.Acl(uid=inode.uid, gid=inode.gid, perm=inode.perm, iflags=inode.iflags)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def dirent_for(parent: int, name: str, inode: mp.Inode, uuid: bytes = b"") -> mp.DirEntry:
    e = mp.DirEntry(parent=parent, name=name, id=inode.id, type=inode.type, uuid=uuid)
    if inode.type == DIRECTORY:
        e.dir_acl.CopyFrom(acl_of(inode))
    return e


def mode_of(inode: mp.Inode) -> int:
    kind = {FILE: st.S_IFREG, DIRECTORY: st.S_IFDIR, SYMLINK: st.S_IFLNK}[inode.type]
    return kind | (inode.perm & 0o7777)


class InodeAllocator:
    """Hands out inode ids from blocks of 4096 taken from a counter in the KV engine (3FS §2.3).

    The counter is read and bumped in a serializable transaction, so meta servers sharing one
    engine never receive the same block; block 0 is never handed out (it holds root and GC root).
    """

    BLOCK_BITS = 12
    COUNTER = keys.single_key("inode-alloc")

    def __init__(self, kv: KVEngine) -> None:
        self.kv = kv
        self._next = 0
        self._end = 0
        self._lock = asyncio.Lock()

    @classmethod
    async def take_block(cls, txn: Transaction) -> int:
        """Bump the counter in `txn`: the block returned is nobody else's (a meta server's or a client's)."""
        raw = await txn.get(cls.COUNTER)
        block = int(raw or b"0") + 1
        txn.set(cls.COUNTER, str(block).encode())
        return block

    async def _take_block(self) -> int:
        return await run_txn(self.kv, self.take_block)

    async def allocate(self) -> int:
        async with self._lock:
            if self._next >= self._end:
                block = await self._take_block()
                self._next, self._end = block << self.BLOCK_BITS, (block + 1) << self.BLOCK_BITS
            out = self._next
            self._next += 1
            return out
