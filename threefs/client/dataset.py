"""Map-style datasets over threefs that fetch samples through the batched zero-copy ring (usrbio).

    ds = RecordDataset(["/data/shard-0", "/data/shard-1"], record_size=68, dtype=torch.float32, shape=(17,))
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, num_workers=4)

A batch of indices (`__getitems__`, which DataLoader uses when batching) becomes one ring
submission: every sample of the batch is read in parallel, grouped per storage node. Each process
(the main one, every DataLoader worker) lazily opens its own Client, iovec and ring on first use,
keyed by pid, so workers never touch the parent's connections. gRPC cannot survive a fork while a
client is connected: with the default "fork" start method no threefs client may be open in the
parent when the workers start (datasets close the one they use to size files); otherwise pass
`multiprocessing_context="forkserver"` (or "spawn") to DataLoader.

torch is optional: without it the classes are plain objects returning NumPy arrays (or bytes).
"""
from __future__ import annotations

import bisect
import errno
import multiprocessing.util
import os
from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

from threefs.client.fs import Client
from threefs.client.usrbio import (
    IoRing,
    IoVec,
    deregister_fd,
    make_ioring,
    make_iovec,
    register_fd,
)

try:
    import torch
    from torch.utils.data import Dataset as _Base
except ImportError:  # torch is an optional dependency
    torch = None
    _Base = object

try:
    import numpy
except ImportError:  # numpy is an optional dependency
    numpy = None

__all__ = ["RecordDataset", "SampleIndexDataset", "ThreeFSDataset", "HAVE_TORCH"]

HAVE_TORCH = torch is not None
DEFAULT_IOV_SIZE = 64 << 20
DEFAULT_ENTRIES = 1024


class _Reader:
    """One process's client, iovec, ring and registered files (never crosses a fork)."""

    def __init__(self, mgmtd: str | None, iov_size: int, entries: int, io_depth: int) -> None:
        self.pid = os.getpid()
        self.client = Client(mgmtd)
        try:
            self.iov: IoVec = make_iovec(iov_size)
            self.ring: IoRing = make_ioring(self.client, entries, for_read=True, io_depth=io_depth)
        except BaseException:
            self.client.close()
            raise
        self.fds: dict[str, int] = {}
        # multiprocessing runs this at a worker's exit too (workers leave with os._exit, skipping atexit)
        self._finalizer = multiprocessing.util.Finalize(self, _Reader._shutdown,
                                                        args=(self.pid, self.client, self.ring, self.iov, self.fds),
                                                        exitpriority=10)

    def fd(self, path: str) -> int:
        fd = self.fds.get(path)
        if fd is None:
            fd = self.fds[path] = register_fd(path, client=self.client)
        return fd

    def read(self, requests: Sequence[tuple[str, int, int]], decode: Callable[[memoryview], Any],
             exact: bool) -> list[Any]:
        """Read every (path, offset, length) with as few ring submissions as the iovec allows."""
        out: list[Any] = [None] * len(requests)
        iov, ring = self.iov, self.ring
        i = 0
        while i < len(requests):
            pos = 0
            placed: dict[int, tuple[int, int]] = {}       # request index -> (iov position, length)
            while i < len(requests) and len(placed) < ring.entries:
                path, offset, length = requests[i]
                if length > len(iov):
                    raise ValueError(f"sample of {length} bytes exceeds the {len(iov)}-byte iovec (raise iov_size)")
                if pos + length > len(iov):
                    break
                ring.prepare(iov[pos:pos + length], True, self.fd(path), offset, userdata=i)
                placed[i] = (pos, length)
                pos += length
                i += 1
            for r in ring.submit().wait(min_results=len(placed)):
                path, offset, length = requests[r.userdata]
                if r.result < 0:
                    raise OSError(-r.result, f"reading {length} bytes at {offset} of {path}: {os.strerror(-r.result)}",
                                  path)
                if exact and r.result != length:
                    raise OSError(errno.EIO, f"short read of {path} at {offset}: {r.result} of {length} bytes "
                                  "(the file shrank?)", path)
                p = placed[r.userdata][0]
                out[r.userdata] = decode(iov[p:p + r.result])
        return out

    @staticmethod
    def _shutdown(pid: int, client: Client, ring: IoRing, iov: IoVec, fds: dict[str, int]) -> None:
        if pid != os.getpid():
            return          # a forked child's copy: the connections belong to the parent
        try:
            ring.close()
            for fd in fds.values():
                deregister_fd(fd)
            fds.clear()
        finally:
            client.close()
            iov.close()

    def close(self) -> None:
        self._finalizer()


class ThreeFSDataset(_Base, metaclass=ABCMeta):
    """Base of the threefs datasets: per-process lazy reader, batched fetching, sample decoding.

    A sample is `transform(view)` when a transform is given (view: a memoryview valid only during
    the call), else a copy of the bytes as a torch tensor of `dtype`/`shape` (uint8 by default),
    or a NumPy array when torch is not installed.
    """

    exact = True

    def __init__(self, *, mgmtd: str | None = None, dtype: Any = None, shape: Sequence[int] | None = None,
                 transform: Callable[[memoryview], Any] | None = None, iov_size: int = DEFAULT_IOV_SIZE,
                 entries: int = DEFAULT_ENTRIES, io_depth: int = 0) -> None:
        self.mgmtd = mgmtd or os.environ.get("THREEFS_MGMTD")
        if not self.mgmtd:
            raise ValueError("no threefs cluster: pass mgmtd='host:port' or set THREEFS_MGMTD")
        self.dtype = dtype
        self.shape = tuple(shape) if shape is not None else None
        self.transform = transform
        self.iov_size = iov_size
        self.entries = entries
        self.io_depth = io_depth
        self._reader: _Reader | None = None

    # ---- what subclasses define ---------------------------------------------------------------
    @abstractmethod
    def __len__(self) -> int:
        """Number of samples."""

    @abstractmethod
    def locate(self, index: int) -> tuple[str, int, int]:
        """(path, offset, length) of sample `index` (already in range)."""

    # ---- fetching -------------------------------------------------------------------------------
    def _index(self, index: int) -> int:
        n = len(self)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} samples")
        return i

    def _decode(self, view: memoryview) -> Any:
        if self.transform is not None:
            return self.transform(view)
        if torch is not None:
            t = torch.frombuffer(bytearray(view), dtype=torch.uint8) if len(view) else torch.empty(0, dtype=torch.uint8)
            if self.dtype is not None:
                t = t.view(self.dtype)
            return t.reshape(self.shape) if self.shape is not None else t
        if numpy is not None:
            a = numpy.frombuffer(view, dtype=numpy.uint8).copy()
            if self.dtype is not None:
                a = a.view(self.dtype)
            return a.reshape(self.shape) if self.shape is not None else a
        return bytes(view)

    @property
    def reader(self) -> _Reader:
        """This process's reader (opened on first use; a forked worker opens its own)."""
        if self._reader is None or self._reader.pid != os.getpid():
            self._reader = _Reader(self.mgmtd, self.iov_size, self.entries, self.io_depth)
        return self._reader

    def __getitem__(self, index: int) -> Any:
        return self.reader.read([self.locate(self._index(index))], self._decode, self.exact)[0]

    def __getitems__(self, indices: Sequence[int]) -> list[Any]:
        """A whole batch in one ring submission (DataLoader calls this when batching)."""
        return self.reader.read([self.locate(self._index(i)) for i in indices], self._decode, self.exact)

    def close(self) -> None:
        """Release this process's client, ring and shared memory (reopened on next use)."""
        if self._reader is not None and self._reader.pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_reader"] = None          # spawn/forkserver workers open their own
        return state


class RecordDataset(ThreeFSDataset):
    """Fixed-size records laid end to end in one or more files (a trailing partial record is ignored).

    `header` bytes at the start of each file are skipped. File sizes are read once here, through a
    client that is closed again (so DataLoader may fork afterwards).
    """

    def __init__(self, paths: str | Sequence[str], record_size: int, *, header: int = 0,
                 sizes: Sequence[int] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if record_size <= 0:
            raise ValueError("record_size must be positive")
        self.paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
        self.record_size = record_size
        self.header = header
        if sizes is None:
            with Client(self.mgmtd) as c:
                sizes = [c.stat(p).st_size for p in self.paths]
        if len(sizes) != len(self.paths):
            raise ValueError("one size per path")
        counts = [max(0, (s - header) // record_size) for s in sizes]
        self.starts = [0]
        for n in counts:
            self.starts.append(self.starts[-1] + n)

    def __len__(self) -> int:
        return self.starts[-1]

    def locate(self, index: int) -> tuple[str, int, int]:
        f = bisect.bisect_right(self.starts, index) - 1
        return self.paths[f], self.header + (index - self.starts[f]) * self.record_size, self.record_size


class SampleIndexDataset(ThreeFSDataset):
    """Samples at arbitrary (path, offset, length) places; a sample past EOF comes back short."""

    exact = False

    def __init__(self, samples: Sequence[tuple[str, int, int]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.samples = [(os.fspath(p), int(o), int(n)) for p, o, n in samples]
        for p, o, n in self.samples:
            if o < 0 or n < 0:
                raise ValueError(f"bad sample ({p!r}, {o}, {n}): offset and length must be >= 0")

    def __len__(self) -> int:
        return len(self.samples)

    def locate(self, index: int) -> tuple[str, int, int]:
        return self.samples[index]
