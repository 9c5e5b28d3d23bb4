"""Read-only mappings of chunk files, to serve page-cache-resident bytes without copying them.

A read served from a mapping costs one pass over the data (the CRC check) plus the socket's own
copy, where `pread` into a buffer adds a full copy per byte. The mapping lives as long as any view
of it (the transport keeps one until the bytes are sent) and is unmapped when the last one goes;
files with live mappings are known (`is_mapped`), so their inodes are never reused for other data.

Only ranges that can never shrink may be mapped (committed chunk versions: their files are never
truncated below the committed size), since touching a page past the end of a file raises SIGBUS.

A mapping also witnesses that its pages stayed in memory: reclaiming a page removes it from every page
table that maps it, so a page this process mapped and still finds mapped (`FileMap.mapped`, from
/proc/self/pagemap) holds the bytes it held then, unless the file was written since (its ctime moves).
The chunk engine uses this to check a chunk's CRCs once per stay in memory instead of once per read.
"""
from __future__ import annotations

import ctypes
import mmap
import os
import threading

PAGE = mmap.PAGESIZE

try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _mmap = _libc.mmap
    _mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64]
    _mmap.restype = ctypes.c_void_p
    _munmap = _libc.munmap
    _munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    _munmap.restype = ctypes.c_int
    _mincore = _libc.mincore
    _mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    _mincore.restype = ctypes.c_int
    _madvise = _libc.madvise
    _madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    _madvise.restype = ctypes.c_int
    AVAILABLE = True
except (OSError, AttributeError):  # not Linux/glibc: callers fall back to pread
    AVAILABLE = False

_MAP_FAILED = ctypes.c_void_p(-1).value
_MADV_POPULATE_READ = 22  # Linux 5.14+: map every (resident) page now, not one fault per 16 pages later
_RESIDENT_BIT = bytes(b & 1 for b in range(256))  # mincore: only the low bit of each byte is defined


_PRESENT_BIT = bytes(b >> 7 for b in range(256))  # pagemap: bit 63 (the top bit of an entry's last byte)
_pagemap: tuple[int, int] = (0, -1)       # (pid, fd of /proc/self/pagemap; -1: not opened or unavailable)
_pagemap_lock = threading.Lock()

_mapped: dict[tuple[int, int], int] = {}   # (st_dev, st_ino) -> live mappings of that file
_mapped_lock = threading.Lock()


def is_mapped(dev: int, ino: int) -> bool:
    """Whether a view of this file may still be alive (its inode must not be reused for other data)."""
    with _mapped_lock:
        return (dev, ino) in _mapped


class _Mapping:
    """Owns one mmap'd range; unmaps it when the last view of it is gone."""

    __slots__ = ("addr", "length", "file")

    def __init__(self, addr: int, length: int, file: tuple[int, int]) -> None:
        self.addr, self.length, self.file = addr, length, file
        with _mapped_lock:
            _mapped[file] = _mapped.get(file, 0) + 1

    def __del__(self) -> None:
        _munmap(self.addr, self.length)
        with _mapped_lock:
            left = _mapped.pop(self.file, 1) - 1
            if left:
                _mapped[self.file] = left


def _pagemap_fd() -> int:
    """This process's /proc/self/pagemap, opened once (again after a fork); -1 where there is none."""
    global _pagemap
    pid = os.getpid()
    if _pagemap[0] != pid:
        with _pagemap_lock:
            if _pagemap[0] != pid:
                try:
                    fd = os.open("/proc/self/pagemap", os.O_RDONLY | os.O_CLOEXEC)
                except OSError:
                    fd = -1
                _pagemap = (pid, fd)
    return _pagemap[1]


class FileMap:
    """A read-only mapping of bytes `[0, length)` of a file, kept to serve many reads of it; `view` is
    the whole range. Pages are neither checked nor touched when it is made: ask `resident` first.
    `checked` and `stamp` belong to the owner (the chunk engine: which blocks it verified while they
    stayed mapped, and the file's identity then)."""

    __slots__ = ("addr", "view", "checked", "stamp")

    def __init__(self, fd: int, length: int, st: os.stat_result | None = None) -> None:
        """`st`: the file's stat, when the caller has it (saves an fstat)."""
        st = st or os.fstat(fd)
        addr = _mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == _MAP_FAILED:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        arr = (ctypes.c_char * length).from_address(addr)
        arr._owner = _Mapping(addr, length, (st.st_dev, st.st_ino))
        self.addr, self.view = addr, memoryview(arr).cast("B")
        self.checked, self.stamp = 0, None

    def mapped(self, offset: int, length: int) -> bool:
        """Whether every page of `[offset, offset+length)` is in this process's page tables now (False
        where /proc/self/pagemap cannot be read). A page that was mapped at some point and is mapped now
        was not reclaimed in between, unless this process faulted it in again by touching it."""
        fd = _pagemap_fd()
        if fd < 0:
            return False
        start = offset - offset % PAGE
        pages = -(-(offset + length - start) // PAGE)
        try:
            entries = os.pread(fd, 8 * pages, (self.addr + start) // PAGE * 8)
        except OSError:
            return False
        return len(entries) == 8 * pages and 0 not in entries[7::8].translate(_PRESENT_BIT)

    def resident(self, offset: int, length: int) -> bool:
        """Whether every page of `[offset, offset+length)` is in the page cache (and mapped in now, so
        reading the range will not fault one page at a time)."""
        start = offset - offset % PAGE
        span = offset + length - start
        pages = -(-span // PAGE)
        vec = ctypes.create_string_buffer(pages)
        if _mincore(self.addr + start, span, vec) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        if 0 in vec.raw[:pages].translate(_RESIDENT_BIT):
            return False
        _madvise(self.addr + start, span, _MADV_POPULATE_READ)  # cheap once the page tables are filled
        return True


def map_if_resident(fd: int, offset: int, length: int) -> memoryview | None:
    """A read-only view of `[offset, offset+length)` of `fd`, or None if any page is not in the page cache.

    The caller must guarantee the file keeps at least `offset+length` bytes while the view lives.
    """
    if not AVAILABLE or length <= 0:
        return None
    start = offset - offset % PAGE
    span = offset + length - start
    st = os.fstat(fd)
    addr = _mmap(None, span, mmap.PROT_READ, mmap.MAP_SHARED, fd, start)
    if addr is None or addr == _MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    owner = _Mapping(addr, span, (st.st_dev, st.st_ino))
    pages = -(-span // PAGE)
    vec = ctypes.create_string_buffer(pages)
    if _mincore(addr, span, vec) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if 0 in vec.raw[:pages].translate(_RESIDENT_BIT):
        return None  # `owner` goes with this frame: unmapped
    _madvise(addr, span, _MADV_POPULATE_READ)  # best effort (older kernels: EINVAL, pages fault in)
    arr = (ctypes.c_char * span).from_address(addr)
    arr._owner = owner  # the views below keep `arr`, `arr` keeps the mapping
    return memoryview(arr).cast("B")[offset - start:]
