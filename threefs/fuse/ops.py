"""pyfuse3 operations over the client library: the FUSE mount (3FS §5.1 behaviour).

Inodes: FUSE's root (1) is threefs's root (0); threefs inode 1 is meta's GC root and never shows;
every other id is used as is. Permission checks are meta's, with the caller's uid/gid/groups.
"""
from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import stat as st
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pyfuse3

from threefs.client.file_io import FileIO
from threefs.client.fs import AsyncClient, AsyncFile
from threefs.fuse import virt
from threefs.fuse.deferred import MIN_LEASE_LEFT, SETTLE_BEFORE_END, Deferred, InodePool
from threefs.fuse.dir_leases import DirLeases
from threefs.fuse.prefetch import Budget, SequentialPrefetch
from threefs.fuse.write_buffer import WriteBuffer
from threefs.meta import acl
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp

log = logging.getLogger("threefs.fuse")

AT_REMOVEDIR = 0x200
WRITE_BUF_SIZE = 1 << 20          # 3FS io_bufs.write_buf_size: coalesce sequential writes up to 1 MiB,
WRITE_BUF_MAX = 4 << 20           # or up to a whole chunk of a file with larger chunks (one chain write each)
WRITE_BEHIND = 8                  # storage writes in flight per handle (FUSE sends one write per file at a time)
WRITE_BEHIND_BYTES = 16 << 20     # and bytes in flight per handle
MOUNT_WRITE_BEHIND = 256 << 20    # and bytes in flight per mount (a handle with none in flight may always send)
NOBODY = 65534
DIR_ATTR_TTL = 1.0                # seconds a directory's attributes answer getattr without meta (see getattr)
GROUPS_TTL = 1.0                  # seconds a caller's supplementary groups are reused (read from /proc/PID/status)
GROUPS_CACHE_MAX = 4096
FILE_TYPES = {mp.FILE: st.S_IFREG, mp.DIRECTORY: st.S_IFDIR, mp.SYMLINK: st.S_IFLNK}


@dataclass
class MountOptions:
    """Kernel cache timeouts (3FS defaults) and behaviour switches of one mount."""

    attr_timeout: float = 30.0
    entry_timeout: float = 30.0
    negative_timeout: float = 5.0
    symlink_timeout: float = 5.0
    writeback_cache: bool = False
    root_squash: bool = False
    read_cache: bool = True
    dir_leases: bool = True       # ask for a lease on each directory made here (threefs.fuse.dir_leases)


@dataclass(eq=False)
class Handle:
    """An open file: the client file plus a write buffer of one contiguous dirty range."""

    file: AsyncFile
    buf: WriteBuffer = field(default_factory=WriteBuffer)
    error: BaseException | None = None
    inflight: dict[asyncio.Future, tuple[int, int]] = field(default_factory=dict)   # write-behind: task -> range
    sends: int = 0                # storage writes started through this handle
    created: bool = False         # made by create(): its entry is not crash-proof in meta until a durable call
    length_ok: bool = False       # meta holds this handle's length: nothing sent since an adopted hint/fsync
    inline_max: int = 0           # a created handle whose content may go inline in meta up to this size
    prefetch: SequentialPrefetch | None = None    # read-ahead beyond the kernel's window (readable handles)
    inline_sync: asyncio.Future | None = None     # set while the buffer is being put inline in meta
    deferred: Deferred | None = None              # created here under a lease, not yet in meta (threefs.fuse.deferred)
    creating: asyncio.Future | None = None        # set while that create is on its way to meta
    settle_timer: asyncio.TimerHandle | None = None
    failed: bool = False                          # its deferred create failed: the file does not exist

    async def inline_settled(self) -> None:
        """Wait while the buffer is being put inline: it may only change once that Sync has answered."""
        while self.inline_sync is not None:
            await self.inline_sync

    @property
    def end(self) -> int:
        return self.buf.end

    @property
    def buf_limit(self) -> int:
        """How far sequential writes are coalesced: 1 MiB, or one chunk of a file with larger chunks;
        a buffer is sent when it reaches a multiple of this offset (whole chunks, chunk-aligned)."""
        return min(max(self.file.io.chunk_size, WRITE_BUF_SIZE), WRITE_BUF_MAX)


class ReadBuffers:
    """Reusable read reply buffers: no 1 MiB allocation, zero-fill and copy per FUSE read.

    pyfuse3 takes the reply from any buffer and copies it to the kernel as soon as the handler
    returns, in the same step of the event loop; a buffer handed out as a reply is therefore taken
    back one loop iteration later (`give_after_reply`).
    """

    def __init__(self, size: int = WRITE_BUF_SIZE, keep: int = 64) -> None:
        self.size = size
        self.keep = keep
        self.free: list[bytearray] = []

    def take(self, n: int) -> memoryview:
        """A writable view of `n` bytes (contents undefined: the read fills them)."""
        if n > self.size:
            return memoryview(bytearray(n))
        raw = self.free.pop() if self.free else bytearray(self.size)
        return memoryview(raw)[:n]

    def give(self, view: memoryview) -> None:
        raw = view.obj
        view.release()
        if isinstance(raw, bytearray) and len(raw) == self.size and len(self.free) < self.keep:
            self.free.append(raw)

    def give_after_reply(self, view: memoryview) -> None:
        asyncio.get_running_loop().call_soon(self.give, view)


@dataclass
class DirHandle:
    """An open directory: its listing, fetched on the first readdir."""

    inode: int
    entries: list[tuple[str, mp.Inode]] | None = None


def to_fuse(ino: int) -> int:
    return pyfuse3.ROOT_INODE if ino == 0 else ino


def to_threefs(ino: int) -> int:
    return 0 if ino == pyfuse3.ROOT_INODE else ino


def fuse_error(e: BaseException) -> pyfuse3.FUSEError:
    """The errno a failure surfaces as: FSError's own, else EIO (logged)."""
    if isinstance(e, pyfuse3.FUSEError):
        return e
    if isinstance(e, OSError) and e.errno:
        return pyfuse3.FUSEError(e.errno)
    log.warning("I/O failure: %r", e)
    return pyfuse3.FUSEError(errno.EIO)


def _guarded(fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A handler whose unexpected failures become EIO (pyfuse3 ends its main loop on any other exception)."""
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except Exception as e:
            if not isinstance(e, OSError):
                log.exception("%s failed", fn.__name__)
            raise fuse_error(e) from None
    return wrapper


_DATA_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EBADF, errno.EINVAL, errno.EPERM,
                errno.EACCES}


def data_error(e: BaseException) -> pyfuse3.FUSEError:
    """A data-path failure (read/write/fsync) as the reader or writer sees it: EIO unless it is a space,
    permission or argument error (storage timeouts and lost replicas are I/O errors to applications)."""
    err = fuse_error(e)
    return err if err.errno in _DATA_ERRNOS else pyfuse3.FUSEError(errno.EIO)


class ThreeFSOperations(pyfuse3.Operations):
    """The FUSE request handlers: each a thin translation onto meta RPCs and AsyncFile I/O."""

    supports_dot_lookup = False

    def __init__(self, client: AsyncClient, mountpoint: str, options: MountOptions | None = None) -> None:
        super().__init__()
        self.client = client
        self.mountpoint = os.path.abspath(mountpoint)
        self.opts = options or MountOptions()
        self.enable_writeback_cache = self.opts.writeback_cache
        self.names: dict[int, tuple[int, str]] = {}    # threefs inode -> a (parent, name) it was seen under
        self.lookups: dict[int, int] = {}
        self.handles: dict[int, Handle] = {}
        self.by_inode: dict[int, set[Handle]] = {}
        self.dirs: dict[int, DirHandle] = {}
        self.dir_attrs: dict[int, tuple[float, mp.Inode]] = {}   # directory inode -> (when fetched, inode)
        self.read_bufs = ReadBuffers()
        self.writing = 0              # bytes of storage writes in flight, all handles (MOUNT_WRITE_BEHIND)
        self.prefetch_budget = Budget()
        self.data_gen: dict[int, int] = {}     # inode -> changes of its data through this mount (open inodes)
        self.cache_validators: dict[int, tuple[int, int, int]] = {}   # inode -> (ctime, length, truncate_ver)
        self.leases = DirLeases(client.meta.client_id, on_recall=self.settle)
        self.pool = InodePool()
        self.deferred: dict[int, Handle] = {}     # inode -> the handle whose create waits (threefs.fuse.deferred)
        self._next_fh = 1
        self._users: dict[tuple[int, int, int], tuple[float, cpb.UserInfo]] = {}   # see user()
        self.virt = virt.VirtualDir(self)

    # ---- helpers ------------------------------------------------------------------------
    def user(self, ctx: pyfuse3.RequestContext) -> cpb.UserInfo:
        """The caller as meta sees it (root squashed to nobody when asked). Reused for GROUPS_TTL per
        (pid, uid, gid), supplementary groups included: a file create asks three times. Callers only
        read it (or copy it into a request)."""
        now = time.monotonic()
        key = (ctx.pid, ctx.uid, ctx.gid)
        hit = self._users.get(key)
        if hit is not None and now - hit[0] < GROUPS_TTL:
            return hit[1]
        uid, gid = ctx.uid, ctx.gid
        groups = self._groups(ctx.pid)
        if self.opts.root_squash:
            uid = NOBODY if uid == 0 else uid
            gid = NOBODY if gid == 0 else gid
            groups = [NOBODY if g == 0 else g for g in groups]
        user = cpb.UserInfo(uid=uid, gid=gid, groups=groups, token=self.client.meta.user.token)
        if len(self._users) >= GROUPS_CACHE_MAX:
            self._users = {k: v for k, v in self._users.items() if now - v[0] < GROUPS_TTL}
        self._users[key] = (now, user)
        return user

    @staticmethod
    def _groups(pid: int) -> list[int]:
        """The caller's supplementary groups (none for the kernel's own requests, pid 0)."""
        if not pid:
            return []
        try:
            return sorted(pyfuse3.get_sup_groups(pid))
        except (OSError, ValueError):
            return []

    def base(self, ctx: pyfuse3.RequestContext | None) -> mp.ReqBase:
        return self.client.meta.base(self.user(ctx) if ctx is not None else None)

    async def call(self, method: str, req, rsp_type):
        if self.deferred:
            await self.settle()           # meta must know every file this mount told the kernel about
        try:
            return await self.client.meta.call(method, req, rsp_type)
        except pyfuse3.FUSEError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
            raise fuse_error(e) from None

    def at(self, ino: int, parent: int | None = None, name: bytes | str | None = None) -> mp.PathAt:
        """A path meta resolves to `ino` (directories by id; others by a name they were seen under)."""
        if parent is not None and name is not None:
            return mp.PathAt(parent=to_threefs(parent), path=os.fsdecode(name))
        tid = to_threefs(ino)
        ref = self.names.get(tid)
        if ref is None:
            return mp.PathAt(parent=tid, path="")      # a directory (or the root)
        return mp.PathAt(parent=ref[0], path=ref[1])

    def remember(self, inode: mp.Inode, parent: int, name: str) -> None:
        self.lookups[inode.id] = self.lookups.get(inode.id, 0) + 1
        if inode.type != mp.DIRECTORY:
            self.names[inode.id] = (to_threefs(parent), name)
        else:
            self.cache_dir(inode)

    def cache_dir(self, inode: mp.Inode) -> None:
        """Keep a directory's attributes for getattr (DIR_ATTR_TTL)."""
        if inode.type == mp.DIRECTORY:
            self.dir_attrs[inode.id] = (time.monotonic(), inode)

    def dir_changed(self, parent_inode: int, ns: int) -> None:
        """This mount added or removed an entry of a directory at `ns` (meta's time): its cached
        attributes move with it, as meta's do (the kernel asks for them again right after)."""
        tid = to_threefs(parent_inode)
        hit = self.dir_attrs.get(tid)
        if hit is not None and ns:
            inode = mp.Inode()
            inode.CopyFrom(hit[1])
            inode.mtime_ns, inode.ctime_ns = max(inode.mtime_ns, ns), max(inode.ctime_ns, ns)
            self.dir_attrs[tid] = (hit[0], inode)

    def cached_dir(self, tid: int) -> mp.Inode | None:
        """A directory's attributes fetched less than DIR_ATTR_TTL ago, if any."""
        hit = self.dir_attrs.get(tid)
        if hit is None or time.monotonic() - hit[0] >= DIR_ATTR_TTL:
            return None
        return hit[1]

    def known_length(self, inode: mp.Inode) -> int:
        """Meta's length, or longer when this mount has written past it (length hints lag)."""
        length = inode.length
        for h in self.by_inode.get(inode.id, ()):
            length = max(length, h.file.length, h.end if h.buf else 0)
        return length

    def attrs(self, inode: mp.Inode) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = to_fuse(inode.id)
        a.generation = 0
        a.st_mode = FILE_TYPES[inode.type] | (inode.perm & 0o7777)
        a.st_nlink = inode.nlink if inode.type != mp.DIRECTORY else max(inode.nlink, 2)
        a.st_uid = inode.uid
        a.st_gid = inode.gid
        size = self.known_length(inode) if inode.type == mp.FILE else (
            len(inode.target.encode()) if inode.type == mp.SYMLINK else 0)
        a.st_size = size
        a.st_blksize = inode.layout.chunk_size or 4096 if inode.type == mp.FILE else 4096
        a.st_blocks = (size + 511) // 512
        a.st_atime_ns, a.st_mtime_ns, a.st_ctime_ns = inode.atime_ns, inode.mtime_ns, inode.ctime_ns
        a.attr_timeout = self.opts.attr_timeout
        a.entry_timeout = self.opts.symlink_timeout if inode.type == mp.SYMLINK else self.opts.entry_timeout
        return a

    async def stat_id(self, ino: int) -> mp.Inode:
        tid = to_threefs(ino)
        rsp = await self.call("BatchStat", mp.BatchStatReq(base=self.base(None), inodes=[tid]), mp.BatchStatRsp)
        if not rsp.found or not rsp.found[0]:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return rsp.inodes[0]

    # ---- names -------------------------------------------------------------------------
    async def lookup(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.virt.owns(parent_inode) or (parent_inode == pyfuse3.ROOT_INODE and name == virt.NAME):
            return self.virt.lookup(parent_inode, name)
        sname = os.fsdecode(name)
        if self.leases.absent(to_threefs(parent_inode), sname):
            a = pyfuse3.EntryAttributes()
            a.st_ino = 0
            a.entry_timeout = 0              # not cached: a recall ends these answers at once
            return a
        if self.deferred:
            await self.settle()
        try:
            rsp = await self.client.meta.call("Lookup", mp.LookupReq(base=self.base(ctx), parent=to_threefs(parent_inode),
                                                                     name=sname), mp.LookupRsp)
        except FileNotFoundError:
            a = pyfuse3.EntryAttributes()
            a.st_ino = 0                     # a negative entry, cached for negative_timeout
            a.entry_timeout = self.opts.negative_timeout
            return a
        except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
            raise fuse_error(e) from None
        await self.flush_inode(rsp.inode.id)
        self.remember(rsp.inode, parent_inode, sname)
        return self.attrs(rsp.inode)

    def forget(self, inode_list) -> None:
        for ino, n in inode_list:
            tid = to_threefs(ino)
            left = self.lookups.get(tid, 0) - n
            if left > 0:
                self.lookups[tid] = left
            else:
                self.lookups.pop(tid, None)
                self.dir_attrs.pop(tid, None)
                self.cache_validators.pop(tid, None)
                if tid not in self.by_inode:
                    self.names.pop(tid, None)

    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        """Attributes from meta, flushing this mount's buffers first (3FS flush_on_stat).

        A directory's attributes are answered from what this mount fetched up to DIR_ATTR_TTL ago: the
        kernel drops them after every create/unlink inside the directory and, with default_permissions,
        asks again on the next path walk, yet in 3FS entries do not change their directory's inode."""
        if self.virt.owns(inode):
            return self.virt.getattr(inode)
        tid = to_threefs(inode)
        cached = self.cached_dir(tid)
        if cached is not None:
            return self.attrs(cached)
        await self.flush_inode(tid)
        node = await self.stat_id(inode)
        self.cache_dir(node)
        return self.attrs(node)

    async def setattr(self, inode: int, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields,
                      fh: int | None, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.virt.owns(inode):
            raise pyfuse3.FUSEError(errno.EPERM)
        tid = to_threefs(inode)
        self.dir_attrs.pop(tid, None)
        if self.deferred:
            await self.settle()           # a truncate goes to storage and meta through the handle itself
        req = mp.SetAttrReq(base=self.base(ctx), path=self.at(inode), follow_last=False)
        if fields.update_mode:
            req.perm = attr.st_mode & 0o7777
        if fields.update_uid:
            req.uid = attr.st_uid
        if fields.update_gid:
            req.gid = attr.st_gid
        if fields.update_atime:
            req.atime_ns = attr.st_atime_ns
        if fields.update_mtime:
            req.mtime_ns = attr.st_mtime_ns
        if fields.update_size:
            await self.truncate(tid, attr.st_size, fh, ctx)
        if fields.update_mtime:
            await self.sync_inode(tid)      # pending writes must not move the mtime set here (tar, rsync)
        if any(req.HasField(f) for f in ("perm", "uid", "gid", "atime_ns", "mtime_ns")) or not fields.update_size:
            inode_pb = (await self.call("SetAttr", req, mp.SetAttrRsp)).inode
        else:
            inode_pb = await self.stat_id(inode)
        self.cache_dir(inode_pb)
        return self.attrs(inode_pb)

    async def truncate(self, tid: int, length: int, fh: int | None, ctx: pyfuse3.RequestContext) -> None:
        """ftruncate through a writable handle, else truncate by name as the caller."""
        self.data_changed(tid)
        await self.flush_inode(tid)
        h = self.handles.get(fh) if fh is not None else None
        if h is None or not h.file.writable:
            h = next((x for x in self.by_inode.get(tid, ()) if x.file.writable), None)
        if h is None:
            await self.call("Truncate", mp.TruncateReq(base=self.base(ctx), path=self.at(to_fuse(tid)),
                                                       length=length), mp.TruncateRsp)
        else:
            try:
                await h.file.truncate(length)
            except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
                raise fuse_error(e) from None
        self.inline_moved(tid)                       # the content is on storage now
        for other in self.by_inode.get(tid, ()):     # open readers too: known_length takes the longest
            other.file.length = length

    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        if self.virt.owns(inode):
            return self.virt.readlink(inode)
        node = await self.stat_id(inode)
        if node.type != mp.SYMLINK:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return os.fsencode(node.target)

    async def _create_file(self, parent_inode: int, name: bytes, mode: int, flags: int,
                           ctx: pyfuse3.RequestContext) -> tuple[mp.CreateRsp, bytes]:
        write = flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
        session = os.urandom(16) if write else b""
        self.leases.adding(to_threefs(parent_inode), os.fsdecode(name))
        req = mp.CreateReq(base=self.base(ctx), path=self.at(0, parent_inode, name), flags=flags, perm=mode & 0o7777,
                           session_id=session)
        rsp = await self.call("Create", req, mp.CreateRsp)
        return rsp, session

    async def mknod(self, parent_inode: int, name: bytes, mode: int, rdev: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.virt.owns(parent_inode):
            raise pyfuse3.FUSEError(errno.EPERM)
        if not st.S_ISREG(mode):
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)        # 3FS has no devices, fifos or sockets
        inode = (await self._create_file(parent_inode, name, mode, os.O_CREAT | os.O_EXCL | os.O_RDONLY, ctx))[0].inode
        self.dir_changed(parent_inode, inode.ctime_ns)
        self.remember(inode, parent_inode, os.fsdecode(name))
        return self.attrs(inode)

    async def mkdir(self, parent_inode: int, name: bytes, mode: int,
                    ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.virt.owns(parent_inode) or (parent_inode == pyfuse3.ROOT_INODE and name == virt.NAME):
            raise pyfuse3.FUSEError(errno.EEXIST if name == virt.NAME else errno.EPERM)
        self.leases.adding(to_threefs(parent_inode), os.fsdecode(name))
        asked_at = time.monotonic()
        rsp = await self.call("Mkdirs", mp.MkdirsReq(base=self.base(ctx), path=self.at(0, parent_inode, name),
                                                     perm=mode & 0o7777, lease_callback=self.leases.callback),
                              mp.MkdirsRsp)
        self.leases.granted(rsp.inode, rsp.lease_seconds, asked_at)
        self.dir_changed(parent_inode, rsp.inode.ctime_ns)
        self.remember(rsp.inode, parent_inode, os.fsdecode(name))
        return self.attrs(rsp.inode)

    async def _remove(self, parent_inode: int, name: bytes, at_flags: int, ctx: pyfuse3.RequestContext) -> None:
        if self.virt.owns(parent_inode):
            self.virt.unlink(parent_inode, name)
            return
        if parent_inode == pyfuse3.ROOT_INODE and name == virt.NAME:
            raise pyfuse3.FUSEError(errno.EPERM)
        rsp = await self.call("Remove", mp.RemoveReq(base=self.base(ctx), path=self.at(0, parent_inode, name),
                                                     at_flags=at_flags), mp.RemoveRsp)
        self.dir_changed(parent_inode, rsp.parent_mtime_ns)

    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        await self._remove(parent_inode, name, 0, ctx)

    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.dir_attrs.clear()        # the removed directory's id is not known here
        await self._remove(parent_inode, name, AT_REMOVEDIR, ctx)

    async def symlink(self, parent_inode: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.virt.owns(parent_inode):
            return await self.virt.symlink(parent_inode, name, target, ctx)
        self.leases.adding(to_threefs(parent_inode), os.fsdecode(name))
        req = mp.SymlinkReq(base=self.base(ctx), path=self.at(0, parent_inode, name), target=os.fsdecode(target))
        rsp = await self.call("Symlink", req, mp.SymlinkRsp)
        inode = rsp.inode if rsp.HasField("inode") else (await self.lookup_inode(parent_inode, name, ctx))
        self.dir_changed(parent_inode, inode.ctime_ns)
        self.remember(inode, parent_inode, os.fsdecode(name))
        return self.attrs(inode)

    async def lookup_inode(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> mp.Inode:
        rsp = await self.call("Lookup", mp.LookupReq(base=self.base(ctx), parent=to_threefs(parent_inode),
                                                     name=os.fsdecode(name)), mp.LookupRsp)
        return rsp.inode

    async def rename(self, parent_inode_old: int, name_old: bytes, parent_inode_new: int, name_new: bytes,
                     flags: int, ctx: pyfuse3.RequestContext) -> None:
        if any(self.virt.owns(p) or (p == pyfuse3.ROOT_INODE and n == virt.NAME)
               for p, n in ((parent_inode_old, name_old), (parent_inode_new, name_new))):
            if self.virt.is_rmrf(parent_inode_new):
                await self.virt.remove_tree(mp.PathAt(parent=to_threefs(parent_inode_old),
                                                      path=os.fsdecode(name_old)), ctx, invalidate=False)
                return
            raise pyfuse3.FUSEError(errno.EPERM)
        meta_flags = (1 if flags & pyfuse3.RENAME_NOREPLACE else 0) | (2 if flags & pyfuse3.RENAME_EXCHANGE else 0)
        self.leases.adding(to_threefs(parent_inode_new), os.fsdecode(name_new))
        req = mp.RenameReq(base=self.base(ctx), src=self.at(0, parent_inode_old, name_old),
                           dst=self.at(0, parent_inode_new, name_new), flags=meta_flags)
        rsp = await self.call("Rename", req, mp.RenameRsp)
        self.dir_attrs.clear()        # a replaced directory is gone, the moved one has a new parent
        if rsp.HasField("inode") and rsp.inode.type != mp.DIRECTORY:
            self.names[rsp.inode.id] = (to_threefs(parent_inode_new), os.fsdecode(name_new))
        if rsp.HasField("exchanged") and rsp.exchanged.type != mp.DIRECTORY:
            self.names[rsp.exchanged.id] = (to_threefs(parent_inode_old), os.fsdecode(name_old))

    async def link(self, inode: int, new_parent_inode: int, new_name: bytes,
                   ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if self.virt.owns(inode) or self.virt.owns(new_parent_inode):
            raise pyfuse3.FUSEError(errno.EPERM)
        self.leases.adding(to_threefs(new_parent_inode), os.fsdecode(new_name))
        req = mp.HardLinkReq(base=self.base(ctx), old_path=self.at(inode),
                             new_path=self.at(0, new_parent_inode, new_name), follow_last=False)
        rsp = await self.call("HardLink", req, mp.HardLinkRsp)
        if rsp.inode.id != to_threefs(inode):
            raise pyfuse3.FUSEError(errno.ESTALE)
        self.dir_changed(new_parent_inode, rsp.inode.ctime_ns)
        self.remember(rsp.inode, new_parent_inode, os.fsdecode(new_name))
        return self.attrs(rsp.inode)

    # ---- files -------------------------------------------------------------------------
    def _file_info(self, h: Handle, flags: int) -> pyfuse3.FileInfo:
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = h
        self.by_inode.setdefault(h.file.inode.id, set()).add(h)
        if flags & os.O_ACCMODE != os.O_WRONLY and not flags & os.O_DIRECT:
            h.prefetch = SequentialPrefetch(h.file.io.read_into, self.prefetch_budget)
        fi = pyfuse3.FileInfo(fh=fh)
        fi.direct_io = bool(flags & os.O_DIRECT) or not self.opts.read_cache
        fi.keep_cache = False         # open() keeps the page cache only for files unchanged since (see there)
        return fi

    def _handle(self, inode: mp.Inode, flags: int, session: bytes, ctx: pyfuse3.RequestContext) -> Handle:
        f = AsyncFile(self.client, inode, flags, f"inode:{inode.id:#x}", session)
        f.user = self.user(ctx)          # syncs and close go as the opener (a non-owner's write drops S_ISUID)
        f.length = self.known_length(inode)
        if session:
            self.client._track_writer(f)
        return Handle(f)

    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if self.virt.owns(inode):
            raise pyfuse3.FUSEError(errno.EISDIR)
        tid = to_threefs(inode)
        if self.opts.writeback_cache and flags & os.O_ACCMODE == os.O_WRONLY:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR     # the kernel reads pages it writes back partially
        write = flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
        session = os.urandom(16) if write else b""
        open_flags = flags & ~(os.O_CREAT | os.O_EXCL)
        rsp = await self.call("Open", mp.OpenReq(base=self.base(ctx), path=self.at(inode), flags=open_flags,
                                                 session_id=session), mp.OpenRsp)
        h = self._handle(rsp.inode, flags, session, ctx)
        if rsp.inode.inline:
            h.file.io.inline = rsp.inline_data
        if write:
            self.inline_moved(tid)      # meta moved an inline file to storage before this write open
        if rsp.inode.id != tid:
            await h.file.close()
            raise pyfuse3.FUSEError(errno.ESTALE)
        if rsp.inode.type == mp.DIRECTORY:
            await h.file.close()
            raise pyfuse3.FUSEError(errno.EISDIR)
        keep = self._cache_still_valid(rsp.inode) and not rsp.need_truncate
        if rsp.need_truncate:
            self.data_changed(tid)
            try:
                await self.flush_inode(tid)
                await h.file.truncate_to(0)            # O_RDONLY|O_TRUNC too: meta checked write permission
            except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
                await h.file.close()
                raise fuse_error(e) from None
            for other in self.by_inode.get(tid, ()):
                other.file.length = 0
        if not self.opts.writeback_cache:
            try:
                pyfuse3.invalidate_inode(inode, attr_only=True)     # size may have changed on another mount
            except OSError:
                pass
        fi = self._file_info(h, flags)
        fi.keep_cache = keep
        return fi

    def _cache_still_valid(self, inode: mp.Inode) -> bool:
        """Close-to-open as NFS does it: the page cache of a file survives an open when meta says the file
        is unchanged since the last open through this mount (same ctime, which every data change moves
        at the writer's close, same length and truncate version); otherwise it is dropped, as 3FS always
        does. Repeated reads of unchanged files (epochs, model loads) then come from memory."""
        v = (inode.ctime_ns, inode.length, inode.truncate_ver)
        same = self.cache_validators.get(inode.id) == v
        self.cache_validators[inode.id] = v
        return same and self.opts.read_cache

    async def create(self, parent_inode: int, name: bytes, mode: int, flags: int,
                     ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        if self.virt.owns(parent_inode) or (parent_inode == pyfuse3.ROOT_INODE and name == virt.NAME):
            raise pyfuse3.FUSEError(errno.EPERM)
        if self.opts.writeback_cache and flags & os.O_ACCMODE == os.O_WRONLY:
            flags = (flags & ~os.O_ACCMODE) | os.O_RDWR
        answered = await self._create_here(parent_inode, name, mode, flags, ctx)
        if answered is not None:
            return answered
        rsp, session = await self._create_file(parent_inode, name, mode, flags | os.O_CREAT, ctx)
        inode = rsp.inode
        h = self._handle(inode, flags, session, ctx)
        if rsp.inode.inline:
            h.file.io.inline = rsp.inline_data
        if rsp.created and session:
            h.inline_max = min(rsp.inline_max, inode.layout.chunk_size)
        if inode.type == mp.DIRECTORY:
            await h.file.close()
            raise pyfuse3.FUSEError(errno.EISDIR)
        if rsp.created:
            self.dir_changed(parent_inode, inode.ctime_ns)
        self.remember(inode, parent_inode, os.fsdecode(name))
        h.created = True
        fi = self._file_info(h, flags)
        return fi, self.attrs(inode)

    # ---- deferred creates (threefs.fuse.deferred) ----------------------------------------------
    async def _create_here(self, parent_inode: int, name: bytes, mode: int, flags: int,
                           ctx: pyfuse3.RequestContext) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes] | None:
        """Answer a create under the directory's lease without meta (None: it goes to meta now)."""
        pid, sname = to_threefs(parent_inode), os.fsdecode(name)
        if (self.opts.writeback_cache or flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR)
                or flags & (os.O_DIRECT | os.O_SYNC | os.O_DSYNC)):
            return None
        lease = self.leases.lease_for_create(pid, sname, MIN_LEASE_LEFT)
        if lease is None:
            return None
        ino = self.pool.take()
        if ino is None:
            try:
                self.pool.refill(await self.call("AllocateInodes", mp.AllocateInodesReq(base=self.base(ctx)),
                                                 mp.AllocateInodesRsp))
            except pyfuse3.FUSEError:
                return None                            # meta answers the create itself
            lease = self.leases.lease_for_create(pid, sname, MIN_LEASE_LEFT)
            ino = self.pool.take()
            if lease is None or ino is None or not self.pool.inline_max:
                return None
        self.leases.adding(pid, sname)
        user = self.user(ctx)
        parent = lease.dir
        gid = parent.gid if parent.perm & acl.S_ISGID else user.gid
        perm = mode & 0o7777
        if perm & acl.S_ISGID and user.uid != 0 and not acl.in_group(user, gid):
            perm &= ~acl.S_ISGID                       # as meta's create does
        now = time.time_ns()
        inode = mp.Inode(id=ino, type=mp.FILE, uid=user.uid, gid=gid, perm=perm, nlink=1, atime_ns=now,
                         mtime_ns=now, ctime_ns=now, fresh=True)
        inode.layout.CopyFrom(parent.layout)            # its chunk size; meta picks the chains at the create
        h = self._handle(inode, flags, os.urandom(16), ctx)
        h.deferred = Deferred(pid, sname, flags | os.O_CREAT | os.O_EXCL, mode & 0o7777, now, self.base(ctx))
        h.inline_max = min(self.pool.inline_max, inode.layout.chunk_size)
        h.created = True
        self.deferred[ino] = h
        loop = asyncio.get_running_loop()
        h.settle_timer = loop.call_later(max(0.0, lease.until - time.monotonic() - SETTLE_BEFORE_END),
                                         lambda: asyncio.ensure_future(self._settle_quietly(h)))
        self.dir_changed(parent_inode, now)
        self.remember(inode, parent_inode, sname)
        return self._file_info(h, flags), self.attrs(inode)

    async def settle(self, parent: int | None = None) -> None:
        """Send the pending creates (of `parent` only: its lease is being recalled) to meta; a failed one
        stays with its handle, whose next call reports it."""
        for h in [h for h in self.deferred.values() if parent is None or h.deferred.parent == parent]:
            await self._settle_quietly(h)

    async def _settle_quietly(self, h: Handle) -> None:
        try:
            await self._materialize(h)
        except pyfuse3.FUSEError:
            pass

    async def _materialize(self, h: Handle) -> None:
        """Make sure meta has the file of `h` (waiting for a create already on its way)."""
        while h.creating is not None:
            await h.creating
        if h.deferred is not None:
            await self._send_create(h, None)
        if h.failed:
            raise data_error(h.error or OSError(errno.EIO, "the file's create failed"))

    async def _send_create(self, h: Handle, content: bytes | None) -> mp.CreateRsp:
        """The deferred create of `h`, with the whole content and a durable commit when `content` is given."""
        d = h.deferred
        f = h.file
        gate = asyncio.get_running_loop().create_future()
        h.creating = gate
        try:
            req = mp.CreateReq(base=d.base, path=mp.PathAt(parent=d.parent, path=d.name), flags=d.flags, perm=d.perm,
                               session_id=f.session_id, inode_id=f.inode.id, time_ns=d.time_ns,
                               inline_data=content or b"", sync=content is not None)
            try:
                rsp = await self.client.meta.call("Create", req, mp.CreateRsp)
            except Exception as e:  # noqa: BLE001 - the error is the file's: its handle reports it
                self._create_failed(h, e)
                raise data_error(e) from None
            self._undefer(h)
            inline = f.io.inline
            told = (f.inode.uid, f.inode.gid, f.inode.perm)
            if (rsp.inode.uid, rsp.inode.gid, rsp.inode.perm) != told:    # e.g. meta mapped the caller's token
                try:
                    pyfuse3.invalidate_inode(to_fuse(rsp.inode.id), attr_only=True)
                except OSError:
                    pass
            f.inode = rsp.inode                     # with the chains meta picked
            f.io = FileIO(rsp.inode, self.client.mgmtd, self.client.storage)
            f.io.inline = inline
            if h.prefetch is not None:
                h.prefetch = SequentialPrefetch(f.io.read_into, self.prefetch_budget)
            return rsp
        finally:
            h.creating = None
            gate.set_result(None)

    def _undefer(self, h: Handle) -> None:
        """The create of `h` is no longer pending (sent, or failed)."""
        self.deferred.pop(h.file.inode.id, None)
        if h.settle_timer is not None:
            h.settle_timer.cancel()
        h.deferred = None

    def _create_failed(self, h: Handle, e: BaseException) -> None:
        """Meta refused (or never got) a create the kernel was told had succeeded: the file never existed."""
        d = h.deferred
        log.warning("deferred create of %r in directory %#x failed: %r", d.name, d.parent, e)
        self._undefer(h)
        h.failed = True
        h.error = e
        h.buf.clear()
        h.inline_max = 0
        try:
            pyfuse3.invalidate_entry_async(to_fuse(d.parent), os.fsencode(d.name), ignore_enoent=True)
        except OSError:
            pass

    def _get(self, fh: int) -> Handle:
        h = self.handles.get(fh)
        if h is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        return h

    async def _send(self, h: Handle, data: list[memoryview], off: int) -> None:
        """Start a storage write (write-behind); waits while too many are in flight or one overlaps it."""
        if h.deferred is not None or h.creating is not None:
            await self._materialize(h)              # storage writes need the chains meta picks at the create
        if h.file.io.inline is not None and h.file.writable:
            try:
                await h.file.materialize()          # the inline content goes to storage before any new byte
            except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
                raise data_error(e) from None
            self.inline_moved(h.file.inode.id)
        h.inline_max = 0
        end = off + sum(p.nbytes for p in data)
        while True:
            overlap = [t for t, (o, e) in h.inflight.items() if o < end and off < e]
            busy = (len(h.inflight) >= WRITE_BEHIND or sum(e - o for o, e in h.inflight.values()) >= WRITE_BEHIND_BYTES
                    or self.writing >= MOUNT_WRITE_BEHIND)
            wait = overlap or (list(h.inflight) if busy else [])
            if not wait:
                break
            await asyncio.wait(wait, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.ensure_future(h.file.pwrite(data, off))
        h.inflight[task] = (off, end)
        h.sends += 1
        h.length_ok = False
        self.writing += end - off
        task.add_done_callback(lambda t: self._sent(h, t, end - off))

    def _sent(self, h: Handle, task: asyncio.Future, size: int) -> None:
        self.writing -= size
        h.inflight.pop(task, None)
        exc = None if task.cancelled() else task.exception()
        if task.cancelled():
            exc = OSError(errno.EIO, "write cancelled")
        if exc is not None and h.error is None:
            h.error = exc

    async def flush_handle(self, h: Handle) -> None:
        """Send the buffer and wait for every write in flight; a failure is reported once, here."""
        await h.inline_settled()
        if h.buf:
            await self._send(h, *h.buf.take())
        while h.inflight:
            await asyncio.wait(list(h.inflight))
        if h.error is not None:
            e, h.error = h.error, None
            raise data_error(e)

    async def flush_inode(self, tid: int) -> None:
        """Flush every buffer this mount holds for an inode (before reads, stats and truncates); a small
        created file's content goes to meta, as at its close."""
        for h in list(self.by_inode.get(tid, ())):
            if h.buf or h.inflight:
                try:
                    if not await self._flush_inline(h):
                        await self.flush_handle(h)
                except pyfuse3.FUSEError as e:
                    h.error = OSError(e.errno, os.strerror(e.errno))

    async def sync_inode(self, tid: int) -> None:
        """Flush and sync every handle of an inode that has written (precise length and mtime now)."""
        for h in list(self.by_inode.get(tid, ())):
            if await self._flush_inline(h):
                continue                  # one durable meta commit: length, content and mtime
            await self.flush_handle(h)
            if h.file.written:
                await self._sync(h)

    async def flush_all(self) -> None:
        """The periodic sync task (3FS): buffers left by writers that went quiet go to storage."""
        for tid in list(self.by_inode):
            await self.flush_inode(tid)

    def data_changed(self, tid: int) -> None:
        """This mount is changing an inode's data: read-ahead windows of it are stale from now on."""
        if tid in self.by_inode:
            self.data_gen[tid] = self.data_gen.get(tid, 0) + 1

    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:
        """Up to `size` bytes at `off` (flushing this mount's buffers of the inode first), clipped to the length."""
        h = self._get(fh)
        tid = h.file.inode.id
        await self.flush_inode(tid)
        length = self.known_length(h.file.inode)
        n = max(0, min(size, length - off))
        if n == 0:
            return b""
        inline = h.file.io.inline
        if inline is not None and off + n <= len(inline):
            return memoryview(inline)[off:off + n]
        if h.prefetch is not None:
            try:
                view = await h.prefetch.read(off, n, length, self.data_gen.get(tid, 0))
            except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
                raise data_error(e) from None
            if view is not None:
                return view
        buf = self.read_bufs.take(n)
        try:
            got = await h.file.io.read_into(off, buf, length)
        except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
            raise data_error(e) from None      # the buffer is dropped: a late reply may still land in it
        self.read_bufs.give_after_reply(buf)
        return buf if got == n else buf[:got]

    async def write(self, fh: int, off: int, buf: bytes) -> int:
        """Coalesce into the 1 MiB buffer; full buffers and large writes go to storage behind the caller."""
        h = self._get(fh)
        await h.inline_settled()
        if h.error is not None:
            e, h.error = h.error, None
            raise data_error(e)
        if h.failed:
            raise pyfuse3.FUSEError(errno.EIO)     # its deferred create failed: the file does not exist
        if not h.file.writable:
            raise pyfuse3.FUSEError(errno.EBADF)
        self.data_changed(h.file.inode.id)
        if h.buf and off != h.end:
            await self._send(h, *h.buf.take())
        if h.file.flags & os.O_DIRECT:
            await self._send(h, [memoryview(buf)], off)
            await self.flush_handle(h)            # O_DIRECT: on storage before write returns
            return len(buf)
        h.buf.add(off, buf)
        limit = h.buf_limit
        while h.buf:
            # whole limit-aligned pieces go (one chunk each with large chunks); the rest waits for more
            cut = (h.buf.off // limit + 1) * limit - h.buf.off
            if len(h.buf) < cut:
                break
            await self._send(h, *h.buf.take(cut))
        return len(buf)

    async def flush(self, fh: int) -> None:
        """close(2): buffered data to storage and this writer's length to meta, before close returns.

        RELEASE comes asynchronously after close(2), so close-to-open needs the length here: this
        writer's length hint (one meta call), sent while the data travels to storage; close returns
        once both succeeded. Should the data fail, release corrects the length with a precise query;
        when the hint was adopted, release only drops the session (no precise length needed).
        Disks are synced only by fsync (3FS: storage commits without fsync)."""
        h = self._get(fh)
        if await self._flush_inline(h):
            return
        end = self._pending_end(h)
        if not (h.file.hint_dirty or end > h.file.length):
            if h.file.modified or h.buf or h.inflight:      # written in place: the length stays, mtime moves
                await self._flush_with(h, mp.SyncReq(base=h.file.base(), inode=h.file.inode.id, modified=True,
                                                     session_id=h.file.session_id))
            else:
                await self.flush_handle(h)
            if h.created:
                await self._durable(h.file.inode.id)
                h.created = False
            return
        if h.buf:
            await self._send(h, *h.buf.take())
        sends = h.sends
        hint = mp.VersionedLength(length=end, truncate_ver=h.file.inode.truncate_ver)
        h.file.written = True            # the hint may land without the data: release then asks storage
        synced = await self._flush_with(h, mp.SyncReq(base=h.file.base(), inode=h.file.inode.id,
                                                      update_length=True, length_hint=hint, modified=True,
                                                      session_id=h.file.session_id))
        if h.file.length <= end:
            h.file.hint_dirty = False
        h.created = False             # a Sync commits durably, and with it everything meta committed before
        adopted = synced.inode.truncate_ver == hint.truncate_ver and synced.inode.length >= end
        h.length_ok = adopted and h.sends == sends and not h.buf

    def _inline_content(self, h: Handle) -> bytes | None:
        """A created file's whole content, when it may stay in meta: it fits, it has news in the buffer,
        and no byte of it went to storage (threefs.meta.inline)."""
        f = h.file
        if not h.inline_max or not h.buf or h.sends or h.inflight or h.error is not None or f.storage_touched:
            return None
        base = f.io.inline or b""
        end = max(len(base), h.end)
        if end > h.inline_max:
            return None
        content = bytearray(end)
        content[:len(base)] = base
        h.buf.copy_into(content)
        return bytes(content)

    async def _flush_inline(self, h: Handle) -> bool:
        """Put a small created file's content in meta (one durable commit, no chain write); False when it
        does not qualify or meta declined (someone else opened it for writing): the caller writes it."""
        await h.inline_settled()
        data = self._inline_content(h)
        create = h.deferred is not None and h.creating is None and data is not None
        if not create and (h.deferred is not None or h.creating is not None):
            await self._materialize(h)
        if data is None:
            return False
        f = h.file
        # Writes (and other flushes) of this handle wait for the answer: the buffer is cleared below, and
        # bytes appended to it meanwhile (a stat or the periodic flush racing a writer) would go with it.
        gate = asyncio.get_running_loop().create_future()
        h.inline_sync = gate
        try:
            if create:    # a deferred create: the file, its whole content and the durable commit in one call
                inode: mp.Inode | None = (await self._send_create(h, data)).inode
            else:
                rsp = await self.call("Sync", mp.SyncReq(base=f.base(), inode=f.inode.id, inline_data=data,
                                                         modified=True, session_id=f.session_id), mp.SyncRsp)
                inode = rsp.inode if rsp.inline_accepted else None
        finally:
            h.inline_sync = None
            gate.set_result(None)
        if inode is None:
            h.inline_max = 0
            return False
        h.buf.clear()
        f.inode, f.io.inline, f.length = inode, data, len(data)
        f.hint_dirty = f.modified = False
        h.created = False                 # committed durably, and with it the create
        h.length_ok = True
        for other in self.by_inode.get(f.inode.id, ()):
            if not other.file.writable:
                other.file.io.inline = data       # this mount's readers see what it wrote
        return True

    def inline_moved(self, tid: int) -> None:
        """An inode's content is on storage now (meta moved it, or a handle did): this mount's handles
        read it there, and none of them puts content inline any more."""
        for other in self.by_inode.get(tid, ()):
            other.file.io.inline = None
            other.inline_max = 0

    async def _flush_with(self, h: Handle, req: mp.SyncReq) -> mp.SyncRsp:
        """The buffered data to storage and, alongside it, `req` to meta (a length hint and/or the new
        mtime); returns once both succeeded. The Sync reports every write it waited for as modified."""
        if h.buf:
            await self._send(h, *h.buf.take())
        flushed, synced = await asyncio.gather(self.flush_handle(h), self.call("Sync", req, mp.SyncRsp),
                                               return_exceptions=True)
        for outcome in (flushed, synced):
            if isinstance(outcome, BaseException):
                raise outcome if isinstance(outcome, pyfuse3.FUSEError) else fuse_error(outcome)
        h.file.modified = False
        return synced

    @staticmethod
    def _pending_end(h: Handle) -> int:
        """The file length once the buffer and every write in flight have landed."""
        return max([h.file.length, h.end if h.buf else 0, *(e for _, e in h.inflight.values())])

    async def _sync(self, h: Handle) -> None:
        """Durable data and the precise length in meta (3FS: flush/fsync/close)."""
        sends = h.sends
        try:
            await h.file.fsync()
        except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
            raise data_error(e) from None
        h.file.written = False
        h.file.hint_dirty = False
        h.created = False
        h.length_ok = h.sends == sends and not h.buf and not h.inflight

    async def fsync(self, fh: int, datasync: bool) -> None:
        h = self._get(fh)
        if await self._flush_inline(h):
            return                        # a durable meta commit holds the whole content
        await self._materialize(h)
        await self.flush_handle(h)
        if h.file.writable:
            await self._sync(h)

    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh, None)
        if h is None:
            return
        tid = h.file.inode.id
        if h.prefetch is not None:
            h.prefetch.drop()
        if h.deferred is not None or h.creating is not None:
            try:
                await self._materialize(h)
            except pyfuse3.FUSEError:
                pass                      # reported by flush already; the file never existed
        try:
            if not h.failed:
                await self.flush_handle(h)
        finally:
            group = self.by_inode.get(tid)
            if group is not None:
                group.discard(h)
                if not group:
                    del self.by_inode[tid]
                    self.data_gen.pop(tid, None)
            if h.failed:                  # no file, no session: nothing to end in meta
                h.file.closed = True
                self.client._writers.discard(h.file)
                return
            try:
                await h.file.close(length_known=(h.length_ok or (h.sends == 0 and not h.file.written))
                                   and not h.file.modified)
            except Exception as e:  # noqa: BLE001 - any failure becomes an errno, never a daemon crash
                log.warning("close of inode %#x failed: %r", tid, e)

    # ---- directories --------------------------------------------------------------------
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        if self.virt.owns(inode):
            return self.virt.opendir(inode)
        node = await self.stat_id(inode)
        if node.type != mp.DIRECTORY:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        if not acl.allowed(self.user(ctx), node.uid, node.gid, node.perm, acl.R):
            raise pyfuse3.FUSEError(errno.EACCES)
        fh = self._next_fh
        self._next_fh += 1
        self.dirs[fh] = DirHandle(to_threefs(inode))
        return fh

    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        if self.virt.owns_dir_handle(fh):
            self.virt.readdir(fh, start_id, token)
            return
        d = self.dirs.get(fh)
        if d is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        if d.entries is None or start_id == 0:
            d.entries = await self._list(d.inode)
        for i in range(start_id, len(d.entries)):
            name, inode = d.entries[i]
            if not pyfuse3.readdir_reply(token, os.fsencode(name), self.attrs(inode), i + 1):
                return
            self.remember(inode, to_fuse(d.inode), name)

    async def _list(self, dir_id: int) -> list[tuple[str, mp.Inode]]:
        out: list[tuple[str, mp.Inode]] = []
        prev = ""
        while True:
            req = mp.ListReq(base=self.base(None), path=mp.PathAt(parent=dir_id, path=""), prev=prev, limit=1024,
                             with_inodes=True)
            page = await self.call("List", req, mp.ListRsp)
            out.extend((e.name, i) for e, i in zip(page.entries, page.inodes))
            if not page.more or not page.entries:
                return out
            prev = page.entries[-1].name

    async def releasedir(self, fh: int) -> None:
        if self.virt.owns_dir_handle(fh):
            self.virt.releasedir(fh)
            return
        self.dirs.pop(fh, None)

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        """Make the directory's entries crash-proof: meta commits creates without fsync (DESIGN §8)."""
        if self.virt.owns_dir_handle(fh):
            return
        d = self.dirs.get(fh)
        if d is None:
            raise pyfuse3.FUSEError(errno.EBADF)
        await self._durable(d.inode)

    async def _durable(self, tid: int) -> None:
        """A durable no-op in meta (Sync without a length): every earlier meta commit survives a machine crash."""
        await self.call("Sync", mp.SyncReq(base=self.base(None), inode=tid), mp.SyncRsp)

    # ---- misc --------------------------------------------------------------------------
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        rsp = await self.call("StatFs", mp.StatFsReq(base=self.base(ctx)), mp.StatFsRsp)
        s = pyfuse3.StatvfsData()
        s.f_bsize = s.f_frsize = 4096
        s.f_blocks = rsp.capacity // 4096
        s.f_bfree = s.f_bavail = rsp.free // 4096
        s.f_files = max(rsp.inodes, 1) + (1 << 32)
        s.f_ffree = s.f_favail = 1 << 32
        s.f_namemax = 255
        return s

    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        if self.virt.owns(inode):
            return True
        node = await self.stat_id(inode)
        want = (acl.R if mode & os.R_OK else 0) | (acl.W if mode & os.W_OK else 0) | (acl.X if mode & os.X_OK else 0)
        user = self.user(ctx)
        if user.uid == 0 and want & acl.X and node.type == mp.FILE and not node.perm & 0o111:
            return False                                  # root may execute only what someone may
        return acl.allowed(user, node.uid, node.gid, node.perm, want)

    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        sname = os.fsdecode(name)
        if self.virt.owns(inode) or not sname.startswith("user."):
            raise pyfuse3.FUSEError(errno.EOPNOTSUPP)
        self.dir_attrs.pop(to_threefs(inode), None)
        await self.call("SetXattr", mp.SetXattrReq(base=self.base(ctx), path=self.at(inode), name=sname,
                                                   value=bytes(value), follow_last=False), mp.SetXattrRsp)

    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        sname = os.fsdecode(name)
        if self.virt.owns(inode) or not sname.startswith("user."):
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)    # security.capability is asked on every write
        rsp = await self.call("GetXattr", mp.GetXattrReq(base=self.base(ctx), path=self.at(inode), name=sname,
                                                         follow_last=False), mp.GetXattrRsp)
        return rsp.value

    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        if self.virt.owns(inode):
            return []
        rsp = await self.call("ListXattr", mp.ListXattrReq(base=self.base(ctx), path=self.at(inode),
                                                           follow_last=False), mp.ListXattrRsp)
        return [os.fsencode(n) for n in rsp.names]

    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        sname = os.fsdecode(name)
        if self.virt.owns(inode) or not sname.startswith("user."):
            raise pyfuse3.FUSEError(pyfuse3.ENOATTR)
        self.dir_attrs.pop(to_threefs(inode), None)
        await self.call("RemoveXattr", mp.RemoveXattrReq(base=self.base(ctx), path=self.at(inode), name=sname,
                                                         follow_last=False), mp.RemoveXattrRsp)

    async def close_all(self) -> None:
        """On unmount: flush and close every handle still open."""
        for fh in list(self.handles):
            try:
                await self.release(fh)
            except pyfuse3.FUSEError as e:
                log.warning("flush at unmount failed: %s", os.strerror(e.errno))


_HANDLERS = ("lookup", "getattr", "setattr", "readlink", "mknod", "mkdir", "unlink", "rmdir", "symlink", "rename",
             "link", "open", "create", "read", "write", "flush", "fsync", "release", "opendir", "readdir",
             "releasedir", "fsyncdir", "statfs", "access", "setxattr", "getxattr", "listxattr", "removexattr")
for _name in _HANDLERS:
    setattr(ThreeFSOperations, _name, _guarded(getattr(ThreeFSOperations, _name)))
