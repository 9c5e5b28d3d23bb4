"""`<mount>/3fs-virt/`: 3FS's virtual directory (3FS §5.1, §5.2).

- `rm-rf/`: symlinking (or renaming) a path into it removes that path recursively, O(1) for the
  caller (meta's GC collects the subtree): the contract smallpond uses.
- `iovs/`: USRBIO shared-memory registration by symlink `<uuid-hex>[.b<block>] -> /dev/shm/<name>`.
  The links are accepted, listed and removed here; the batched ring API itself runs in direct
  client mode (threefs.client.usrbio talks to storage from the application's process).
"""
from __future__ import annotations

import errno
import os
import stat as st
import time
from typing import TYPE_CHECKING

import pyfuse3

from threefs.proto import meta_pb2 as mp

if TYPE_CHECKING:
    from threefs.fuse.ops import ThreeFSOperations

NAME = b"3fs-virt"
_TOP = (1 << 64) - 1024             # virtual inode numbers, far above any meta-allocated id
VIRT_ROOT, RMRF, IOVS = _TOP, _TOP + 1, _TOP + 2
_LINKS = _TOP + 16                  # iov links and transient rm-rf entries
_DIRS = {VIRT_ROOT: {b"rm-rf": RMRF, b"iovs": IOVS}, RMRF: {}, IOVS: {}}
_DIR_FH = 1 << 62                   # directory handles of virtual dirs


class VirtualDir:
    """State of the virtual directory: registered iovs (name -> target) and inode numbering."""

    def __init__(self, ops: ThreeFSOperations) -> None:
        self.ops = ops
        self.iovs: dict[bytes, tuple[int, bytes]] = {}
        self.links: dict[int, bytes] = {}           # virtual symlink inode -> target
        self._next = _LINKS
        self._dir_handles: dict[int, int] = {}
        self._next_fh = _DIR_FH

    @staticmethod
    def owns(inode: int) -> bool:
        return inode >= _TOP

    @staticmethod
    def is_rmrf(inode: int) -> bool:
        return inode == RMRF

    def owns_dir_handle(self, fh: int) -> bool:
        return fh in self._dir_handles

    def _attrs(self, inode: int, mode: int, size: int = 0) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.st_mode = mode
        a.st_nlink = 2 if st.S_ISDIR(mode) else 1
        a.st_size = size
        a.st_blksize = 4096
        now = time.time_ns()
        a.st_atime_ns = a.st_mtime_ns = a.st_ctime_ns = now
        a.attr_timeout = a.entry_timeout = 0     # always asked again: the contents change under the kernel
        return a

    def getattr(self, inode: int) -> pyfuse3.EntryAttributes:
        if inode in _DIRS:
            return self._attrs(inode, st.S_IFDIR | (0o1777 if inode != VIRT_ROOT else 0o755))
        target = self.links.get(inode)
        if target is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attrs(inode, st.S_IFLNK | 0o777, len(target))

    def lookup(self, parent: int, name: bytes) -> pyfuse3.EntryAttributes:
        if parent == pyfuse3.ROOT_INODE:
            return self.getattr(VIRT_ROOT)
        child = _DIRS.get(parent, {}).get(name)
        if child is not None:
            return self.getattr(child)
        if parent == IOVS and name in self.iovs:
            return self.getattr(self.iovs[name][0])
        raise pyfuse3.FUSEError(errno.ENOENT)

    def readlink(self, inode: int) -> bytes:
        target = self.links.get(inode)
        if target is None:
            raise pyfuse3.FUSEError(errno.EINVAL)
        return target

    def _link(self, target: bytes) -> int:
        ino = self._next
        self._next += 1
        self.links[ino] = target
        return ino

    async def symlink(self, parent: int, name: bytes, target: bytes,
                      ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        if parent == RMRF:
            await self.remove_tree(self._inside(target), ctx)
            ino = self._link(target)          # reported once, then gone: lookups of rm-rf/* say ENOENT
            attrs = self.getattr(ino)
            del self.links[ino]
            return attrs
        if parent == IOVS:
            return self._register_iov(name, target)
        raise pyfuse3.FUSEError(errno.EPERM)

    def _inside(self, target: bytes) -> mp.PathAt:
        """The threefs path of an absolute path under this mount (EXDEV for anything else)."""
        path = os.path.normpath(os.fsdecode(target))
        mnt = self.ops.mountpoint
        if not os.path.isabs(path) or not (path == mnt or path.startswith(mnt + "/")):
            raise pyfuse3.FUSEError(errno.EXDEV)
        rel = path[len(mnt):] or "/"
        if rel == "/" or rel.split("/")[1] == NAME.decode():
            raise pyfuse3.FUSEError(errno.EPERM)
        return mp.PathAt(parent=0, path=rel)

    async def remove_tree(self, path: mp.PathAt, ctx: pyfuse3.RequestContext, invalidate: bool = True) -> None:
        """Recursive remove as the caller: files unlinked, directories handed to meta's GC whole.

        The kernel's dentry of the removed name is dropped synchronously (its parent is not locked by
        a symlink into rm-rf; a rename into rm-rf moves the dentry itself: invalidate=False).
        """
        ops = self.ops
        st_rsp = await ops.call("Stat", mp.StatReq(base=ops.base(ctx), path=path, follow_last=False), mp.StatRsp)
        flags = 0x200 if st_rsp.inode.type == mp.DIRECTORY else 0
        parent_path, name = os.path.split(path.path.rstrip("/"))
        parent = await ops.call("Stat", mp.StatReq(base=ops.base(ctx), path=mp.PathAt(parent=path.parent,
                                                                                        path=parent_path or "."),
                                                   follow_last=True), mp.StatRsp)
        await ops.call("Remove", mp.RemoveReq(base=ops.base(ctx), path=path, recursive=bool(flags), at_flags=flags),
                       mp.RemoveRsp)
        from threefs.fuse.ops import to_fuse
        if invalidate:
            try:
                pyfuse3.invalidate_entry(to_fuse(parent.inode.id), os.fsencode(name))
            except OSError:
                pass            # not in the kernel's cache

    def _register_iov(self, name: bytes, target: bytes) -> pyfuse3.EntryAttributes:
        """Accept `<uuid-hex>[.b<block_size>] -> /dev/shm/<region>` (the region must exist)."""
        stem, _, suffix = name.partition(b".")
        try:
            ok = len(stem) == 32 and int(stem, 16) >= 0 and (not suffix or (suffix[:1] == b"b" and int(suffix[1:]) > 0))
        except ValueError:
            ok = False
        real = os.path.realpath(os.fsdecode(target))
        if not ok or not real.startswith("/dev/shm/") or not os.path.isfile(real):
            raise pyfuse3.FUSEError(errno.EINVAL)
        if name in self.iovs:
            raise pyfuse3.FUSEError(errno.EEXIST)
        ino = self._link(target)
        self.iovs[name] = (ino, target)
        return self.getattr(ino)

    def unlink(self, parent: int, name: bytes) -> None:
        if parent != IOVS or name not in self.iovs:
            raise pyfuse3.FUSEError(errno.ENOENT if parent in (IOVS, RMRF) else errno.EPERM)
        ino, _ = self.iovs.pop(name)
        self.links.pop(ino, None)

    def opendir(self, inode: int) -> int:
        if inode not in _DIRS:
            raise pyfuse3.FUSEError(errno.ENOTDIR)
        fh = self._next_fh
        self._next_fh += 1
        self._dir_handles[fh] = inode
        return fh

    def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        inode = self._dir_handles[fh]
        if inode == IOVS:
            entries = [(n, self.getattr(ino)) for n, (ino, _) in sorted(self.iovs.items())]
        else:
            entries = [(n, self.getattr(c)) for n, c in _DIRS[inode].items()]
        for i in range(start_id, len(entries)):
            if not pyfuse3.readdir_reply(token, entries[i][0], entries[i][1], i + 1):
                return

    def releasedir(self, fh: int) -> None:
        self._dir_handles.pop(fh, None)
