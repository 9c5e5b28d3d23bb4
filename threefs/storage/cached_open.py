"""Open a file only if its path resolves from the kernel's dentry cache (openat2 RESOLVE_CACHED).

A storage node serves page-cache hits on its event loop; opening a chunk file whose directory entry
or inode was evicted reads the disk, and the whole loop would wait for it. With RESOLVE_CACHED
(Linux 5.12) such an open fails with EAGAIN instead, and the read moves to an I/O thread. Where the
kernel or the architecture lacks it, opens are plain (as before).
"""
from __future__ import annotations

import ctypes
import errno
import os
import platform

RESOLVE_CACHED = 0x20
_AT_FDCWD = -100
_SYS_OPENAT2 = {"x86_64": 437, "aarch64": 437, "arm64": 437, "ppc64le": 437, "s390x": 437}.get(platform.machine())


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _load_syscall():
    if _SYS_OPENAT2 is None:
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    fn.restype = ctypes.c_long
    fn.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
    return fn


_syscall = _load_syscall()
available = _syscall is not None       # cleared at the first ENOSYS/EINVAL (kernel without it)


def open_cached(path: str, flags: int = os.O_RDONLY | os.O_CLOEXEC) -> int | None:
    """An fd of `path`, or None when resolving it would need the disk. Raises OSError like os.open
    (FileNotFoundError for a path known to be absent). `flags` must not create or truncate."""
    global available
    if not available:
        return os.open(path, flags)
    how = _OpenHow(flags, 0, RESOLVE_CACHED)
    fd = _syscall(_SYS_OPENAT2, _AT_FDCWD, os.fsencode(path), ctypes.addressof(how), ctypes.sizeof(how))
    if fd >= 0:
        return fd
    err = ctypes.get_errno()
    if err == errno.EAGAIN:
        return None
    if err in (errno.ENOSYS, errno.EINVAL, errno.E2BIG, errno.EPERM):   # no openat2 / no RESOLVE_CACHED / seccomp
        available = False
        return os.open(path, flags)
    raise OSError(err, os.strerror(err), path)
