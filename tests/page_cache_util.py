"""Page-cache residency of a file, for tests that check which replica caches a chunk or need a cold read."""
from __future__ import annotations

import os

from threefs.storage import page_map


def cached(path) -> bool:
    """Whether the first page of `path` is in the page cache (mincore through page_map)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return page_map.map_if_resident(fd, 0, 1) is not None
    finally:
        os.close(fd)


def evict(path) -> None:
    """Drop the clean cached pages of `path` (dirty ones stay: sync first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
