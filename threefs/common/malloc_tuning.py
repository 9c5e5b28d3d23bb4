"""glibc malloc settings for services that allocate and free many MiB-sized payload buffers.

By default glibc serves large allocations with mmap and trims the heap eagerly, so every 1 MiB
request payload costs fresh pages (256 page faults plus the kernel zeroing them). Fixed
thresholds keep those buffers on the heap, where freed ones are reused.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keep_large_buffers_on_heap(mmap_threshold: int = 32 << 20, trim_threshold: int = 256 << 20) -> bool:
    """Raise glibc's mmap and trim thresholds; False where mallopt is unavailable (not glibc)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
