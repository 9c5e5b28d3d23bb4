"""Data files of removed chunk versions, kept for the next new version (3FS's chunk engine reuses blocks).

A new 1 MiB chunk written into a fresh file costs an inode, new disk blocks and new page-cache pages.
On the VMs we run on, filling fresh pages is the largest part of a storage node's write CPU (the
kernel's copy into them runs at ~1 GB/s, against several GB/s into pages that are already there).
A file taken from this pool brings its blocks and, usually, its cached pages: the write becomes an
overwrite. Only whole-content writes reuse a file (nothing of the old bytes may survive), only files
with a single link are kept (an append's version shares its inode with the committed one), never a
file a read view still maps, and the pool is bounded in files and bytes and drained when the disk
fills up. A file goes into the pool only after the chunk metadata stopped naming its version, so a
reader that still opened it sees the metadata change and retries (threefs.storage.chunk_engine.read).
"""
from __future__ import annotations

import os
import stat
import threading
import time

from threefs.storage import page_map

RECYCLE_MIN = 64 << 10       # smaller files are unlinked: a small file is cheap to create
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class FilePool:
    """A directory of reusable data files (their contents are garbage) on the target's file system."""

    def __init__(self, directory: str, *, max_files: int = 1024, max_bytes: int = 1 << 30) -> None:
        self.dir = directory
        self.max_files = max_files
        self.max_bytes = max_bytes
        os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._files: list[tuple[str, int]] = []
        self._bytes = 0
        self._prefix = f"{time.time_ns():x}"
        self._next = 0
        for entry in os.scandir(directory):      # kept before a restart: still reusable
            if entry.is_file(follow_symlinks=False):
                self._files.append((entry.path, entry.stat(follow_symlinks=False).st_size))
                self._bytes += self._files[-1][1]

    @property
    def size(self) -> tuple[int, int]:
        """(files, bytes) held."""
        with self._lock:
            return len(self._files), self._bytes

    def keep(self, path: str) -> bool:
        """Move `path` into the pool instead of unlinking it; False if it does not qualify or fit."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size < RECYCLE_MIN:
            return False
        if page_map.is_mapped(st.st_dev, st.st_ino):   # a reader may still send bytes from it
            return False
        with self._lock:      # (two threads may both pass the bound: it is exceeded by one file at most each)
            if len(self._files) >= self.max_files or self._bytes + st.st_size > self.max_bytes:
                return False
            name = f"{self.dir}/{self._prefix}.{self._next}"
            self._next += 1
        try:
            os.rename(path, name)
        except OSError:
            return False
        with self._lock:
            self._files.append((name, st.st_size))
            self._bytes += st.st_size
        return True

    def reuse(self, path: str) -> tuple[int, int] | None:
        """Rename the most recently kept file (the likeliest to be cached) to `path` and open it for
        writing: (fd, its current size), or None when the pool is empty."""
        while True:
            with self._lock:
                if not self._files:
                    return None
                name, size = self._files.pop()
                self._bytes -= size
            try:
                os.rename(name, path)
            except OSError:
                continue                      # vanished (an operator cleaned up): try the next one
            return os.open(path, os.O_WRONLY | _O_CLOEXEC), size

    def drain(self) -> int:
        """Unlink every pooled file (the disk is filling up); returns the bytes freed."""
        with self._lock:
            files, self._files, freed, self._bytes = self._files, [], self._bytes, 0
        for name, _ in files:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        return freed
