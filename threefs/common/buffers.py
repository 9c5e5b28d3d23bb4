"""Payload buffers that skip zero-filling: every byte is overwritten (by recv or pread) before use.

`bytearray(n)` memsets its memory; for MiB-sized payloads that memset showed up as 14% of a storage
node's CPU during reads. CPython's C API can allocate a bytearray without initializing it.
"""
from __future__ import annotations

import ctypes

try:
    _from_string_and_size = ctypes.pythonapi.PyByteArray_FromStringAndSize
    _from_string_and_size.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t]
    _from_string_and_size.restype = ctypes.py_object
except AttributeError:  # not CPython
    _from_string_and_size = None

_MIN_UNINITIALIZED = 64 << 10  # below this, the ctypes call costs more than the memset saves


def uninitialized_bytearray(size: int) -> bytearray:
    """A bytearray of `size` bytes with undefined content; the caller must fill all of it before use."""
    if size < _MIN_UNINITIALIZED or _from_string_and_size is None:
        return bytearray(size)
    return _from_string_and_size(None, size)


PAGE = 4096
ALIGNED_FROM = 256 << 10   # views from this size on are page-aligned (storage writes them with O_DIRECT)


def uninitialized_view(size: int) -> memoryview:
    """A writable view of `size` undefined bytes; from 256 KiB on it starts on a 4 KiB boundary, so a
    storage node can write a received payload straight to disk (O_DIRECT needs aligned memory)."""
    if size < ALIGNED_FROM or _from_string_and_size is None:
        return memoryview(uninitialized_bytearray(size))
    buf = uninitialized_bytearray(size + PAGE - 1)
    skip = -ctypes.addressof(ctypes.c_char.from_buffer(buf)) % PAGE
    return memoryview(buf)[skip:skip + size]


def byte_views(data) -> list[memoryview]:
    """A bytes-like object, or a list of them (a payload in pieces), as flat byte views; no copies."""
    if data is None:
        return []
    items = data if isinstance(data, (list, tuple)) else (data,)
    return [v for v in (memoryview(x).cast("B") for x in items) if v.nbytes]


def slice_views(parts: list[memoryview], start: int, n: int) -> list[memoryview]:
    """The views covering bytes [start, start + n) of the concatenation of `parts`; no copies."""
    out: list[memoryview] = []
    for p in parts:
        size = p.nbytes
        if start >= size:
            start -= size
            continue
        take = min(size - start, n)
        out.append(p[start:start + take])
        n -= take
        start = 0
        if n == 0:
            break
    return out
