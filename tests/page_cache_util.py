"""Page-cache residency of a file, for tests that check which replica caches a chunk."""
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
