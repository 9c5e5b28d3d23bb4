"""Page-cache residency of a file, for tests that check which replica caches a chunk or need a cold read."""
from __future__ import annotations

import os

from threefs.storage import page_map


def cached(path) -> bool:
    """Whether the first page of `path` is in the page cache."""
    return any_cached(path, 0, 1)


def any_cached(path, offset: int, length: int) -> bool:
    """Whether any page of `[offset, offset+length)` of `path` is in the page cache (mincore through page_map)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        first = offset - offset % page_map.PAGE
        return any(page_map.map_if_resident(fd, off, 1) is not None
                   for off in range(first, offset + length, page_map.PAGE))
    finally:
        os.close(fd)


def evict(path) -> None:
    """Drop the cached pages of `path`; it is synced first, as the kernel keeps dirty pages."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
