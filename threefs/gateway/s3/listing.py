"""Key listing over paged readdir: keys come out in S3 (UTF-8 byte) order, never loading a bucket whole.

A directory `d` holds the keys `d/...`, so among its siblings it sorts as `d/`, not `d`: a small heap
of pending directories re-orders each readdir page. An empty directory is listed as the zero-byte
object `d/`, as S3 lists the "folder" marker a console creates (PUT of `d/` makes the directory); a
directory with keys under it is only their prefix.
"""
from __future__ import annotations

import heapq
import stat as st
from collections.abc import AsyncIterator
from dataclasses import dataclass

from threefs.client.fs import AsyncClient
from threefs.proto import meta_pb2 as mp

UPLOADS_DIR = ".s3-uploads"
PAGE = 512


@dataclass
class Entry:
    """A listed object (inode set) or common prefix (inode None)."""

    key: str
    inode: mp.Inode | None


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


@dataclass
class Marker:
    """List strictly after `key`; with `skip_prefix`, also skip every key that starts with it."""

    key: str
    skip_prefix: bool = False

    def after(self, key: str) -> bool:
        if self.skip_prefix and key.startswith(self.key):
            return False
        return _b(key) > _b(self.key)


class Lister:
    """Walk the keys of one bucket under `prefix`, after `marker`, grouping by `delimiter`."""

    def __init__(self, client: AsyncClient, bucket: str, prefix: str = "", delimiter: str = "",
                 marker: Marker | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.delimiter = delimiter
        self.marker = marker

    def _wanted_dir(self, dkey: str) -> bool:
        """Could the directory with key prefix `dkey` (ends in '/') hold a listed key?"""
        p = self.prefix
        if not (dkey.startswith(p) or p.startswith(dkey)):
            return False
        m = self.marker
        if m is None:
            return True
        if m.skip_prefix and dkey.startswith(m.key):
            return False
        return m.key.startswith(dkey) or _b(dkey) > _b(m.key)

    def _start(self, level: str) -> tuple[str, list[str]]:
        """Where readdir of the directory with key prefix `level` may start, and names before it to probe."""
        bounds = []
        rest_p = self.prefix[len(level):] if self.prefix.startswith(level) else ""
        if rest_p and "/" not in rest_p:
            bounds.append(rest_p)
        if self.marker is not None and self.marker.key.startswith(level):
            bounds.append(self.marker.key[len(level):].split("/")[0])
        bounds = [b for b in bounds if b]
        if not bounds:
            return "", []
        c = max(bounds, key=_b)
        # names that are prefixes of c followed by a byte below '/' sort before c but their keys after it
        probes = [c[:k] for k in range(1, len(c)) if c[k] < "/" and c[:k] not in (".", "..")]
        return c[:-1], probes

    async def _dir_entries(self, path: str, level: str) -> AsyncIterator[tuple[str, mp.Inode]]:
        """(key, inode) of each entry of directory `path` in key order (directories as 'name/')."""
        start, probes = self._start(level)
        pending: list[tuple[bytes, str, mp.Inode]] = []
        for name in probes:
            try:
                s = await self.client.lstat(f"{path}/{name}")
            except (FileNotFoundError, NotADirectoryError):
                continue
            if st.S_ISDIR(s.st_mode):
                heapq.heappush(pending, (_b(name + "/"), name, s.inode))
        prev = start
        rest_p = self.prefix[len(level):] if self.prefix.startswith(level) else ""
        want = rest_p if rest_p and "/" not in rest_p else ""
        while True:
            page = await self.client.list_page(path, prev, PAGE, with_inodes=True)
            done = False
            for ent, inode in zip(page.entries, page.inodes):
                name = ent.name
                if not level and name == UPLOADS_DIR:
                    continue
                if want and not name.startswith(want) and _b(name) > _b(want):
                    done = True
                    break
                while pending and pending[0][0] < _b(name):
                    _, dname, dinode = heapq.heappop(pending)
                    yield dname + "/", dinode
                if inode.type == mp.DIRECTORY:
                    heapq.heappush(pending, (_b(name + "/"), name, inode))
                elif inode.type == mp.FILE:
                    yield name, inode
            if done or not page.more or not page.entries:
                break
            prev = page.entries[-1].name
        while pending:
            _, dname, dinode = heapq.heappop(pending)
            yield dname + "/", dinode

    async def _empty(self, path: str) -> bool:
        page = await self.client.list_page(path, "", 1)
        return not page.entries

    async def _walk(self, path: str, level: str) -> AsyncIterator[Entry]:
        async for rel, inode in self._dir_entries(path, level):
            key = level + rel
            if rel.endswith("/"):
                if not self._wanted_dir(key):
                    continue
                if self.delimiter == "/" and key.startswith(self.prefix) and len(key) > len(self.prefix):
                    if self.marker is None or self.marker.after(key):
                        yield Entry(key, None)
                    continue
                listed = False
                async for e in self._walk(path + "/" + rel[:-1], key):
                    listed = True
                    yield e
                if not listed and self._listable(key):
                    # nothing under it: an empty directory (when its own key passes the prefix and the
                    # marker, so does every key under it, and each file or empty directory is listed)
                    yield Entry(key, inode)
            elif self._listable(key):
                yield Entry(key, inode)

    def _listable(self, key: str) -> bool:
        """Does `key` pass the prefix and come after the marker?"""
        return key.startswith(self.prefix) and (self.marker is None or self.marker.after(key))

    async def entries(self) -> AsyncIterator[Entry]:
        """Objects and common prefixes in order, each common prefix once."""
        root = "/" + self.bucket
        level, path = "", root
        # descend straight to the deepest directory the prefix names
        if "/" in self.prefix:
            dirpart = self.prefix.rsplit("/", 1)[0]
            if any(seg in ("", ".", "..") for seg in dirpart.split("/")) or "\x00" in dirpart:
                return              # no key has such a prefix (and the path must not leave the bucket)
            try:
                s = await self.client.stat(root + "/" + dirpart)
            except (FileNotFoundError, NotADirectoryError):
                return
            if not st.S_ISDIR(s.st_mode) or (not level and dirpart.split("/")[0] == UPLOADS_DIR):
                return
            level, path = dirpart + "/", root + "/" + dirpart
            if self.prefix == level and self._listable(level) and await self._empty(path):
                yield Entry(level, s.inode)       # the prefix names an empty directory: its marker object
                return
        last_cp = None
        async for e in self._walk(path, level):
            if e.inode is not None and self.delimiter:
                rest = e.key[len(self.prefix):]
                i = rest.find(self.delimiter)
                if i >= 0:
                    cp = self.prefix + rest[:i + len(self.delimiter)]
                    skipped = self.marker is not None and self.marker.skip_prefix and self.marker.key == cp
                    if cp != last_cp and not skipped:
                        yield Entry(cp, None)
                    last_cp = cp
                    continue
            yield e
