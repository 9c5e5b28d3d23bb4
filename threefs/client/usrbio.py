"""Batched zero-copy I/O with the shapes of 3FS's USRBIO Python binding (`hf3fs_fuse.io`, reference §5.2).

    iov = make_iovec(64 << 20)                         # shared memory (/dev/shm), a NumPy array via iov.np()
    ring = make_ioring(client, entries=1024, for_read=True, io_depth=0)
    fd = register_fd("/data/shard-0", client=client)
    ring.prepare(iov[0:4096], True, fd, 123456, userdata="a")      # -> slot index
    for r in ring.submit().wait(min_results=1):                    # IoResult(index, result, userdata)
        ...                                                        # result: bytes, or -errno

Direct client mode (this module): a ring runs on its `Client`'s event loop. Each batch of prepared
reads becomes chunk reads whose destinations are slices of the iovec's shared memory; the storage
client groups them per node into BatchRead RPCs and the transport receives each response payload
straight into those slices (no intermediate buffer). Holes read as zeros, reads past EOF return
the short count, and per-I/O failures are -errno results; nothing a single I/O does stops the ring.

io_depth, as in 3FS: `> 0` processes exactly batches of io_depth I/Os (a remainder smaller than
io_depth waits for more submissions); `0` processes whatever is submitted at once; `< 0` processes
as soon as possible, at most -io_depth per batch, waiting up to `timeout` seconds to fill a batch.

Threading, as in 3FS: one producer thread (prepare/submit) and one consumer thread (wait) per
ring; use one ring per thread for multi-threaded readers. Registered fds are process-wide.

With a FUSE mount, 3FS maps iovecs that are linked into `<mount>/3fs-virt/iovs/`; `IoVec.link_into`
creates that link (the FUSE daemon of a later issue maps it). Direct mode needs no mount.
"""
from __future__ import annotations

import asyncio
import ctypes
import errno
import gc
import logging
import mmap
import os
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.shared_memory import SharedMemory
from typing import Any, NamedTuple

from threefs.client.file_io import FileIO
from threefs.client.fs import AsyncFile, Client, File
from threefs.common.errors import FSError
from threefs.storage.client import ReadOp

__all__ = ["IoVec", "IoRing", "IoResult", "IorPriority", "make_iovec", "make_ioring", "register_fd",
           "deregister_fd", "ALLOW_READ_UNCOMMITTED", "FORBID_READ_HOLES"]

log = logging.getLogger(__name__)

ALLOW_READ_UNCOMMITTED = 1     # ring flag: read a chunk's pending version instead of retrying
FORBID_READ_HOLES = 2          # ring flag: a read touching a hole fails with -ENODATA instead of zeros
WINDOW_BYTES = 32 << 20        # one storage read call per window of a batch...
WINDOW_OPS = 2048              # ...or per this many chunk reads
WINDOWS_IN_FLIGHT = 4          # concurrent windows per ring (bounds server-side buffering)
DEFAULT_FILL_TIMEOUT = 0.001   # io_depth < 0: how long a partial batch waits to fill up
_ZEROS = memoryview(bytes(1 << 20))
_RELEASED = memoryview(b"")


class IorPriority:
    """Ring priorities of 3FS (which FUSE-daemon submit queue serves the ring)."""

    HIGH = -1
    NORMAL = 0
    LOW = 1


class IoResult(NamedTuple):
    """One completion: the slot index prepare returned, bytes transferred or -errno, the user data."""

    index: int
    result: int
    userdata: Any


# ---- iovecs --------------------------------------------------------------------------------------

_IOVS_LOCK = threading.Lock()
_IOVS: list[tuple[int, int, weakref.ref[IoVec]]] = []     # (start address, end address, iovec)


def _address(view: memoryview) -> int:
    """Address of the first byte of a non-empty writable contiguous byte view."""
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def _find_iov(view: memoryview) -> tuple[IoVec, int] | None:
    """The live iovec whose memory holds all of `view`, and the view's offset in it."""
    addr = _address(view)
    end = addr + view.nbytes
    with _IOVS_LOCK:
        for start, stop, ref in _IOVS:
            if start <= addr and end <= stop:
                iov = ref()
                if iov is not None and not iov.closed:
                    return iov, addr - start
    return None


class IoVec(mmap.mmap):
    """A shared-memory region (3FS Iov) that read destinations and write sources live in.

    It is itself a writable buffer: `memoryview(iov)`, `numpy.frombuffer(iov)`, `iov.np()`, and
    `iov[a:b]` is a zero-copy memoryview of that range (what `IoRing.prepare` takes).
    """

    def __new__(cls, shm: SharedMemory, *, owned: bool = False, block_size: int = 0) -> IoVec:
        fd = os.open(f"/dev/shm/{shm.name.lstrip('/')}", os.O_RDWR)
        try:
            return super().__new__(cls, fd, shm.size)
        finally:
            os.close(fd)

    def __init__(self, shm: SharedMemory, *, owned: bool = False, block_size: int = 0) -> None:
        if block_size < 0:
            raise ValueError("block_size must be >= 0")
        self.shm = shm
        self.owned = owned
        self.block_size = block_size
        self.id = uuid.uuid4()
        self.link: str | None = None
        self._view = memoryview(self)
        self._closed = False
        self._links: list[str] = []
        self._finalizer = weakref.finalize(self, _release_shm, shm if owned else None, self._links)
        ranges = [(_address(self._view), len(self))]
        shm_view = shm.buf
        if shm_view is not None and len(shm_view):
            ranges.append((_address(shm_view), len(shm_view)))   # slices of shm.buf are accepted too
        ref = weakref.ref(self)
        with _IOVS_LOCK:
            _IOVS.extend((a, a + n, ref) for a, n in ranges)

    @property
    def name(self) -> str:
        """The POSIX shared-memory name (the region is /dev/shm/<name>)."""
        return self.shm.name.lstrip("/")

    @property
    def size(self) -> int:  # type: ignore[override]
        return len(self)

    @property
    def buf(self) -> memoryview:
        """A writable memoryview of the whole region."""
        return self._view

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return self._closed

    def np(self, dtype: Any = "uint8", count: int = -1, offset: int = 0):
        """A NumPy array over the region (no copy)."""
        import numpy
        return numpy.frombuffer(self, dtype=dtype, count=count, offset=offset)

    def __getitem__(self, key):
        return self._view[key]

    def link_into(self, mount_dir: str | os.PathLike) -> str:
        """Link the region into a FUSE mount: `<mount>/3fs-virt/iovs/<uuid-hex>[.b<block_size>]` -> /dev/shm/<name>.

        This is 3FS's registration by symlink; the FUSE daemon maps the region from it. Returns the
        link path (removed again by close()).
        """
        suffix = f".b{self.block_size}" if self.block_size else ""
        link = os.path.join(os.fspath(mount_dir), "3fs-virt", "iovs", self.id.hex + suffix)
        os.symlink(f"/dev/shm/{self.name}", link)
        self.link = link
        self._links.append(link)
        return link

    def close(self) -> None:
        """Unmap (and unlink the link; destroy the shared memory if this iovec created it).

        Raises BufferError, leaving the iovec open, while views of it (memoryviews, NumPy arrays) live.
        """
        if self._closed:
            return
        busy = "iovec memory is still exported (a memoryview or NumPy array of it is alive)"
        try:
            self._view.release()
        except BufferError:
            raise BufferError(busy) from None
        try:
            super().close()
        except BufferError:
            gc.collect()    # views held only by reference cycles (frames of caught exceptions) go now
            try:
                super().close()
            except BufferError:
                self._view = memoryview(self)
                raise BufferError(busy) from None
        self._closed = True
        with _IOVS_LOCK:
            _IOVS[:] = [e for e in _IOVS if e[2]() is not self and e[2]() is not None]
        self.link = None
        self._finalizer()

    def __enter__(self) -> IoVec:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<IoVec /dev/shm/{self.name} size={len(self) if not self._closed else 0} block_size={self.block_size}>"


def _release_shm(shm: SharedMemory | None, links: list[str]) -> None:
    """Remove an iovec's mount links and destroy the shared memory it owns (close() or garbage collection)."""
    for link in links:
        try:
            os.unlink(link)
        except FileNotFoundError:
            pass
    if shm is not None:
        try:
            shm.close()
        except BufferError:
            pass   # its own view is still exported; the mapping goes when the process does
        shm.unlink()


def make_iovec(shm_or_size: SharedMemory | int, hf3fs_mount_point: str | os.PathLike | None = None,
               block_size: int = 0, numa: int = -1) -> IoVec:
    """An iovec over a SharedMemory (or a new region of `size` bytes that the iovec owns).

    With `hf3fs_mount_point`, the region is also linked into `<mount>/3fs-virt/iovs` (FUSE mode).
    """
    if numa != -1:
        raise ValueError("NUMA binding of iovecs is not supported (numa must be -1)")
    if isinstance(shm_or_size, SharedMemory):
        iov = IoVec(shm_or_size, block_size=block_size)
    else:
        size = int(shm_or_size)
        if size <= 0:
            raise ValueError("iovec size must be positive")
        shm = SharedMemory(name=f"threefs-iov-{uuid.uuid4().hex}", create=True, size=size)
        try:
            iov = IoVec(shm, owned=True, block_size=block_size)
        except BaseException:
            shm.close()
            shm.unlink()
            raise
    if hf3fs_mount_point is not None:
        try:
            iov.link_into(hf3fs_mount_point)
        except BaseException:
            iov.close()
            raise
    return iov


# ---- registered fds --------------------------------------------------------------------------------

@dataclass
class _Registered:
    """A registered fd: the open file whose inode, length and write bookkeeping the rings use."""

    afile: AsyncFile
    handle: File | None          # a handle opened by register_fd itself (closed by deregister_fd)
    pid: int


_FDS_LOCK = threading.Lock()
_FDS: dict[int, _Registered] = {}
_NEXT_FD = [3]


def register_fd(file: File | AsyncFile | str | os.PathLike, flags: int = 0, *, client: Client | None = None) -> int:
    """Register an open threefs file (or open a path read-only through `client`) for ring I/O; returns its fd.

    Reads clip at the file's length as its handle knows it (close-to-open); writes need a handle
    opened for writing, and the handle's fsync/close makes them durable and sets the length.
    """
    if flags != 0:
        raise ValueError("register_fd flags must be 0")
    handle: File | None = None
    if isinstance(file, File):
        afile = file.async_file
    elif isinstance(file, AsyncFile):
        afile = file
    elif isinstance(file, (str, os.PathLike)):
        if client is None:
            raise ValueError("registering a path needs client=<threefs Client>")
        handle = client.open(file, "rb")
        afile = handle.async_file
    else:
        raise TypeError(f"cannot register {type(file).__name__}: pass a threefs File, AsyncFile or path")
    if afile.closed:
        raise ValueError("cannot register a closed file")
    with _FDS_LOCK:
        _forget_inherited()
        fd = _NEXT_FD[0]
        _NEXT_FD[0] += 1
        _FDS[fd] = _Registered(afile, handle, os.getpid())
    return fd


def deregister_fd(fd: int) -> None:
    """Forget a registered fd (closing the handle register_fd opened for a path)."""
    with _FDS_LOCK:
        _forget_inherited()
        reg = _FDS.pop(fd, None)
    if reg is None:
        raise OSError(errno.EBADF, f"fd {fd} is not registered")
    if reg.handle is not None:
        reg.handle.close()


def _forget_inherited() -> None:
    """Drop registrations a forked child inherited (their handles belong to the parent's clients)."""
    pid = os.getpid()
    for fd in [fd for fd, r in _FDS.items() if r.pid != pid]:
        del _FDS[fd]


def _lookup(fd: int | AsyncFile) -> _Registered | None:
    """The registration of an fd (or an open file passed to prepare directly); None if unusable."""
    if isinstance(fd, AsyncFile):
        return None if fd.closed else _Registered(fd, None, os.getpid())
    reg = _FDS.get(fd)
    if reg is None or reg.pid != os.getpid() or reg.afile.closed:
        return None
    return reg


# ---- rings ---------------------------------------------------------------------------------------

class _Io:
    """A prepared I/O on its way through the ring."""

    __slots__ = ("index", "view", "fd", "offset", "userdata")

    def __init__(self, index: int, view: memoryview, fd: int | AsyncFile, offset: int, userdata: Any) -> None:
        self.index = index
        self.view = view
        self.fd = fd
        self.offset = offset
        self.userdata = userdata


class IoRing:
    """A read or write ring (3FS Ior): prepare I/Os, submit them, wait for per-I/O results."""

    def __init__(self, client: Client, entries: int, for_read: bool = True, io_depth: int = 0,
                 timeout: float | None = None, flags: int = 0, priority: int | None = None,
                 *, owns_client: bool = False) -> None:
        if entries <= 0:
            raise ValueError("entries must be positive")
        if io_depth > entries:
            raise ValueError(f"io_depth {io_depth} exceeds the ring's {entries} entries")
        if flags & ~(ALLOW_READ_UNCOMMITTED | FORBID_READ_HOLES):
            raise ValueError(f"unknown ring flags {flags:#x}")
        if priority not in (None, IorPriority.HIGH, IorPriority.NORMAL, IorPriority.LOW):
            raise ValueError(f"priority must be an IorPriority value, not {priority!r}")
        self.client = client
        self.entries = entries
        self.for_read = for_read
        self.io_depth = io_depth
        self.timeout = DEFAULT_FILL_TIMEOUT if timeout is None else float(timeout)
        self.flags = flags
        self.priority = priority      # which FUSE-daemon queue serves the ring; direct mode has one loop
        self._owns_client = owns_client
        self._loop = client.loop
        self._cond = threading.Condition()
        self._free = list(range(entries - 1, -1, -1))   # slot indexes; pop() hands out 0 first
        self._prepared: list[_Io] = []
        self._done: deque[IoResult] = deque()
        self._submitted = 0        # submitted and not completed yet
        self._closed = False
        # loop-side state (touched on the client's event loop only)
        self._queue: deque[_Io] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self._files: dict[int, FileIO] = {}       # inode id -> FileIO
        self._window_sem: asyncio.Semaphore | None = None

    # ---- producer side ----------------------------------------------------------------------
    def prepare(self, buf: Any, read: bool, fd: int | File | AsyncFile, offset: int, userdata: Any = None) -> int:
        """Queue one I/O of the bytes of `buf` (a slice of an iovec, or (iovec, offset, length)).

        `fd` is a registered fd, or an open threefs File used as is (like a registered one).

        Returns the slot index its result will carry. Raises ValueError for a buffer outside every
        iovec (or crossing an iovec block), or a read on a write ring (and vice versa), and
        BlockingIOError when all `entries` slots are in use (wait for results to free some).
        """
        if self._closed:
            raise ValueError("ring is closed")
        if bool(read) != self.for_read:
            kind = "read" if self.for_read else "write"
            raise ValueError(f"a {kind} ring takes {kind}s only")
        view = self._resolve(buf)
        with self._cond:
            if not self._free:
                raise BlockingIOError(errno.EAGAIN, f"all {self.entries} ring entries are in use")
            index = self._free.pop()
        self._prepared.append(_Io(index, view, fd.async_file if isinstance(fd, File) else fd, offset, userdata))
        return index

    def _resolve(self, buf: Any) -> memoryview:
        if isinstance(buf, tuple):
            iov, off, length = buf
            if not isinstance(iov, IoVec) or iov.closed:
                raise ValueError("(iovec, offset, length): the first item must be an open IoVec")
            if off < 0 or length < 0 or off + length > len(iov):
                raise ValueError(f"range [{off}, {off + length}) is outside the {len(iov)}-byte iovec")
            view, start = iov.buf[off:off + length], off
        else:
            try:
                view = memoryview(buf)
            except TypeError:
                raise ValueError(f"{type(buf).__name__} is not a buffer inside an iovec") from None
            if not view.c_contiguous:
                raise ValueError("I/O buffer must be contiguous")
            if view.format != "B" or view.ndim != 1:
                view = view.cast("B")
            if view.nbytes == 0:
                return view
            if view.readonly:
                raise ValueError("I/O buffer must be writable iovec memory")
            found = _find_iov(view)
            if found is None:
                raise ValueError("I/O buffer is not inside a live iovec (use make_iovec and slices of it)")
            iov, start = found
        bs = iov.block_size
        if bs and view.nbytes and start // bs != (start + view.nbytes - 1) // bs:
            raise ValueError(f"I/O buffer [{start}, {start + view.nbytes}) crosses a {bs}-byte iovec block")
        return view

    def submit(self) -> IoRing:
        """Hand every prepared I/O to the ring's processor; returns the ring (for `.submit().wait()`)."""
        if self._closed:
            raise ValueError("ring is closed")
        ios, self._prepared = self._prepared, []
        if ios:
            with self._cond:
                self._submitted += len(ios)
            self._loop.call_soon_threadsafe(self._enqueue, ios)
        return self

    # ---- consumer side ----------------------------------------------------------------------
    def wait(self, min_results: int = 1, max_results: int | None = None,
             timeout: float | timedelta | None = None) -> list[IoResult]:
        """Block until `min_results` I/Os completed (or `timeout` passed); return up to `max_results`.

        Returns fewer than min_results only on timeout. Raises ValueError when fewer I/Os than
        min_results are submitted or completed (it could never return).
        """
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        max_results = self.entries if max_results is None else max_results
        if max_results < 1:
            raise ValueError("max_results must be at least 1")
        want = min(max(min_results, 0), max_results)
        with self._cond:
            if want > len(self._done) + self._submitted:
                raise ValueError(f"waiting for {want} results, but only {len(self._done) + self._submitted} "
                                 "I/Os are submitted or done (submit() prepared I/Os first)")
            self._cond.wait_for(lambda: len(self._done) >= want, timeout)   # on timeout: what completed
            out = [self._done.popleft() for _ in range(min(max_results, len(self._done)))]
            self._free.extend(r.index for r in out)
        return out

    @property
    def pending(self) -> int:
        """I/Os submitted and not completed yet."""
        return self._submitted

    # ---- processing (on the client's event loop) ------------------------------------------------
    def _enqueue(self, ios: list[_Io]) -> None:
        self._queue.extend(ios)
        self._dispatch()

    def _dispatch(self) -> None:
        q, depth = self._queue, self.io_depth
        if depth > 0:
            while len(q) >= depth:
                self._launch([q.popleft() for _ in range(depth)])
        elif depth == 0:
            if q:
                self._launch(list(q))
                q.clear()
        else:
            cap = -depth
            while len(q) >= cap:
                self._launch([q.popleft() for _ in range(cap)])
            if q and self._timer is None:
                self._timer = self._loop.call_later(self.timeout, self._flush_partial)
            elif not q and self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _flush_partial(self) -> None:
        """io_depth < 0: the fill timeout passed; process the partial batch."""
        self._timer = None
        q = self._queue
        if q:
            self._launch([q.popleft() for _ in range(min(len(q), -self.io_depth))])
        self._dispatch()

    def _launch(self, ios: list[_Io]) -> None:
        task = self._loop.create_task(self._run_batch(ios))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, ios: list[_Io]) -> None:
        try:
            results = await (self._read_batch(ios) if self.for_read else self._write_batch(ios))
        except asyncio.CancelledError:
            results = [-errno.ECANCELED] * len(ios)
        except Exception:  # a bug here must not strand the ring's waiters
            log.exception("usrbio: batch of %d I/Os failed", len(ios))
            results = [-errno.EIO] * len(ios)
        self._complete(ios, results)

    def _complete(self, ios: list[_Io], results: Sequence[int]) -> None:
        with self._cond:
            for io, res in zip(ios, results):
                self._done.append(IoResult(io.index, res, io.userdata))
                io.view = None  # type: ignore[assignment]  # drop our hold on the iovec memory
            self._submitted -= len(ios)
            self._cond.notify_all()

    def _file_io(self, reg: _Registered) -> FileIO:
        """This ring's FileIO of the registered file's inode (placement depends on the inode only)."""
        inode = reg.afile.inode
        fio = self._files.get(inode.id)
        if fio is None:
            fio = self._files[inode.id] = FileIO(inode, self.client.aio.mgmtd, self.client.aio.storage)
        return fio

    async def _read_batch(self, ios: list[_Io]) -> list[int]:
        results = [0] * len(ios)
        plans: list[tuple[int, int, list[ReadOp]]] = []   # (io position, bytes, its chunk reads)
        relaxed = bool(self.flags & ALLOW_READ_UNCOMMITTED)
        for i, io in enumerate(ios):
            reg = _lookup(io.fd)
            if reg is None or not reg.afile.readable:
                results[i] = -errno.EBADF
                continue
            if io.offset < 0:
                results[i] = -errno.EINVAL
                continue
            n = max(0, min(io.view.nbytes, reg.afile.length - io.offset))
            if n == 0:
                continue
            if reg.afile._staged is not None:
                await reg.afile.unstage()               # staged small content: ring I/O goes to storage
            if reg.afile.io.inline is not None:        # a small file kept in meta: its content came with open
                results[i] = reg.afile.io.read_inline(io.offset, io.view, n)
                continue
            try:
                fio = self._file_io(reg)
                await fio.ready()
                ops = fio.read_ops(io.offset, io.view, n)
            except (FSError, ValueError) as e:     # no routing for the file's chains, a bad layout
                results[i] = -(getattr(e, "errno", None) or errno.EIO)
                continue
            for op in ops:
                op.relaxed = relaxed
            plans.append((i, n, ops))
        all_ops = [op for _, _, ops in plans for op in ops]
        if all_ops:
            await self._read_windows(all_ops)
        forbid_holes = bool(self.flags & FORBID_READ_HOLES)
        for i, n, ops in plans:
            err = next((op.result for op in ops if op.result < 0), 0)
            if err:
                results[i] = err
            elif forbid_holes and any(op.result < op.length for op in ops):
                results[i] = -errno.ENODATA
            else:
                for op in ops:
                    _zero_fill(op.dest, op.result, op.length)
                results[i] = n
        for op in all_ops:
            op.dest = _RELEASED      # retry errors' tracebacks may keep the ops alive; not the iovec
        return results

    async def _read_windows(self, ops: list[ReadOp]) -> None:
        """Run the chunk reads in windows (each batched per node by the storage client)."""
        if self._window_sem is None:
            self._window_sem = asyncio.Semaphore(WINDOWS_IN_FLIGHT)
        windows: list[list[ReadOp]] = []
        cur: list[ReadOp] = []
        size = 0
        for op in ops:
            if cur and (size + op.length > WINDOW_BYTES or len(cur) >= WINDOW_OPS):
                windows.append(cur)
                cur, size = [], 0
            cur.append(op)
            size += op.length
        windows.append(cur)

        async def run(window: list[ReadOp]) -> None:
            async with self._window_sem:
                await self.client.aio.storage.read(window)

        await asyncio.gather(*(run(w) for w in windows))

    async def _write_batch(self, ios: list[_Io]) -> list[int]:
        results = [0] * len(ios)
        jobs = []
        for i, io in enumerate(ios):
            reg = _lookup(io.fd)
            if reg is None or not reg.afile.writable:
                results[i] = -errno.EBADF
            elif io.offset < 0:
                results[i] = -errno.EINVAL
            elif io.view.nbytes:
                jobs.append((i, io, reg))

        async def one(i: int, io: _Io, reg: _Registered) -> None:
            fio = self._file_io(reg)
            try:
                await reg.afile.unstage()              # small content staged or in meta first, then ring writes
                results[i] = await fio.write(io.offset, io.view)
            except FSError as e:
                results[i] = -(e.errno or errno.EIO)
            finally:
                afile = reg.afile
                afile.io.touched_chains |= fio.touched_chains     # the handle's fsync covers ring writes
            if results[i] > 0:
                afile.wrote(io.offset, results[i])

        await asyncio.gather(*(one(*job) for job in jobs))
        return results

    # ---- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the I/Os in flight, fail the prepared-but-unsubmitted ones, release the ring."""
        if self._closed:
            return
        self._closed = True
        with self._cond:
            self._free.extend(io.index for io in self._prepared)
        self._prepared = []

        async def drain() -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._queue:
                self._launch(list(self._queue))
                self._queue.clear()
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

        try:
            self.client.run(drain())
        finally:
            if self._owns_client:
                self.client.close()

    def __enter__(self) -> IoRing:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and getattr(self, "_owns_client", False):
            try:
                self.client.close()
            except Exception:
                pass


def _zero_fill(dest: memoryview, start: int, end: int) -> None:
    """Zero dest[start:end] (the part of a chunk read past the chunk's data: a hole)."""
    while start < end:
        n = min(end - start, len(_ZEROS))
        dest[start:start + n] = _ZEROS[:n]
        start += n


def make_ioring(client_or_mgmtd: Client | str, entries: int, for_read: bool = True, io_depth: int = 0,
                priority: int | None = None, timeout: float | None = None, numa: int = -1,
                flags: int = 0) -> IoRing:
    """A read (for_read=True) or write ring of `entries` slots served by a Client (or a new one for "host:port").

    `timeout` (seconds) is how long an io_depth < 0 ring waits to fill a batch; `flags` takes
    ALLOW_READ_UNCOMMITTED and FORBID_READ_HOLES.
    """
    if numa != -1:
        raise ValueError("NUMA binding of rings is not supported (numa must be -1)")
    if isinstance(client_or_mgmtd, Client):
        return IoRing(client_or_mgmtd, entries, for_read, io_depth, timeout, flags, priority)
    if isinstance(client_or_mgmtd, (str, os.PathLike)):
        target = os.fspath(client_or_mgmtd)
        if os.path.isdir(target):
            raise ValueError(f"{target} is a directory: rings through a FUSE mount are served by the threefs FUSE "
                             "daemon; for direct mode pass a Client or the mgmtd address host:port")
        client = Client(target)
        try:
            return IoRing(client, entries, for_read, io_depth, timeout, flags, priority, owns_client=True)
        except BaseException:
            client.close()
            raise
    raise TypeError(f"make_ioring needs a threefs Client or an mgmtd address, not {type(client_or_mgmtd).__name__}")
