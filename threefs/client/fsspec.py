"""fsspec file system for threefs, registered as protocol "3fs" (pandas, pyarrow, dask, fsspec.open).

    fs = fsspec.filesystem("3fs", mgmtd="127.0.0.1:8000")
    pandas.read_parquet("3fs://127.0.0.1:8000/data/x.parquet")
"""
from __future__ import annotations

import datetime
import errno
import os
import posixpath
import re
import stat as st
import threading
import uuid
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem, make_instance
from fsspec.utils import stringify_path

from threefs.client.fs import Client, StatResult, parse_mode
from threefs.proto import meta_pb2 as mp

__all__ = ["ThreeFSFileSystem", "ThreeFSFile"]

# "host:port", "[v6]:port", or a comma-separated list of them: the first URL component that is an
# mgmtd address rather than a directory name.
_HOST_PORT = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):\d{1,5}"
_ADDRESS = re.compile(rf"^{_HOST_PORT}(?:,{_HOST_PORT})*$")
COPY_BLOCK = 16 << 20


def _split_url(path: str) -> tuple[str | None, str]:
    """("host:port" or None, absolute path) of a 3fs URL or a plain path."""
    path = stringify_path(path)
    for prefix in ("3fs://", "threefs://", "3fs::", "threefs::"):
        if path.startswith(prefix):
            rest = path[len(prefix):]
            head, sep, tail = rest.partition("/")
            if _ADDRESS.match(head):
                return head, "/" + tail
            return None, "/" + rest.lstrip("/")
    return None, path if path.startswith("/") else "/" + path


def _normalize(path: str) -> str:
    """"/a/b" form: one leading slash, no trailing slash, "." and ".." resolved."""
    return "/" + posixpath.normpath("/" + path.lstrip("/")).lstrip("/")


class ThreeFSFileSystem(AbstractFileSystem):
    """threefs as an fsspec file system (protocol "3fs"), over the thread-safe os-like Client.

    URLs: `3fs://HOST:PORT/path` names the cluster by its mgmtd address (several: `H1:P1,H2:P2`);
    `3fs:///path` and `3fs://path` use `THREEFS_MGMTD` (or the `mgmtd=` storage option). The first
    URL component is the address exactly when it looks like `host:port`; any other first
    component is a directory, so `3fs://data/x` is `/data/x`. Paths are absolute ("/a/b").
    "threefs://" is the same file system under an RFC 3986 scheme name (one that starts with a
    letter): pandas only hands such URLs to fsspec, so use `pandas.read_parquet("threefs://...")`
    or pass `filesystem=fsspec.filesystem("3fs")`.

    Writes create missing parent directories (like object stores and `auto_mkdir`), files open
    close-to-open, `created` is the inode's ctime (threefs keeps no birth time).
    """

    protocol = ("3fs", "threefs")
    root_marker = "/"
    blocksize = 4 << 20

    def __init__(self, mgmtd: str | None = None, *, client: Client | None = None, auto_mkdir: bool = True,
                 retry_timeout: float = 30.0, **kwargs: Any) -> None:
        super().__init__(mgmtd=mgmtd, client=client, auto_mkdir=auto_mkdir, retry_timeout=retry_timeout, **kwargs)
        self.mgmtd = mgmtd or (client and ",".join(client.aio.mgmtd.addresses)) or os.environ.get("THREEFS_MGMTD")
        if not self.mgmtd:
            raise ValueError("no threefs cluster: use 3fs://HOST:PORT/path, mgmtd=..., or set THREEFS_MGMTD")
        self.auto_mkdir = auto_mkdir
        self.retry_timeout = retry_timeout
        self._given = client
        self._client: Client | None = client
        self._pid = os.getpid()
        self._lock = threading.Lock()

    # ---- the client (one per process: a forked child connects anew) ------------------------------
    @property
    def client(self) -> Client:
        """The Client this file system talks through (created on first use in each process)."""
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    if self._given is not None and self._pid == os.getpid():
                        self._client = self._given
                    else:
                        self._client = Client(self.mgmtd, retry_timeout=self.retry_timeout)
                        self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        """Close the client this file system created (a passed-in client stays open)."""
        if self._client is not None and self._client is not self._given and self._pid == os.getpid():
            self._client.close()
        self._client = None

    def __reduce__(self):
        """Pickle by address (a passed-in client stays behind; the copy connects on first use)."""
        options = {k: v for k, v in self.storage_options.items() if k != "client"}
        options["mgmtd"] = self.mgmtd
        return make_instance, (type(self), (), options)

    @property
    def fsid(self) -> str:
        return f"3fs-{self.mgmtd}"

    # ---- URLs -----------------------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        return _normalize(_split_url(path)[1])

    @staticmethod
    def _get_kwargs_from_urls(path):
        address, _ = _split_url(path)
        return {"mgmtd": address} if address else {}

    def unstrip_protocol(self, name: str) -> str:
        return f"3fs://{self.mgmtd.split(',')[0]}{self._strip_protocol(name)}"

    @classmethod
    def _parent(cls, path):
        return posixpath.dirname(cls._strip_protocol(path)) or "/"

    # ---- metadata -------------------------------------------------------------------------------
    def _entry(self, path: str, s: StatResult, *, link: bool = False, target: str | None = None) -> dict[str, Any]:
        kind = "directory" if st.S_ISDIR(s.st_mode) else ("file" if st.S_ISREG(s.st_mode) else "other")
        out = {"name": path, "size": s.st_size if kind == "file" else 0, "type": kind, "created": s.st_ctime,
               "mtime": s.st_mtime, "mode": s.st_mode, "uid": s.st_uid, "gid": s.st_gid, "ino": s.st_ino,
               "nlink": s.st_nlink, "islink": link}
        if target is not None:
            out["destination"] = target
        return out

    def _resolve_link(self, path: str, lst: StatResult) -> dict[str, Any]:
        """info of a symlink: the target's type and size, islink=True (a dangling link is "other")."""
        try:
            return self._entry(path, self.client.stat(path), link=True, target=lst.inode.target)
        except FileNotFoundError:
            return self._entry(path, lst, link=True, target=lst.inode.target)

    def info(self, path, **kwargs) -> dict[str, Any]:
        path = self._strip_protocol(path)
        s = self.client.stat(path, follow_symlinks=False)
        if st.S_ISLNK(s.st_mode):
            return self._resolve_link(path, s)
        return self._entry(path, s)

    def ls(self, path, detail: bool = True, **kwargs):
        path = self._strip_protocol(path)
        s = self.client.stat(path)
        if not st.S_ISDIR(s.st_mode):
            return [self.info(path)] if detail else [path]
        entries = self.client.scandir(path)
        out: list[dict[str, Any]] = []
        for dirent, inode in entries:
            full = posixpath.join(path, dirent.name)
            if not detail:
                out.append(full)   # type: ignore[arg-type]
                continue
            es = StatResult.of(inode) if inode is not None else self.client.stat(full, follow_symlinks=False)
            out.append(self._resolve_link(full, es) if dirent.type == mp.SYMLINK else self._entry(full, es))
        return out

    def exists(self, path, **kwargs) -> bool:
        try:
            self.client.stat(self._strip_protocol(path))
            return True
        except (FileNotFoundError, NotADirectoryError):
            return False

    def isdir(self, path) -> bool:
        return self.client.isdir(self._strip_protocol(path))

    def isfile(self, path) -> bool:
        return self.client.isfile(self._strip_protocol(path))

    def created(self, path) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.info(path)["created"], tz=datetime.timezone.utc)

    def modified(self, path) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.info(path)["mtime"], tz=datetime.timezone.utc)

    # ---- namespace ------------------------------------------------------------------------------
    def mkdir(self, path, create_parents: bool = True, **kwargs) -> None:
        path = self._strip_protocol(path)
        if create_parents:
            self.client.makedirs(path, exist_ok=False)
        else:
            self.client.mkdir(path, **kwargs)

    def makedirs(self, path, exist_ok: bool = False) -> None:
        self.client.makedirs(self._strip_protocol(path), exist_ok=exist_ok)

    def rmdir(self, path) -> None:
        self.client.rmdir(self._strip_protocol(path))

    def rm_file(self, path) -> None:
        self.client.remove(self._strip_protocol(path))

    def _rm(self, path) -> None:
        self.rm_file(path)

    def rm(self, path, recursive: bool = False, maxdepth: int | None = None) -> None:
        """Remove files; directories need recursive=True (removed in one meta operation when maxdepth is None)."""
        if maxdepth is None and recursive:
            removed: list[str] = []
            for p in sorted(self.expand_path(path, recursive=False)):
                if any(p.startswith(d + "/") for d in removed):
                    continue   # went with a directory removed before it
                if self.isdir(p):
                    if p == "/":
                        raise PermissionError(errno.EPERM, "refusing to remove the root directory", p)
                    self.client.rmtree(p)
                    removed.append(p)
                else:
                    self.client.remove(p)
            return
        for p in reversed(self.expand_path(path, recursive=recursive, maxdepth=maxdepth)):
            if self.isdir(p):
                if not recursive:
                    raise IsADirectoryError(errno.EISDIR, "is a directory (use recursive=True)", p)
                self.client.rmdir(p)
            else:
                self.client.remove(p)

    def mv(self, path1, path2, recursive: bool = False, maxdepth: int | None = None, **kwargs) -> None:
        """Rename (atomic, any size) for single paths; globs and lists go through copy + remove."""
        if isinstance(path1, str) and isinstance(path2, str) and not any(c in path1 for c in "*?["):
            src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
            if src == dst:
                return
            if path2.endswith("/") or self.isdir(dst):
                dst = posixpath.join(dst, posixpath.basename(src))
            if self.auto_mkdir:
                self.client.makedirs(self._parent(dst), exist_ok=True)
            self.client.rename(src, dst)
            return
        super().mv(path1, path2, recursive=recursive, maxdepth=maxdepth, **kwargs)

    # ---- data -----------------------------------------------------------------------------------
    def _open_for_write(self, path: str, mode: str):
        """client.open for a write mode, creating missing parents when auto_mkdir."""
        try:
            return self.client.open(path, mode)
        except FileNotFoundError:
            if not self.auto_mkdir:
                raise
            self.client.makedirs(self._parent(path), exist_ok=True)
            return self.client.open(path, mode)

    def cp_file(self, path1, path2, **kwargs) -> None:
        """Copy a file in 16 MiB pieces (or create the directory, for a directory)."""
        src, dst = self._strip_protocol(path1), self._strip_protocol(path2)
        s = self.client.stat(src)
        if st.S_ISDIR(s.st_mode):
            self.client.makedirs(dst, exist_ok=True)
            return
        with self.client.open(src, "rb") as fin, self._open_for_write(dst, "wb") as fout:
            buf = bytearray(min(COPY_BLOCK, max(fin.length, 1)))
            view = memoryview(buf)
            off = 0
            while off < fin.length:
                n = fin.preadinto(view, off)
                if n == 0:
                    break
                fout.pwrite(view[:n], off)
                off += n

    def cat_file(self, path, start: int | None = None, end: int | None = None, **kwargs) -> bytes:
        """One ranged read (negative start/end count from the end, like slices)."""
        path = self._strip_protocol(path)
        with self.client.open(path, "rb") as f:
            size = f.length
            lo = 0 if start is None else (max(0, size + start) if start < 0 else start)
            hi = size if end is None else (max(0, size + end) if end < 0 else min(end, size))
            if hi <= lo:
                return b""
            return f.pread(hi - lo, lo)

    def pipe_file(self, path, value, mode: str = "overwrite", **kwargs) -> None:
        """Write a whole file in one call ("create" mode fails with FileExistsError if it exists)."""
        path = self._strip_protocol(path)
        with self._open_for_write(path, "xb" if mode == "create" else "wb") as f:
            if len(value):
                f.pwrite(value, 0)

    def touch(self, path, truncate: bool = True, **kwargs) -> None:
        """Create (or truncate) a file; with truncate=False an existing file only gets new times."""
        path = self._strip_protocol(path)
        if truncate or not self.exists(path):
            with self._open_for_write(path, "wb"):
                pass
        else:
            self.client.utime(path)

    def _open(self, path, mode: str = "rb", block_size: int | None = None, autocommit: bool = True,
              cache_options: dict | None = None, **kwargs) -> ThreeFSFile:
        return ThreeFSFile(self, self._strip_protocol(path), mode, block_size=block_size, autocommit=autocommit,
                           cache_options=cache_options, **kwargs)


class ThreeFSFile(AbstractBufferedFile):
    """A buffered fsspec file: ranged reads with readahead, writes uploaded in blocks (4 MiB default).

    Write modes open the threefs file at construction (so "xb" fails at once); with
    autocommit=False (fsspec transactions) data goes to a temporary name renamed by commit().
    """

    def __init__(self, fs: ThreeFSFileSystem, path: str, mode: str = "rb", block_size: int | None = None,
                 autocommit: bool = True, cache_type: str = "readahead", cache_options: dict | None = None,
                 **kwargs) -> None:
        parse_mode(mode)
        self._handle = None
        self._base = 0
        self._target = path
        if mode == "rb":
            self._handle = fs.client.open(path, "rb")
            kwargs.setdefault("size", self._handle.length)
        elif mode in ("wb", "xb", "ab"):
            if not autocommit:
                if mode == "xb" and fs.exists(path):
                    raise FileExistsError(errno.EEXIST, "file exists", path)
                temp = f"{path}.3fs-tmp-{uuid.uuid4().hex[:12]}"
                self._handle = fs._open_for_write(temp, "wb")
                if mode == "ab" and fs.exists(path):
                    raise ValueError("append mode is not supported inside a transaction")
            else:
                self._handle = fs._open_for_write(path, mode)
            self._base = self._handle.length if mode == "ab" else 0
        super().__init__(fs, path, mode, block_size=block_size or fs.blocksize, autocommit=autocommit,
                         cache_type=cache_type, cache_options=cache_options, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        return self._handle.pread(max(0, end - start), start)

    def _initiate_upload(self) -> None:
        """The file was created when it was opened."""

    def _upload_chunk(self, final: bool = False) -> bool:
        data = self.buffer.getbuffer()
        try:
            if len(data):
                self._handle.pwrite(data, self._base + self.offset)
        finally:
            data.release()
        if final:
            self._finish()
        return True

    def _finish(self) -> None:
        handle, self._handle = self._handle, None
        handle.close()
        if self.autocommit or handle.name == self._target:
            return
        self._temp = handle.name

    def commit(self) -> None:
        """Move the transaction's temporary file onto the target name."""
        temp = getattr(self, "_temp", None)
        if temp is not None:
            self.fs.client.rename(temp, self._target)
            self._temp = None

    def discard(self) -> None:
        temp = getattr(self, "_temp", None)
        if temp is not None:
            self.fs.client.remove(temp)
            self._temp = None

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self._handle is not None:
                handle, self._handle = self._handle, None
                handle.close()
