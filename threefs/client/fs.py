"""The os-like Python client: `AsyncClient` (asyncio core) and `Client` (thread-safe sync facade).

    c = Client("127.0.0.1:8000")
    with c.open("/data/x.bin", "wb") as f:
        f.write(b"...")
    c.stat("/data/x.bin").st_size

Errors are builtin exception types (FileNotFoundError, IsADirectoryError, ...), all FSError.
"""
from __future__ import annotations

import asyncio
import io
import logging
import os
import posixpath
import stat as st
import threading
import weakref
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from dataclasses import dataclass

from threefs.client.file_io import FileIO, copy_content
from threefs.client.meta_client import MetaClient
from threefs.common.buffers import byte_views, uninitialized_bytearray
from threefs.common.errors import Code, FSError, make_error
from threefs.mgmtd.client import MgmtdClient
from threefs.net.rpc import RpcClient
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp
from threefs.storage.client import StorageClient

log = logging.getLogger(__name__)
AT_REMOVEDIR = 0x200
RENAME_NOREPLACE = 1       # renameat2 flags (Linux values; `os` has no names for them)
RENAME_EXCHANGE = 2
SESSION_BATCH = 1024        # closed write sessions removed per PruneSession call
T = TypeVar("T")
# Connected AsyncClients with the pid that connected them: a forked child inherits the parent's
# entries, and gRPC's asyncio stack hangs forever in a child forked while it was live.
_CONNECTED: weakref.WeakKeyDictionary[AsyncClient, int] = weakref.WeakKeyDictionary()
_TYPE_BITS = {mp.FILE: st.S_IFREG, mp.DIRECTORY: st.S_IFDIR, mp.SYMLINK: st.S_IFLNK}


@dataclass(frozen=True)
class StatResult:
    """os.stat_result-like view of an inode."""

    st_ino: int
    st_mode: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_blksize: int
    inode: mp.Inode

    @property
    def st_atime(self) -> float:
        return self.st_atime_ns / 1e9

    @property
    def st_mtime(self) -> float:
        return self.st_mtime_ns / 1e9

    @property
    def st_ctime(self) -> float:
        return self.st_ctime_ns / 1e9

    @classmethod
    def of(cls, inode: mp.Inode) -> StatResult:
        size = inode.length if inode.type == mp.FILE else (len(inode.target) if inode.type == mp.SYMLINK else 0)
        return cls(inode.id, _TYPE_BITS[inode.type] | (inode.perm & 0o7777), inode.nlink, inode.uid, inode.gid, size,
                   inode.atime_ns, inode.mtime_ns, inode.ctime_ns, inode.layout.chunk_size or 4096, inode)


def _path(p: str | os.PathLike) -> mp.PathAt:
    s = os.fspath(p)
    if not s:
        raise make_error(Code.NOT_FOUND, "empty path")
    return mp.PathAt(parent=0, path=s if s.startswith("/") else "/" + s)


def _check_not_forked_while_connected() -> None:
    """Raise RuntimeError in a child forked while its parent had a connected client (gRPC would hang there)."""
    inherited = [pid for pid in list(_CONNECTED.values()) if pid != os.getpid()]
    if inherited:
        raise RuntimeError(
            f"this process was forked from process {inherited[0]} while it had a connected threefs client; "
            "gRPC cannot be used in such a child (it hangs). Close clients before forking, or start "
            "workers with the 'spawn' or 'forkserver' multiprocessing context")


def default_user() -> cpb.UserInfo:
    """This process's uid/gid/groups, with the token from $THREEFS_TOKEN (needed when meta authenticates)."""
    return cpb.UserInfo(uid=os.getuid(), gid=os.getgid(), groups=os.getgroups(),
                        token=os.environ.get("THREEFS_TOKEN", ""))


def parse_mode(mode: str) -> tuple[int, bool]:
    """open() mode string -> (os flags, binary)."""
    base = mode.replace("b", "").replace("t", "")
    plus = "+" in base
    table = {"r": os.O_RDONLY, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
             "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL}
    key = base.replace("+", "")
    if len(key) != 1 or key not in table or ("b" in mode and "t" in mode):
        raise ValueError(f"invalid mode: {mode!r}")
    flags = table[key]
    if plus:
        flags = (flags & ~os.O_WRONLY) | os.O_RDWR
    return flags, "b" in mode


class AsyncFile:
    """An open file: position, cached length (close-to-open), a write session when writable."""

    def __init__(self, client: AsyncClient, inode: mp.Inode, flags: int, path: str, session_id: bytes) -> None:
        self.client = client
        self.inode = inode
        self.flags = flags
        self.path = path
        self.session_id = session_id
        self.io = FileIO(inode, client.mgmtd, client.storage)
        self.length = inode.length
        self.pos = 0
        self.written = False
        self.hint_dirty = False     # written past the length meta knows: the lease loop sends a hint
        self.modified = False       # written since the last sync/close told meta (which then sets mtime)
        self.closed = False
        self.storage_touched = False    # this handle wrote or truncated on storage (it may not go inline)
        self.inline_max = 0             # created by this handle: content up to this size waits in `_staged`
        self._staged: bytearray | None = None   # that content, for meta at fsync/close (threefs.meta.inline)
        self.user: cpb.UserInfo | None = None   # who opened it, when not the client's own user (the mount)

    @property
    def readable(self) -> bool:
        return self.flags & os.O_ACCMODE in (os.O_RDONLY, os.O_RDWR)

    @property
    def writable(self) -> bool:
        return self.flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)

    def base(self) -> mp.ReqBase:
        """The request base of this handle's syncs and close: as its opener (meta clears S_ISUID and
        S_ISGID after a write by a non-owner, and checks the writer's rights)."""
        return self.client.meta.base(self.user)

    def _check(self, write: bool) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        if write and not self.writable:
            raise make_error(Code.BAD_FILE, f"{self.path} is not open for writing")
        if not write and not self.readable:
            raise make_error(Code.BAD_FILE, f"{self.path} is not open for reading")

    async def preadinto(self, buf, offset: int) -> int:
        self._check(write=False)
        if offset < 0:
            raise make_error(Code.INVALID_ARGUMENT, "negative offset")
        dest = memoryview(buf).cast("B")
        if self._staged is not None:
            return copy_content(self._staged, offset, dest, max(0, min(len(dest), self.length - offset)))
        return await self.io.read_into(offset, dest, self.length)

    async def pread(self, size: int, offset: int) -> bytes:
        size = max(0, min(size, self.length - offset))
        buf = uninitialized_bytearray(size)       # the read fills the first n bytes; only those are returned
        n = await self.preadinto(buf, offset)
        return bytes(buf[:n]) if n < size else bytes(buf)

    async def pwrite(self, data, offset: int) -> int:
        """Write `data` (bytes-like, or a list of them written back to back) at `offset`."""
        self._check(write=True)
        if offset < 0:
            raise make_error(Code.INVALID_ARGUMENT, "negative offset")
        staged = self._stage(data, offset)
        if staged is not None:
            return staged
        await self.unstage()
        n = await self.io.write(offset, data)
        self.wrote(offset, n)
        return n

    def _stage(self, data, offset: int) -> int | None:
        """Keep a small created file's bytes in memory until fsync/close puts them in meta; returns how
        many were kept, or None when the file may not (or no longer) go inline: the caller writes to
        storage. `data` may come in pieces (a list), copied here only when they are kept."""
        if not self.inline_max or self.storage_touched:
            return None
        parts = byte_views(data)
        end = offset + sum(p.nbytes for p in parts)
        if end > self.inline_max:
            return None
        if self._staged is None:
            self._staged = bytearray(self.io.inline or b"")
        if len(self._staged) < end:
            self._staged.extend(bytes(end - len(self._staged)))
        pos = offset
        for p in parts:
            self._staged[pos:pos + p.nbytes] = p
            pos += p.nbytes
        self.length = max(self.length, end)
        self.modified = True
        return end - offset

    async def unstage(self) -> None:
        """Staged bytes (and content already in meta) go to storage, and this handle stages no more: it
        outgrew meta's limit, meta declined, or it truncates or does ring I/O."""
        self.inline_max = 0
        staged, self._staged = self._staged, None
        try:
            await self.materialize()         # content an earlier fsync put in meta goes first
            if staged:
                self.wrote(0, await self.io.write(0, staged))
        except BaseException:
            self._staged = staged            # not lost: a retry of the failed call sends it again
            raise

    async def _put_inline(self) -> bool:
        """Staged content to meta (one durable commit, no chain write); False when there is none or meta
        declined (the staged bytes went to storage then)."""
        staged = self._staged
        if staged is None:
            return False
        if staged and len(staged) <= self.inline_max:
            data = bytes(staged)
            meta = self.client.meta
            rsp = await meta.call("Sync", mp.SyncReq(base=self.base(), inode=self.inode.id, inline_data=data,
                                                     modified=True, session_id=self.session_id), mp.SyncRsp)
            if rsp.inline_accepted:
                self._staged = None
                self.io.inline, self.inode, self.length, self.modified = data, rsp.inode, len(data), False
                return True
        await self.unstage()
        return False

    async def materialize(self) -> None:
        """Before this handle changes data on storage: content it put inline in meta goes to storage
        first and meta forgets the inline copy (threefs.meta.inline; a no-op for other files)."""
        data = self.io.inline
        if data is None or not self.writable:
            return
        self.storage_touched = True
        meta = self.client.meta
        if data:
            # first end `fresh` (meta GC skips storage for inline files still fresh: none has a chunk)
            await meta.call("Sync", mp.SyncReq(base=self.base(), inode=self.inode.id, end_fresh=True,
                                               session_id=self.session_id), mp.SyncRsp)
            await self.io.write_first_chunk_if_absent(data)
        rsp = await meta.call("Sync", mp.SyncReq(base=self.base(), inode=self.inode.id, clear_inline=True,
                                                 session_id=self.session_id), mp.SyncRsp)
        self.inode = rsp.inode
        self.io.inline = None

    def wrote(self, offset: int, n: int) -> None:
        """Account `n` bytes written at `offset` through this handle (pwrite, or the batched API's ring)."""
        self.storage_touched = True
        self.written = True
        self.modified = True        # the next sync/close moves mtime, even when the length stays
        if offset + n > self.length:
            self.hint_dirty = True
        self.length = max(self.length, offset + n)

    async def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self.length - self.pos)
        data = await self.pread(size, self.pos)
        self.pos += len(data)
        return data

    async def write(self, data) -> int:
        if self.flags & os.O_APPEND:
            self.pos = self.length
        n = await self.pwrite(data, self.pos)
        self.pos += n
        return n

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.length}[whence]
        if base + offset < 0:
            raise make_error(Code.INVALID_ARGUMENT, "negative seek position")
        self.pos = base + offset
        return self.pos

    async def truncate(self, length: int | None = None) -> int:
        self._check(write=True)
        length = self.pos if length is None else length
        if length < 0:
            raise make_error(Code.INVALID_ARGUMENT, "negative length")
        return await self.truncate_to(length)

    async def truncate_to(self, length: int) -> int:
        """Cut or extend the file to `length`: for a writable handle, or for an open with O_TRUNC that
        meta allowed (Linux truncates on O_RDONLY|O_TRUNC too, given write permission)."""
        await self.unstage()
        self.storage_touched = True
        await self.io.truncate(length, self.length)
        rsp = await self.client.meta.call("Sync", mp.SyncReq(base=self.base(), inode=self.inode.id,
                                                              update_length=True, truncated=True,
                                                              session_id=self.session_id), mp.SyncRsp)
        self.inode = rsp.inode
        self.length = rsp.inode.length
        return self.length

    async def fsync(self) -> None:
        """Durable data on every replica, then the precise length in meta (staged small content: in meta)."""
        self._check(write=True)
        if await self._put_inline():
            return
        await self.io.sync()
        modified, self.modified = self.modified, False
        try:
            rsp = await self.client.meta.call("Sync", mp.SyncReq(base=self.base(), inode=self.inode.id,
                                                                  update_length=True, modified=modified,
                                                                  session_id=self.session_id), mp.SyncRsp)
        except BaseException:
            self.modified = self.modified or modified
            raise
        self.inode = rsp.inode
        self.length = max(self.length, rsp.inode.length)

    async def close(self, *, length_known: bool = False) -> None:
        """End the write session (precise length in meta when this handle wrote).

        `length_known`: the caller knows meta already holds this writer's length (nothing written, an
        adopted length hint with nothing written since, or a precise fsync), so only the session row
        must go: it is dropped in a later batch (AsyncClient.end_session_later) instead of a Close
        round trip with a precise length query. The FUSE mount uses this; `release` is asynchronous."""
        if self.closed:
            return
        if self._staged is not None and await self._put_inline():
            length_known = True
        self.closed = True
        if self.session_id and length_known:
            self.client._writers.discard(self)
            self.client.end_session_later(self.inode.id, self.session_id)
            return
        if self.session_id:
            req = mp.CloseReq(base=self.base(), inode=self.inode.id, session_id=self.session_id,
                              update_length=self.written, modified=self.modified)
            try:
                rsp = await self.client.meta.call("Close", req, mp.CloseRsp)
            finally:
                self.client._writers.discard(self)
            self.inode = rsp.inode
            self.length = rsp.inode.length

    def length_hint(self) -> mp.VersionedLength:
        """What this writer knows of the length, in the truncate epoch it opened in (3FS §2.7)."""
        return mp.VersionedLength(length=self.length, truncate_ver=self.inode.truncate_ver)


class AsyncClient:
    """asyncio core of the client: routing from mgmtd, namespace from meta, data from storage."""

    def __init__(self, mgmtd: str | list[str] | None = None, *, user: cpb.UserInfo | None = None,
                 retry_timeout: float = 30.0) -> None:
        mgmtd = mgmtd or os.environ.get("THREEFS_MGMTD")
        if not mgmtd:
            raise ValueError("no mgmtd address: pass one or set THREEFS_MGMTD=host:port")
        self.mgmtd = MgmtdClient(mgmtd)
        self.rpc = RpcClient()
        self.storage = StorageClient(self.mgmtd, self.rpc, retry_timeout=retry_timeout)
        self.meta = MetaClient(self.mgmtd, self.rpc, user or default_user(), client_id=self.storage.client_id,
                               retry_timeout=retry_timeout)
        self._init_write_sessions()

    def _init_write_sessions(self) -> None:
        """The state of this client's write sessions (open writers, lease renewal, closed ones to remove)."""
        self._writers: set[AsyncFile] = set()
        self._lease_task: asyncio.Task | None = None
        self._ending: list[mp.FileSession] = []          # closed write sessions not yet removed in meta
        self._ending_task: asyncio.Task | None = None

    async def connect(self) -> AsyncClient:
        _check_not_forked_while_connected()
        _CONNECTED[self] = os.getpid()
        await self.mgmtd.refresh(force=True)
        self.mgmtd.start_polling(1.0)
        return self

    async def close(self) -> None:
        _CONNECTED.pop(self, None)
        await self._end_writers()
        await self.rpc.close()
        await self.mgmtd.close()

    async def __aenter__(self) -> AsyncClient:
        return await self.connect()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---- write sessions: lease renewal and length hints -----------------------------------
    lease_interval = 10.0   # seconds between lease renewals while write sessions are open
    session_batch_delay = 0.05   # seconds a closed session waits to be removed with others (end_session_later)

    def _track_writer(self, f: AsyncFile) -> None:
        """Keep the client's lease alive (and send length hints) while `f` is open for writing."""
        self._writers.add(f)
        task = self._lease_task
        if task is None or task.done():
            self._lease_task = asyncio.create_task(self._lease_loop())

    async def _lease_loop(self) -> None:
        while self._writers:
            await asyncio.sleep(self.lease_interval)
            try:
                await self.meta.call("RenewClient", mp.RenewClientReq(base=self.meta.base()), mp.RenewClientRsp)
                for f in [f for f in self._writers if f.hint_dirty and not f.closed]:
                    f.hint_dirty = False
                    await self.meta.call("Sync", mp.SyncReq(base=f.base(), inode=f.inode.id, update_length=True,
                                                            length_hint=f.length_hint(), session_id=f.session_id),
                                         mp.SyncRsp)
            except FSError:
                continue    # meta unreachable: the next round tries again (sessions live client_timeout)

    def end_session_later(self, inode_id: int, session_id: bytes) -> None:
        """Queue the removal of a closed write session; queued removals go to meta in one batch.

        Used when a close has nothing else to tell meta: the caller does not wait for the row to go
        (a lingering row only delays GC of an unlinked file, and expires with the lease if lost)."""
        self._ending.append(mp.FileSession(inode=inode_id, session_id=session_id))
        task = self._ending_task
        if task is None or task.done():
            self._ending_task = asyncio.create_task(self._end_sessions_loop())

    async def _end_sessions_loop(self) -> None:
        """Send queued session removals every `session_batch_delay` seconds while any are queued."""
        while self._ending:
            await asyncio.sleep(self.session_batch_delay)
            await self._prune_sessions(self._take_ending())

    def _take_ending(self) -> list[mp.FileSession]:
        batch, self._ending = self._ending[:SESSION_BATCH], self._ending[SESSION_BATCH:]
        return batch

    async def _prune_sessions(self, sessions: list[mp.FileSession], timeout: float | None = None) -> None:
        """One PruneSession call (best effort: sessions left behind expire with the client's lease)."""
        if not sessions:
            return
        req = mp.PruneSessionReq(base=self.meta.base())
        req.sessions.extend(sessions)
        try:
            async with asyncio.timeout(timeout):
                await self.meta.call("PruneSession", req, mp.PruneSessionRsp)
        except (FSError, TimeoutError):
            pass

    async def flush_ended_sessions(self) -> None:
        """Remove every queued closed session now (unmount, client close)."""
        task = self._ending_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        while self._ending:
            await self._prune_sessions(self._take_ending(), timeout=5.0)

    async def _end_writers(self) -> None:
        """On client close: stop renewing and drop the sessions of files left open (best effort)."""
        task = self._lease_task
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for f in [f for f in self._writers if not f.closed and f._staged is not None]:
            try:
                await f.close()          # staged small content goes to meta, as a close would send it
            except (FSError, OSError) as e:
                log.warning("closing %s on client close failed: %s", f.path, e)
        left = [f for f in self._writers if not f.closed]
        self._ending.extend(mp.FileSession(inode=f.inode.id, session_id=f.session_id) for f in left)
        for f in left:
            f.closed = True
        await self.flush_ended_sessions()
        self._writers = set()

    # ---- namespace ---------------------------------------------------------------------
    async def stat(self, path, *, follow_symlinks: bool = True) -> StatResult:
        rsp = await self.meta.call("Stat", mp.StatReq(base=self.meta.base(), path=_path(path),
                                                      follow_last=follow_symlinks), mp.StatRsp)
        return StatResult.of(rsp.inode)

    async def exists(self, path) -> bool:
        try:
            await self.stat(path)
            return True
        except FileNotFoundError:
            return False

    async def list_page(self, path, prev: str = "", limit: int = 1024, with_inodes: bool = False) -> mp.ListRsp:
        return await self.meta.call("List", mp.ListReq(base=self.meta.base(), path=_path(path), prev=prev, limit=limit,
                                                       with_inodes=with_inodes), mp.ListRsp)

    async def scandir(self, path, *, with_inodes: bool = True) -> list[tuple[mp.DirEntry, mp.Inode | None]]:
        out: list[tuple[mp.DirEntry, mp.Inode | None]] = []
        prev = ""
        while True:
            page = await self.list_page(path, prev, with_inodes=with_inodes)
            inodes = list(page.inodes) if with_inodes else [None] * len(page.entries)
            out.extend(zip(page.entries, inodes))
            if not page.more or not page.entries:
                return out
            prev = page.entries[-1].name

    async def listdir(self, path="/") -> list[str]:
        return [e.name for e, _ in await self.scandir(path, with_inodes=False)]

    async def mkdir(self, path, mode: int = 0o777, *, parents: bool = False, exist_ok: bool = False) -> None:
        try:
            await self.meta.call("Mkdirs", mp.MkdirsReq(base=self.meta.base(), path=_path(path), perm=mode & 0o7777,
                                                        recursive=parents), mp.MkdirsRsp)
        except FileExistsError:
            if not exist_ok or not st.S_ISDIR((await self.stat(path)).st_mode):
                raise

    async def makedirs(self, path, mode: int = 0o777, exist_ok: bool = False) -> None:
        if not exist_ok and await self.exists(path):
            raise make_error(Code.EXISTS, f"{path} exists", os.fspath(path))
        await self.mkdir(path, mode, parents=True, exist_ok=True)

    async def remove(self, path) -> None:
        await self.meta.call("Remove", mp.RemoveReq(base=self.meta.base(), path=_path(path)), mp.RemoveRsp)

    unlink = remove

    async def rmdir(self, path) -> None:
        await self.meta.call("Remove", mp.RemoveReq(base=self.meta.base(), path=_path(path), at_flags=AT_REMOVEDIR),
                             mp.RemoveRsp)

    async def rmtree(self, path) -> None:
        """Recursive remove: O(1) for the caller, collected by meta's GC in the background."""
        await self.meta.call("Remove", mp.RemoveReq(base=self.meta.base(), path=_path(path), recursive=True,
                                                    at_flags=AT_REMOVEDIR), mp.RemoveRsp)

    async def rename(self, src, dst, *, flags: int = 0) -> None:
        """Rename `src` to `dst`, replacing it as POSIX allows; `flags` as renameat2's: RENAME_NOREPLACE
        (FileExistsError when `dst` exists) or RENAME_EXCHANGE (both exist and trade places)."""
        await self.meta.call("Rename", mp.RenameReq(base=self.meta.base(), src=_path(src), dst=_path(dst), flags=flags),
                             mp.RenameRsp)

    async def replace(self, src, dst) -> None:
        await self.rename(src, dst)

    async def statfs(self) -> mp.StatFsRsp:
        return await self.meta.call("StatFs", mp.StatFsReq(base=self.meta.base()), mp.StatFsRsp)

    async def lstat(self, path) -> StatResult:
        return await self.stat(path, follow_symlinks=False)

    async def symlink(self, target: str, path) -> None:
        """Create symlink `path` pointing at `target` (os.symlink's argument order)."""
        req = mp.SymlinkReq(base=self.meta.base(), path=_path(path), target=os.fspath(target))
        await self.meta.call("Symlink", req, mp.SymlinkRsp)

    async def readlink(self, path) -> str:
        inode = (await self.stat(path, follow_symlinks=False)).inode
        if inode.type != mp.SYMLINK:
            raise make_error(Code.INVALID_ARGUMENT, f"{os.fspath(path)} is not a symbolic link", os.fspath(path))
        return inode.target

    async def link(self, src, dst, *, follow_symlinks: bool = False) -> None:
        """Hard link `dst` to the file `src` names (like os.link; symlinks are linked themselves by default)."""
        await self.meta.call("HardLink", mp.HardLinkReq(base=self.meta.base(), old_path=_path(src), new_path=_path(dst),
                                                        follow_last=follow_symlinks), mp.HardLinkRsp)

    async def setattr(self, path, *, follow_symlinks: bool = True, **fields) -> StatResult:
        """Low-level setAttr: perm, uid, gid, atime_ns, mtime_ns, atime_now, mtime_now, iflags, layout."""
        req = mp.SetAttrReq(base=self.meta.base(), path=_path(path), follow_last=follow_symlinks, **fields)
        return StatResult.of((await self.meta.call("SetAttr", req, mp.SetAttrRsp)).inode)

    async def setxattr(self, path, name: str, value: bytes, flags: int = 0, *, follow_symlinks: bool = True) -> None:
        """Set a user.* extended attribute (flags: os.XATTR_CREATE / os.XATTR_REPLACE)."""
        await self.meta.call("SetXattr", mp.SetXattrReq(base=self.meta.base(), path=_path(path), name=name,
                                                        value=bytes(value), flags=flags,
                                                        follow_last=follow_symlinks), mp.SetXattrRsp)

    async def getxattr(self, path, name: str, *, follow_symlinks: bool = True) -> bytes:
        rsp = await self.meta.call("GetXattr", mp.GetXattrReq(base=self.meta.base(), path=_path(path), name=name,
                                                              follow_last=follow_symlinks), mp.GetXattrRsp)
        return rsp.value

    async def listxattr(self, path, *, follow_symlinks: bool = True) -> list[str]:
        rsp = await self.meta.call("ListXattr", mp.ListXattrReq(base=self.meta.base(), path=_path(path),
                                                                follow_last=follow_symlinks), mp.ListXattrRsp)
        return list(rsp.names)

    async def removexattr(self, path, name: str, *, follow_symlinks: bool = True) -> None:
        await self.meta.call("RemoveXattr", mp.RemoveXattrReq(base=self.meta.base(), path=_path(path), name=name,
                                                              follow_last=follow_symlinks), mp.RemoveXattrRsp)

    async def chmod(self, path, mode: int, *, follow_symlinks: bool = True) -> None:
        await self.setattr(path, perm=mode & 0o7777, follow_symlinks=follow_symlinks)

    async def chown(self, path, uid: int, gid: int, *, follow_symlinks: bool = True) -> None:
        """Change owner and/or group; -1 leaves one unchanged (as os.chown)."""
        fields = {k: v for k, v in (("uid", uid), ("gid", gid)) if v != -1}
        await self.setattr(path, follow_symlinks=follow_symlinks, **fields)

    async def utime(self, path, times: tuple[float, float] | None = None, *, ns: tuple[int, int] | None = None,
                    follow_symlinks: bool = True) -> None:
        """Set access and modification times (now when neither `times` nor `ns` is given), as os.utime."""
        if times is not None and ns is not None:
            raise ValueError("utime: give either times or ns, not both")
        if times is not None:
            ns = (int(times[0] * 1e9), int(times[1] * 1e9))
        if ns is None:
            await self.setattr(path, atime_now=True, mtime_now=True, follow_symlinks=follow_symlinks)
        else:
            await self.setattr(path, atime_ns=ns[0], mtime_ns=ns[1], follow_symlinks=follow_symlinks)

    async def truncate(self, path, length: int) -> None:
        """Set a file's length (chunks past it are removed; extending reads zeros)."""
        if length < 0:
            raise make_error(Code.INVALID_ARGUMENT, "negative length", os.fspath(path))
        staged = [f for f in self._writers if f._staged is not None and not f.closed]
        if staged:          # this client's own earlier writes to the file land before the truncate
            ino = (await self.stat(path)).st_ino
            for f in staged:
                if f.inode.id == ino:
                    await f.unstage()
        await self.meta.call("Truncate", mp.TruncateReq(base=self.meta.base(), path=_path(path), length=length),
                             mp.TruncateRsp)

    async def mknod(self, path, mode: int = 0o644) -> None:
        """Create an empty regular file (EEXIST if the name exists); no write session is opened."""
        await self.meta.call("Create", mp.CreateReq(base=self.meta.base(), path=_path(path),
                                                    flags=os.O_CREAT | os.O_EXCL | os.O_RDONLY, perm=mode & 0o7777),
                             mp.CreateRsp)

    async def access(self, path, mode: int, *, follow_symlinks: bool = True) -> bool:
        """Whether this client's user may access `path` with `mode` (os.F_OK/R_OK/W_OK/X_OK bits)."""
        from threefs.meta import acl
        try:
            inode = (await self.stat(path, follow_symlinks=follow_symlinks)).inode
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            return False
        want = (acl.R if mode & os.R_OK else 0) | (acl.W if mode & os.W_OK else 0) | (acl.X if mode & os.X_OK else 0)
        return acl.allowed(self.meta.user, inode.uid, inode.gid, inode.perm, want)

    async def realpath(self, path) -> str:
        """The canonical absolute path (symlinks and '..' resolved by meta: getRealPath)."""
        rsp = await self.meta.call("GetRealPath", mp.GetRealPathReq(base=self.meta.base(), path=_path(path),
                                                                    follow_last=True), mp.GetRealPathRsp)
        return rsp.path

    getrealpath = realpath

    # ---- files -------------------------------------------------------------------------
    async def open(self, path, mode: str = "rb", *, perm: int = 0o666) -> AsyncFile:
        flags, _ = parse_mode(mode)
        return await self.open_flags(path, flags, perm=perm)

    async def open_flags(self, path, flags: int, *, perm: int = 0o666) -> AsyncFile:
        write = flags & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR)
        session = os.urandom(16) if write else b""
        if flags & os.O_CREAT:
            rsp = await self.meta.call("Create", mp.CreateReq(base=self.meta.base(), path=_path(path), flags=flags,
                                                              perm=perm, session_id=session), mp.CreateRsp)
        else:
            rsp = await self.meta.call("Open", mp.OpenReq(base=self.meta.base(), path=_path(path), flags=flags,
                                                          session_id=session), mp.OpenRsp)
        if rsp.inode.type == mp.DIRECTORY:
            raise make_error(Code.IS_DIRECTORY, f"{os.fspath(path)} is a directory", os.fspath(path))
        f = AsyncFile(self, rsp.inode, flags, os.fspath(path), session)
        if rsp.inode.inline:
            f.io.inline = rsp.inline_data
        if isinstance(rsp, mp.CreateRsp) and rsp.created and session:
            f.inline_max = min(rsp.inline_max, rsp.inode.layout.chunk_size)
        if session:
            self._track_writer(f)
        if rsp.need_truncate:
            try:
                await f.truncate_to(0)
            except BaseException:
                await f.close()
                raise
        return f

    async def read_file(self, path) -> bytes:
        f = await self.open(path, "rb")
        try:
            return await f.pread(f.length, 0)
        finally:
            await f.close()

    async def write_file(self, path, data, *, fsync: bool = False) -> int:
        f = await self.open(path, "wb")
        try:
            n = await f.pwrite(data, 0)
            if fsync:
                await f.fsync()
            return n
        finally:
            await f.close()

    async def walk(self, top="/"):
        """Like os.walk (top-down), yielding (dirpath, dirnames, filenames)."""
        top = os.fspath(top)
        entries = await self.scandir(top, with_inodes=False)
        dirs = [e.name for e, _ in entries if e.type == mp.DIRECTORY]
        files = [e.name for e, _ in entries if e.type != mp.DIRECTORY]
        yield top, dirs, files
        for d in dirs:
            async for item in self.walk(posixpath.join(top, d)):
                yield item


class _LoopThread:
    """One event loop in a daemon thread that the sync facade submits coroutines to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="threefs-client", daemon=True)
        self.thread.start()

    def run(self, coro):
        if threading.current_thread() is self.thread:
            raise RuntimeError("the sync threefs Client cannot be used from its own event loop; use AsyncClient")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


class File(io.RawIOBase):
    """A binary file object over AsyncFile (wrap with io.TextIOWrapper for text)."""

    def __init__(self, runner: _LoopThread, f: AsyncFile, mode: str) -> None:
        super().__init__()
        self._runner = runner
        self._run = runner.run
        self._f = f
        self.mode = mode
        self.name = f.path

    def readable(self) -> bool:
        return self._f.readable

    def writable(self) -> bool:
        return self._f.writable

    def seekable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = self._run(self._f.preadinto(b, self._f.pos))
        self._f.pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        return self._run(self._f.read(size))

    def readall(self) -> bytes:
        return self.read(-1)

    def write(self, b) -> int:
        return self._run(self._f.write(b))

    def pread(self, size: int, offset: int) -> bytes:
        return self._run(self._f.pread(size, offset))

    def preadinto(self, b, offset: int) -> int:
        return self._run(self._f.preadinto(b, offset))

    def pwrite(self, data, offset: int) -> int:
        return self._run(self._f.pwrite(data, offset))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.pos

    def truncate(self, size: int | None = None) -> int:
        return self._run(self._f.truncate(size))

    def fsync(self) -> None:
        self._run(self._f.fsync())

    def flush(self) -> None:
        """Nothing to do: writes go to storage when issued, except a small new file's bytes, which wait
        for fsync/close to go to meta (threefs.meta.inline)."""

    @property
    def length(self) -> int:
        return self._f.length

    @property
    def inode(self) -> mp.Inode:
        return self._f.inode

    @property
    def async_file(self) -> AsyncFile:
        """The AsyncFile under this handle (lives on its Client's event loop)."""
        return self._f

    def close(self) -> None:
        if not self.closed:
            try:
                if not self._f.session_id:
                    self._f.closed = True   # read-only: nothing to tell meta (safe from GC in any thread, any time)
                elif not self._f.closed:    # (its client's close may have ended the session already)
                    self._run(self._f.close())
            finally:
                super().close()


class Client:
    """Thread-safe synchronous os-like client (an AsyncClient on a private event loop)."""

    def __init__(self, mgmtd: str | list[str] | None = None, *, user: cpb.UserInfo | None = None,
                 retry_timeout: float = 30.0) -> None:
        _check_not_forked_while_connected()
        self._runner = _LoopThread()

        async def make() -> AsyncClient:
            return await AsyncClient(mgmtd, user=user, retry_timeout=retry_timeout).connect()

        try:
            self.aio: AsyncClient = self._runner.run(make())
        except BaseException:
            self._runner.stop()
            raise

    def close(self) -> None:
        try:
            self._runner.run(self.aio.close())
        finally:
            self._runner.stop()

    def __enter__(self) -> Client:
        return self

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (in its own thread) that this client's AsyncClient runs on."""
        return self._runner.loop

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine of `self.aio` on the client's loop and return its result (batch work)."""
        return self._runner.run(coro)

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self, path, mode: str = "rb", *, perm: int = 0o666, encoding: str | None = None):
        f = File(self._runner, self._runner.run(self.aio.open(path, mode, perm=perm)), mode)
        if "b" in mode:
            return f
        buffered = io.BufferedRandom(f) if f.readable() and f.writable() else (
            io.BufferedReader(f) if f.readable() else io.BufferedWriter(f))
        return io.TextIOWrapper(buffered, encoding=encoding or "utf-8")

    def stat(self, path, *, follow_symlinks: bool = True) -> StatResult:
        return self._runner.run(self.aio.stat(path, follow_symlinks=follow_symlinks))

    def exists(self, path) -> bool:
        return self._runner.run(self.aio.exists(path))

    def isdir(self, path) -> bool:
        try:
            return st.S_ISDIR(self.stat(path).st_mode)
        except FileNotFoundError:
            return False

    def isfile(self, path) -> bool:
        try:
            return st.S_ISREG(self.stat(path).st_mode)
        except FileNotFoundError:
            return False

    def listdir(self, path="/") -> list[str]:
        return self._runner.run(self.aio.listdir(path))

    def scandir(self, path="/") -> list[tuple[mp.DirEntry, mp.Inode | None]]:
        return self._runner.run(self.aio.scandir(path))

    def mkdir(self, path, mode: int = 0o777) -> None:
        self._runner.run(self.aio.mkdir(path, mode))

    def makedirs(self, path, mode: int = 0o777, exist_ok: bool = False) -> None:
        self._runner.run(self.aio.makedirs(path, mode, exist_ok=exist_ok))

    def remove(self, path) -> None:
        self._runner.run(self.aio.remove(path))

    unlink = remove

    def rmdir(self, path) -> None:
        self._runner.run(self.aio.rmdir(path))

    def rmtree(self, path) -> None:
        self._runner.run(self.aio.rmtree(path))

    def rename(self, src, dst, *, flags: int = 0) -> None:
        self._runner.run(self.aio.rename(src, dst, flags=flags))

    def replace(self, src, dst) -> None:
        self._runner.run(self.aio.replace(src, dst))

    def statfs(self) -> mp.StatFsRsp:
        return self._runner.run(self.aio.statfs())

    def lstat(self, path) -> StatResult:
        return self._runner.run(self.aio.lstat(path))

    def symlink(self, target: str, path) -> None:
        self._runner.run(self.aio.symlink(target, path))

    def readlink(self, path) -> str:
        return self._runner.run(self.aio.readlink(path))

    def link(self, src, dst, *, follow_symlinks: bool = False) -> None:
        self._runner.run(self.aio.link(src, dst, follow_symlinks=follow_symlinks))

    def setxattr(self, path, name: str, value: bytes, flags: int = 0, *, follow_symlinks: bool = True) -> None:
        self._runner.run(self.aio.setxattr(path, name, value, flags, follow_symlinks=follow_symlinks))

    def getxattr(self, path, name: str, *, follow_symlinks: bool = True) -> bytes:
        return self._runner.run(self.aio.getxattr(path, name, follow_symlinks=follow_symlinks))

    def listxattr(self, path, *, follow_symlinks: bool = True) -> list[str]:
        return self._runner.run(self.aio.listxattr(path, follow_symlinks=follow_symlinks))

    def removexattr(self, path, name: str, *, follow_symlinks: bool = True) -> None:
        self._runner.run(self.aio.removexattr(path, name, follow_symlinks=follow_symlinks))

    def chmod(self, path, mode: int, *, follow_symlinks: bool = True) -> None:
        self._runner.run(self.aio.chmod(path, mode, follow_symlinks=follow_symlinks))

    def chown(self, path, uid: int, gid: int, *, follow_symlinks: bool = True) -> None:
        self._runner.run(self.aio.chown(path, uid, gid, follow_symlinks=follow_symlinks))

    def utime(self, path, times: tuple[float, float] | None = None, *, ns: tuple[int, int] | None = None,
              follow_symlinks: bool = True) -> None:
        self._runner.run(self.aio.utime(path, times, ns=ns, follow_symlinks=follow_symlinks))

    def truncate(self, path, length: int) -> None:
        self._runner.run(self.aio.truncate(path, length))

    def mknod(self, path, mode: int = 0o644) -> None:
        self._runner.run(self.aio.mknod(path, mode))

    def access(self, path, mode: int, *, follow_symlinks: bool = True) -> bool:
        return self._runner.run(self.aio.access(path, mode, follow_symlinks=follow_symlinks))

    def realpath(self, path) -> str:
        return self._runner.run(self.aio.realpath(path))

    getrealpath = realpath

    def read_file(self, path) -> bytes:
        return self._runner.run(self.aio.read_file(path))

    def write_file(self, path, data, *, fsync: bool = False) -> int:
        return self._runner.run(self.aio.write_file(path, data, fsync=fsync))

    def walk(self, top="/") -> Iterator[tuple[str, list[str], list[str]]]:
        """Like os.walk, top-down."""
        stack = [os.fspath(top)]
        while stack:
            d = stack.pop()
            entries = self._runner.run(self.aio.scandir(d, with_inodes=False))
            dirs = [e.name for e, _ in entries if e.type == mp.DIRECTORY]
            files = [e.name for e, _ in entries if e.type != mp.DIRECTORY]
            yield d, dirs, files
            stack.extend(posixpath.join(d, x) for x in reversed(dirs))
