"""Per-target chunk store: chunk replicas with a committed and at most one pending version.

On-disk layout of one target directory::

    <target_dir>/meta/                      rocksdict (RocksDB), key = chunk id, value = ChunkMeta
    <target_dir>/data/<xx>/<chunk hex>.<v>  content of version v of a chunk

``xx`` is ``CRC32C(chunk id) & 0xff`` in hex: chunk ids all start with ``00 00`` (and small files
all have chunk index 0), so a hash spreads the files evenly over 256 pre-created directories.

File naming rule (pure function of the metadata, nothing else is stored):

* the committed content (``size`` bytes) lives in file ``.{commit_ver}``;
* the pending content (``pending_size`` bytes) lives in file ``.{update_ver}``;
* a version whose size is 0 (or a pending removal) has no file.

An in-place append ("pending content lives in the committed file") is a *hard link*: the update links
``.{update_ver}`` to the committed inode and writes the new bytes after the committed ``size``.
The committed bytes are never modified, readers of ``.{commit_ver}`` only read ``[0, size)``, and the
commit just unlinks ``.{commit_ver}`` as it does after a copy-on-write, so one rule covers both cases.
Every other update writes a new file (copy-on-write). A new file is always created after unlinking any
stale file of the same name (left by a crash), so a stale hard link can never truncate live data.

Bytes ``[0, size)`` of a data file never change once written, so a reader opens the file named by the
metadata it looked up, reads from that descriptor (safe even if a commit unlinks the name meanwhile),
verifies the 64 KiB block CRC32Cs and retries with fresh metadata if the file vanished or changed.

Metadata writes go to RocksDB's WAL without sync (they survive a process kill); data files are
written with ``os.pwrite`` and not fsynced: ``sync()`` fsyncs the files and directories touched since
the previous ``sync()`` and then syncs the WAL. The state DIRTY is never persisted: a crash between
writing a data file and writing the metadata leaves only an unreferenced file, which the next update
of that version replaces and ``remove_all`` deletes.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct
import threading
import time
from pathlib import Path
from typing import overload

from crc32c import crc32c
from rocksdict import Options, Rdict

from threefs.common.buffers import ALIGNED_FROM, uninitialized_view
from threefs.common.crc_combine import crc32c_combine
from threefs.common.errors import Code, FSError, make_error
from threefs.common.metrics import MAPPED_READ_BYTES
from threefs.common.wal_sync import WalSyncer
from threefs.proto.storage_pb2 import (
    CLEAN,
    COMMIT,
    EXTEND,
    REMOVE,
    TRUNCATE,
    WRITE,
    ChunkMeta,
)
from threefs.storage import page_map
from threefs.storage.cached_open import open_cached
from threefs.storage.file_pool import RECYCLE_MIN, FilePool
from threefs.storage.map_cache import MapCache

BLOCK_SIZE = 64 * 1024
_ZEROS = memoryview(bytes(BLOCK_SIZE))
_READ_ATTEMPTS = 4
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_UNKNOWN = object()   # update(current=...) not given: look the chunk up
RESERVE_FRACTION = 0.05      # default free space kept back from chunk data: 5% of the file system...
RESERVE_MAX = 1 << 30        # ...at most 1 GiB
FRESH_MAX = 1024             # written, not yet committed versions kept mapped for their first read
COARSE_TICK_NS = 20_000_000  # more than a clock tick (1-10 ms) of coarse file timestamps
_SENT_CHECKED, _SENT_TRUSTED = MAPPED_READ_BYTES.labels("yes"), MAPPED_READ_BYTES.labels("no")


def default_reserve(path: str | Path) -> int:
    """Bytes of the file system at `path` that chunk data may not take (RESERVE_FRACTION, at most RESERVE_MAX)."""
    st = os.statvfs(path)
    return min(RESERVE_MAX, int(st.f_blocks * st.f_frsize * RESERVE_FRACTION))


class _Crcs:
    """Whole-content CRC32C and per-block CRC32Cs of a byte stream that can be extended."""

    __slots__ = ("total", "blocks", "size")

    def __init__(self, total: int = 0, blocks: bytes = b"", size: int = 0) -> None:
        if len(blocks) != 4 * -(-size // BLOCK_SIZE):
            raise make_error(Code.INTERNAL, f"{len(blocks) // 4} block CRCs for {size} bytes")
        self.total = total
        self.blocks = list(struct.unpack(f"<{len(blocks) // 4}I", blocks))
        self.size = size

    def feed(self, data: memoryview) -> int:
        """Extend by `data`, reading each byte once; returns the CRC32C of `data` itself.

        Whole blocks are checksummed once and the block CRC is combined into the running totals;
        partial blocks (at most two per call) are folded in directly.
        """
        pos, n, own = 0, len(data), 0
        while pos < n:
            fill = self.size % BLOCK_SIZE
            take = min(BLOCK_SIZE - fill, n - pos)
            piece = data[pos : pos + take]
            if take == BLOCK_SIZE:
                c = crc32c(piece)
                self.blocks.append(c)
                self.total = crc32c_combine(self.total, c, BLOCK_SIZE)
                own = crc32c_combine(own, c, BLOCK_SIZE)
            else:
                if fill:
                    self.blocks[-1] = crc32c(piece, self.blocks[-1])
                else:
                    self.blocks.append(crc32c(piece))
                self.total = crc32c(piece, self.total)
                own = crc32c(piece, own)
            pos += take
            self.size += take
        return own

    def feed_zeros(self, n: int) -> None:
        while n > 0:
            take = min(n, BLOCK_SIZE)
            self.feed(_ZEROS[:take])
            n -= take

    def packed(self) -> bytes:
        return struct.pack(f"<{len(self.blocks)}I", *self.blocks)


def _check_payload(chunk_id: bytes, actual: int, expected: int) -> None:
    if actual != expected:
        raise make_error(Code.CHECKSUM_MISMATCH, f"payload CRC32C mismatch for chunk {chunk_id.hex()}")


def _content(meta: ChunkMeta | None, ver: int) -> tuple[int, int, bytes] | None:
    """(size, checksum, block CRCs) of version `ver` as `meta` describes it; None if not there."""
    if meta is None:
        return None
    if ver == meta.update_ver and (meta.update_ver != meta.commit_ver or meta.state != COMMIT):
        return None if meta.removing else (meta.pending_size, meta.pending_checksum, meta.pending_block_crcs)
    if ver == meta.commit_ver:
        return meta.size, meta.checksum, meta.block_crcs
    return None


def _pwrite_all(fd: int, data: memoryview, pos: int) -> None:
    while data:
        n = os.pwrite(fd, data, pos)
        data = data[n:]
        pos += n


_O_DIRECT = getattr(os, "O_DIRECT", 0)
DIRECT_ALIGN = 4096        # offset, length and buffer address of a write that bypasses the page cache
DIRECT_MIN = ALIGNED_FROM  # smaller writes go through the page cache (a direct write waits for the disk);
                           # payloads this large arrive in page-aligned receive buffers


def direct_capable(view: memoryview, offset: int) -> bool:
    """Whether `view` can be written at `offset` with O_DIRECT (large, block-aligned, writable buffer)."""
    if not _O_DIRECT or len(view) < DIRECT_MIN or offset % DIRECT_ALIGN or len(view) % DIRECT_ALIGN:
        return False
    try:
        address = ctypes.addressof(ctypes.c_char.from_buffer(view))
    except (TypeError, ValueError):      # read-only or not contiguous: its address is out of reach
        return False
    return address % DIRECT_ALIGN == 0


def _pwrite_direct(fd: int, data: memoryview, pos: int) -> bool:
    """Write `data` past the page cache; False (nothing to rely on) where the file system refuses.

    The bytes go from our buffer to the device without the kernel's copy into page-cache pages; they
    still need the target's sync (which fsyncs or syncfs's) to be durable, like any other write.
    """
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _O_DIRECT)
    except OSError:
        return False
    try:
        _pwrite_all(fd, data, pos)
        return True
    except OSError as e:
        if e.errno != errno.EINVAL:     # EINVAL: this file system (or a short write) wants buffered I/O
            raise
        return False
    finally:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def _pread_direct(fd: int, buf: memoryview, pos: int) -> int:
    """Fill `buf` (aligned address and length) from `pos` with an O_DIRECT fd; the bytes read (fewer at EOF)."""
    got = 0
    while got < len(buf):
        n = os.preadv(fd, [buf[got:]], pos + got)
        if n == 0 or n % DIRECT_ALIGN:   # end of file (a direct read only stops short there)
            return got + n
        got += n
    return got


class WouldBlock(Exception):
    """A `nowait` read found bytes that are not in the page cache: retry it on an I/O thread."""


_RWF_NOWAIT = getattr(os, "RWF_NOWAIT", 0)


def _preadv_all(fd: int, bufs: list[memoryview], pos: int, nowait: bool = False) -> bool:
    """Fill `bufs` from `pos`; False if the file ends first.

    With `nowait`, only page-cache bytes are read (preadv2 RWF_NOWAIT) and WouldBlock is raised
    when the disk would be needed, so the event loop can serve cached reads without a thread hop.
    """
    bufs = [b for b in bufs if len(b)]
    if nowait and not _RWF_NOWAIT:
        raise WouldBlock()
    while bufs:
        if nowait:
            try:
                n = os.preadv(fd, bufs, pos, _RWF_NOWAIT)
            except (BlockingIOError, InterruptedError) as e:
                raise WouldBlock() from e
        else:
            n = os.preadv(fd, bufs, pos)
        if n == 0:
            return False
        pos += n
        while bufs and n >= len(bufs[0]):
            n -= len(bufs[0])
            bufs.pop(0)
        if n:
            bufs[0] = bufs[0][n:]
    return True


def _create(path: str) -> int:
    """A new, empty file at `path` (a stale one, or a hard link to a committed version, is replaced)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileExistsError:
        os.unlink(path)
        return os.open(path, flags, 0o644)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_SYNCFS_MIN_FILES = 8      # from this many dirty files on, one syncfs(2) beats per-file fsync


def _syncfs(path: str) -> bool:
    """syncfs(2) on the file system holding `path` (flushes every dirty file there at once)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return False
    fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    try:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
        return True
    finally:
        os.close(fd)


def _load_sync_file_range():
    """libc's sync_file_range(2), or None where it is missing (not Linux)."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_SYNC_FILE_RANGE = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2
_WRITEBACK_MIN = 256 << 10  # small writes are left to the kernel's writeback: an early kick per 4 KiB costs IOPS


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start (not wait for) writeback of freshly written bytes, as RocksDB's bytes_per_sync does.

    Data files are only fsynced when a client asks; without this, gigabytes of dirty pages pile up
    and that fsync (and the kernel's dirty throttling) stalls. Best effort: errors surface at fsync.
    """
    if _SYNC_FILE_RANGE is not None and length >= _WRITEBACK_MIN:
        _SYNC_FILE_RANGE(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _fsync_path(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_data(path: str, nowait: bool = False) -> int | None:
    """A read-only fd of a chunk data file; None if it is gone (IO_ERROR for any other failure).
    With `nowait`, WouldBlock when resolving the path would read the disk (see cached_open)."""
    try:
        if nowait:
            fd = open_cached(path, os.O_RDONLY | _O_CLOEXEC)
            if fd is None:
                raise WouldBlock()
            return fd
        return os.open(path, os.O_RDONLY | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise make_error(Code.IO_ERROR, f"opening {path}: {e}") from e


def _verified(view: memoryview, first: int, stop: int, size: int, meta: ChunkMeta, crcs: bytes,
              chunk_id: bytes, ver: int, offset: int) -> memoryview:
    """`view` (the whole blocks `[first, stop)` of a version of `size` bytes) if its CRCs match, else
    CHECKSUM_MISMATCH; a view of the whole content is checked against the stored whole CRC (no folding)."""
    whole = first == 0 and stop == size
    if not (crc32c(view) == meta.checksum if whole else _blocks_ok([view], first, stop, crcs)):
        raise make_error(Code.CHECKSUM_MISMATCH, f"chunk {chunk_id.hex()} v{ver} is corrupt near offset {offset}")
    return view


def _block_mask(first: int, stop: int) -> int:
    """The bits of the blocks `[first, stop)` covers (bit i: block i), as FileMap.checked holds them."""
    b0 = first // BLOCK_SIZE
    return ((1 << (-(-stop // BLOCK_SIZE) - b0)) - 1) << b0


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes when a file is written, truncated or replaced: (inode, size, mtime, ctime)."""
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _stamp_of(path: str) -> tuple[int, int, int, int] | None:
    try:
        return _stamp(os.stat(path))
    except OSError:
        return None


def fine_ctimes(directory: str | Path) -> bool:
    """Whether files in `directory` get a new ctime for a write right after a stat (multigrain
    timestamps, Linux 6.13+ on ext4, xfs, btrfs, tmpfs), rather than one per clock tick: then a
    file's stamp taken once shows every later write."""
    path = os.path.join(directory, ".ctime-probe")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC, 0o600)
    except OSError:
        return False
    try:
        for _ in range(5):     # writes microseconds apart: equal ctimes in one of them means coarse ones
            os.pwrite(fd, b"a", 0)
            before = os.fstat(fd).st_ctime_ns
            os.pwrite(fd, b"b", 0)
            if os.fstat(fd).st_ctime_ns == before:
                return False
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
        _unlink(path)


def _block_span(offset: int, n: int, size: int) -> tuple[int, int]:
    """The range of whole blocks (the last one clipped to `size`) that `[offset, offset+n)` touches."""
    return offset // BLOCK_SIZE * BLOCK_SIZE, min(-(-(offset + n) // BLOCK_SIZE) * BLOCK_SIZE, size)


def _blocks_ok(pieces: list[memoryview], first: int, stop: int, crcs: bytes) -> bool:
    """Whether `pieces` (together: the content of the blocks `[first, stop)`) match their block CRCs."""
    if len(crcs) < 4 * -(-stop // BLOCK_SIZE):
        return False
    if len(pieces) == 1 and stop - first > BLOCK_SIZE:
        # one CRC pass over the whole range, against the stored block CRCs folded together: the
        # same check as block by block (any corrupt block changes the whole-range CRC)
        b0, b1 = first // BLOCK_SIZE, -(-stop // BLOCK_SIZE)
        expect = 0
        for i, c in enumerate(struct.unpack_from(f"<{b1 - b0}I", crcs, 4 * b0), b0):
            expect = crc32c_combine(expect, c, min(BLOCK_SIZE, stop - i * BLOCK_SIZE))
        return crc32c(pieces[0]) == expect
    block, crc, fill = first // BLOCK_SIZE, 0, 0
    for piece in pieces:
        pos = 0
        while pos < len(piece):
            take = min(BLOCK_SIZE - fill, len(piece) - pos)
            crc = crc32c(piece[pos : pos + take], crc)
            pos += take
            fill += take
            if fill == BLOCK_SIZE or block * BLOCK_SIZE + fill == stop:
                if crc != struct.unpack_from("<I", crcs, 4 * block)[0]:
                    return False
                block, crc, fill = block + 1, 0, 0
    return True


class UnavailableEngine:
    """Stands in for the chunk engine of a target whose store cannot be opened (a failed disk, corrupt
    metadata): the node serves its other targets and reports this one OFFLINE; every operation on it
    fails with TARGET_OFFLINE, giving the reason; it reports no space."""

    def __init__(self, target_dir: str | Path, target_id: int, reason: str) -> None:
        self.target_dir = Path(target_dir)
        self.target_id = target_id
        self.reason = reason

    def space(self) -> tuple[int, int, int, int]:
        return 0, 0, 0, 0

    def close(self) -> None:
        pass

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise make_error(Code.TARGET_OFFLINE, f"target {self.target_id} is unavailable: {self.reason}")
        return unavailable


class ChunkEngine:
    """The chunk store of one storage target directory (thread-safe across different chunks)."""

    def __init__(self, target_dir: str | Path, target_id: int, *, maps: MapCache | None = None,
                 reserved: int | None = None) -> None:
        """`maps`: where read_view keeps chunk mappings between reads, shared by a node's targets (by
        default a cache of this engine's own). `reserved`: free bytes of the file system that new chunk
        data may not take (None: default_reserve), so that the target's metadata, chunk removals
        included, can still be written when the data has filled the disk; 0 keeps nothing back."""
        self.target_dir = Path(target_dir)
        self.target_id = target_id
        self._data = self.target_dir / "data"
        for i in range(256):
            (self._data / f"{i:02x}").mkdir(parents=True, exist_ok=True)
        self.reserved = default_reserve(self.target_dir) if reserved is None else reserved
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        try:
            self._db = Rdict(str(self.target_dir / "meta"), opts)
            self._wal = WalSyncer(str(self.target_dir / "meta"))
        except Exception as e:  # rocksdict raises plain Exception
            if "lock" in str(e).lower():
                raise make_error(Code.BUSY, f"target {target_dir} is in use: {e}") from e
            raise make_error(Code.IO_ERROR, f"cannot open metadata of target {target_dir}: {e}") from e
        self._pool = FilePool(str(self.target_dir / "pool"))
        self._drain_lock = threading.Lock()
        self._lock = threading.Lock()
        self._unsynced_files: set[str] = set()
        self._unsynced_dirs: set[str] = {str(self.target_dir), str(self._data)}
        self._chunks = sum(1 for _ in self._db.keys())
        self._closed = False
        self._direct_reads = True   # cleared when the file system refuses O_DIRECT
        self._maps = maps if maps is not None else MapCache()   # mappings kept between reads (read_view)
        self._fresh: dict[bytes, tuple[int, page_map.FileMap]] = {}   # chunk -> (version, map): _keep_fresh
        self._fine_ctime = fine_ctimes(self.target_dir)

    # ----------------------------------------------------------------------------------- basics

    def close(self) -> None:
        """Make everything durable and close the metadata store (idempotent)."""
        if self._closed:
            return
        self.sync()
        self._closed = True
        self._maps.clear(self.target_id)
        self._fresh.clear()
        self._wal.close()
        self._db.close()

    def path_of(self, chunk_id: bytes, version: int) -> Path:
        """The data file holding version `version` of a chunk (it may not exist)."""
        return Path(self._path(chunk_id, version))

    def _path(self, chunk_id: bytes, version: int) -> str:
        return f"{self._data}/{crc32c(chunk_id) & 0xFF:02x}/{chunk_id.hex()}.{version}"

    def get(self, chunk_id: bytes) -> ChunkMeta | None:
        raw = self._db.get(bytes(chunk_id))
        return None if raw is None else ChunkMeta.FromString(raw)

    def metas(
        self, begin: bytes = b"", end: bytes | None = None, *, reverse: bool = False, limit: int = 0
    ) -> list[ChunkMeta]:
        """Metadata of the chunks with ids in [begin, end), ascending (or descending if `reverse`)."""
        out: list[ChunkMeta] = []
        it = self._db.iter()
        if reverse:
            if end is None:
                it.seek_to_last()
            else:
                it.seek_for_prev(end)
                if it.valid() and it.key() >= end:
                    it.prev()
        else:
            it.seek(begin)
        while it.valid() and (not limit or len(out) < limit):
            key = it.key()
            if key < begin or (end is not None and key >= end):
                break
            out.append(ChunkMeta.FromString(it.value()))
            if reverse:
                it.prev()
            else:
                it.next()
        return out

    def _put(self, meta: ChunkMeta) -> None:
        self._maps.drop(self.target_id, meta.chunk_id)
        self._db.put(meta.chunk_id, meta.SerializeToString())

    def _delete(self, chunk_id: bytes) -> None:
        self._maps.drop(self.target_id, chunk_id)
        self._db.delete(chunk_id)

    def _touched(self, path: str, *, file: bool = True) -> None:
        with self._lock:
            if file:
                self._unsynced_files.add(path)
            self._unsynced_dirs.add(os.path.dirname(path))

    # ----------------------------------------------------------------------------------- update

    def update(
        self,
        chunk_id: bytes,
        *,
        update_ver: int,
        chain_ver: int,
        kind: int,
        offset: int = 0,
        data: bytes | bytearray | memoryview | None = None,
        data_crc: int | None = None,
        length: int = 0,
        chunk_size: int,
        full_replace: bool = False,
        client_id: bytes = b"",
        request_id: int = 0,
        current: ChunkMeta | None | object = _UNKNOWN,
        direct: bool = False,
        keep_mapped: bool = False,
    ) -> ChunkMeta:
        """Write pending version `update_ver` (state CLEAN) and return the new metadata.

        `data_crc`, when given, must be the CRC32C of `data` (checked before anything is written).
        `current`: the chunk's stored metadata (None: no such chunk) when the caller has just read it
        under the chunk's lock; saves the lookup.
        `direct`: write the payload past the page cache when it qualifies (see `direct_capable`), for a
        replica that will not serve the chunk's reads. `keep_mapped`: this replica serves them; a version
        whose whole content this update writes stays mapped for its reads, already verified (_keep_fresh).
        """
        chunk_id = bytes(chunk_id)
        if not chunk_id:
            raise make_error(Code.INVALID_ARGUMENT, "empty chunk id")
        self._take_fresh(chunk_id)
        view = memoryview(b"") if data is None else memoryview(data).cast("B")
        if data_crc is not None and kind != WRITE:
            _check_payload(chunk_id, crc32c(view), data_crc)
        expect = data_crc if kind == WRITE else None
        if kind not in (WRITE, REMOVE, TRUNCATE, EXTEND):
            raise make_error(Code.INVALID_ARGUMENT, f"unknown update type {kind}")
        if len(view):
            self._check_space(len(view))
        old = self.get(chunk_id) if current is _UNKNOWN else current
        for attempt in (1, 2):
            try:
                if full_replace:
                    meta = self._replace(chunk_id, update_ver, kind, view, chunk_size, expect, direct, keep_mapped)
                else:
                    meta = self._apply(self._clean_base(chunk_id, old, update_ver), update_ver, kind, offset,
                                       view, data is not None, length, chunk_size, expect, direct, keep_mapped)
                break
            except FSError:
                raise
            except OSError as e:
                full = e.errno in (errno.ENOSPC, errno.EDQUOT)
                if full and attempt == 1:
                    self._drain_pool()
                    continue          # the space kept for reuse goes back to the file system first
                code = Code.NO_SPACE if full else Code.IO_ERROR
                raise make_error(code, f"writing chunk {chunk_id.hex()} v{update_ver}: {e}") from e
        meta.update_ver = update_ver
        meta.chain_ver = chain_ver
        meta.state = CLEAN
        meta.target_id = self.target_id
        meta.last_client_id = bytes(client_id)
        meta.last_request_id = request_id
        self._put(meta)
        if old is None:
            with self._lock:
                self._chunks += 1
        elif full_replace:
            for v in {old.commit_ver, old.update_ver} - {update_ver, 0}:
                self._remove_file(chunk_id, v)
        return meta

    def _check_space(self, need: int) -> None:
        """NO_SPACE for `need` bytes of new chunk data that would leave less than the reserve free: a disk
        that chunk data has filled must stay writable for metadata, or its chunks could not even be
        removed (rocksdb cannot log a removal on a full disk). Files kept for reuse go back first."""
        if not self.reserved:
            return
        st = os.statvfs(self.target_dir)
        free = st.f_bavail * st.f_frsize
        if free - need < self.reserved:
            self._drain_pool()
            st = os.statvfs(self.target_dir)
            free = st.f_bavail * st.f_frsize
        if free - need < self.reserved:
            raise make_error(Code.NO_SPACE, f"target {self.target_id} is full: {free} bytes free, of which "
                                            f"{self.reserved} are kept for its metadata and removals")

    def _drain_pool(self) -> None:
        """Give the files kept for reuse back to the file system (it is filling up). A caller that finds a
        drain by another thread in progress waits for it: the space comes back only once it has unlinked
        every file, and a look at the free space before that would see a full disk."""
        with self._drain_lock:
            self._pool.drain()

    @staticmethod
    def _clean_base(chunk_id: bytes, old: ChunkMeta | None, update_ver: int) -> ChunkMeta:
        """The committed state a normal update builds on (checks the version rules)."""
        base = old if old is not None else ChunkMeta(chunk_id=chunk_id)
        if base.update_ver != base.commit_ver or base.state != COMMIT:
            raise make_error(
                Code.CHUNK_NOT_CLEAN,
                f"chunk {chunk_id.hex()} has pending version {base.update_ver} (committed {base.commit_ver})",
            )
        if update_ver != base.commit_ver + 1:
            code = Code.CHUNK_STALE_UPDATE if update_ver <= base.commit_ver else Code.CHUNK_MISSING_UPDATE
            raise make_error(code, f"chunk {chunk_id.hex()}: update {update_ver} after committed {base.commit_ver}")
        return base

    def _apply(
        self,
        base: ChunkMeta,
        ver: int,
        kind: int,
        offset: int,
        view: memoryview,
        has_data: bool,
        length: int,
        chunk_size: int,
        expect: int | None = None,
        direct: bool = False,
        keep: bool = False,
    ) -> ChunkMeta:
        """Compute and write the pending content of a normal update on top of the committed one.

        `expect`: the payload's CRC32C from the request, checked before anything is written;
        `direct`: the payload may bypass the page cache; `keep`: see update(keep_mapped).
        """
        cid, size = base.chunk_id, base.size
        meta = ChunkMeta()
        meta.CopyFrom(base)
        meta.removing = False
        if kind == REMOVE:
            meta.removing = True
            crcs = _Crcs()
        elif kind == WRITE:
            if not has_data:
                raise make_error(Code.INVALID_ARGUMENT, "WRITE without data")
            end = offset + len(view)
            if offset < 0 or end > chunk_size:
                raise make_error(Code.INVALID_ARGUMENT, f"write [{offset}, {end}) beyond chunk size {chunk_size}")
            new_size = max(size, end)
            if size and offset >= size:  # append (possibly after a zero gap): in place
                crcs = self._append(base, ver, offset, view, new_size, expect, direct)
            elif size == 0 or (offset == 0 and len(view) >= size):  # nothing to keep: fresh file
                crcs = self._write_new(cid, ver, offset, view, new_size, expect, direct, keep)
            else:  # copy-on-write
                if expect is not None:
                    _check_payload(cid, crc32c(view), expect)
                buf = self._read_committed(base, new_size)
                buf[offset:end] = view
                crcs = self._write_new(cid, ver, 0, memoryview(buf), new_size, keep=keep)
        else:
            new_size = max(size, length) if kind == EXTEND else length
            if length < 0 or new_size > chunk_size:
                raise make_error(Code.INVALID_ARGUMENT, f"length {length} beyond chunk size {chunk_size}")
            if size and new_size >= size:
                crcs = self._append(base, ver, new_size, memoryview(b""), new_size)
            elif size == 0:
                crcs = self._write_new(cid, ver, 0, memoryview(b""), new_size)
            else:
                buf = self._read_committed(base, new_size)
                crcs = self._write_new(cid, ver, 0, memoryview(buf), new_size)
        meta.pending_size = crcs.size
        meta.pending_checksum = crcs.total
        meta.pending_block_crcs = crcs.packed()
        return meta

    def _replace(self, chunk_id: bytes, ver: int, kind: int, view: memoryview, chunk_size: int,
                 expect: int | None = None, direct: bool = False, keep: bool = False) -> ChunkMeta:
        """Full-chunk replacement: discard the local versions, pending := `view` (or a removal)."""
        if ver < 1:
            raise make_error(Code.INVALID_ARGUMENT, f"full replace with update version {ver}")
        if len(view) > chunk_size:
            raise make_error(Code.INVALID_ARGUMENT, f"{len(view)} bytes beyond chunk size {chunk_size}")
        meta = ChunkMeta(chunk_id=chunk_id, commit_ver=ver - 1)
        if kind == REMOVE:
            meta.removing = True
            crcs = _Crcs()
        else:
            crcs = self._write_new(chunk_id, ver, 0, view, len(view), expect, direct, keep)
        meta.pending_size = crcs.size
        meta.pending_checksum = crcs.total
        meta.pending_block_crcs = crcs.packed()
        return meta

    def _write_new(self, chunk_id: bytes, ver: int, offset: int, view: memoryview, new_size: int,
                   expect: int | None = None, direct: bool = False, keep: bool = False) -> _Crcs:
        """Create file `.ver` = zeros up to `offset`, then `view`, then zeros up to `new_size`.

        `expect` (the payload's CRC32C) is checked before the file is touched; `keep`: when `view` is
        the whole content, keep the file mapped for the version's first read (_keep_fresh).
        """
        path = self._path(chunk_id, ver)
        crcs = _Crcs()
        if new_size == 0:
            _unlink(path)
            self._touched(path, file=False)
            return crcs
        crcs.feed_zeros(offset)
        own = crcs.feed(view)
        if expect is not None:
            _check_payload(chunk_id, own, expect)
        crcs.feed_zeros(new_size - crcs.size)
        reused = None
        if offset == 0 and len(view) == new_size >= RECYCLE_MIN:   # nothing of a reused file survives
            reused = self._pool.reuse(path)
        fd, old_size = reused if reused is not None else (_create(path), 0)
        try:
            self._write_data(fd, view, offset, direct)
            if (offset + len(view) if len(view) else 0) < new_size or old_size > new_size:
                os.ftruncate(fd, new_size)   # trailing zeros (a hole), or the end of a longer reused file
        finally:
            os.close(fd)
        if keep and offset == 0 and len(view) == new_size:
            self._keep_fresh(chunk_id, ver, path, new_size)
        self._touched(path)
        return crcs

    def _keep_fresh(self, chunk_id: bytes, ver: int, path: str, size: int) -> None:
        """Map a version this engine has just written whole, for its first read after the commit.

        The bytes were checked against their CRCs before they were written, and the pages the write
        left in the page cache are mapped now: read_view serves them without checking them again as long
        as they stay mapped and the file unchanged (see read_view). Best effort: a page already gone
        (written past the cache, or reclaimed) or no mapping to spare leaves the first read to check, and
        so do coarse file timestamps (a stamp taken in the tick of the write would not show a later one:
        _settled)."""
        if not page_map.AVAILABLE or not self._fine_ctime:
            return
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)     # (the writer's descriptor is write-only)
            try:
                st = os.fstat(fd)
                fmap = page_map.FileMap(fd, size, st)
            finally:
                os.close(fd)
            if not (fmap.resident(0, size) and fmap.mapped(0, size)):
                return
        except OSError as e:
            if e.errno == errno.ENOMEM:
                self._maps.shrink()
            return
        fmap.checked, fmap.stamp = _block_mask(0, size), _stamp(st)
        with self._lock:
            self._fresh[chunk_id] = (ver, fmap)
            if len(self._fresh) > FRESH_MAX:              # versions never committed (a failed chain write)
                del self._fresh[next(iter(self._fresh))]

    def _settled(self, stamp: tuple[int, int, int, int]) -> bool:
        """Whether every write after this stamp was taken (now) will change it. With coarse timestamps a
        write in the same clock tick as the file's last change gets the same ctime: only a stamp taken
        a tick after that change is sure to show the next write."""
        return self._fine_ctime or time.time_ns() - stamp[3] >= COARSE_TICK_NS

    def release_mappings(self) -> int:
        """Unmap every chunk of this target kept mapped (read_view, _keep_fresh) once no read is sending
        from it; returns how many there were."""
        with self._lock:
            fresh, self._fresh = len(self._fresh), {}
        return self._maps.clear(self.target_id) + fresh

    def _take_fresh(self, chunk_id: bytes) -> tuple[int, page_map.FileMap] | None:
        with self._lock:
            return self._fresh.pop(chunk_id, None)

    def _append(self, base: ChunkMeta, ver: int, offset: int, view: memoryview, new_size: int,
                expect: int | None = None, direct: bool = False) -> _Crcs:
        """In-place append: `.ver` becomes a hard link to the committed file, extended past `size`."""
        size = base.size
        committed, path = self._path(base.chunk_id, base.commit_ver), self._path(base.chunk_id, ver)
        crcs = _Crcs(base.checksum, base.block_crcs, size)
        crcs.feed_zeros(offset - size)
        own = crcs.feed(view)
        if expect is not None:
            _check_payload(base.chunk_id, own, expect)
        crcs.feed_zeros(new_size - crcs.size)
        _unlink(path)
        try:
            os.link(committed, path)
        except FileNotFoundError as e:
            raise make_error(Code.IO_ERROR, f"committed data file {committed} is missing") from e
        fd = os.open(path, os.O_WRONLY | _O_CLOEXEC)
        try:
            if os.fstat(fd).st_size > size:  # bytes of an abandoned pending version
                os.ftruncate(fd, size)
            self._write_data(fd, view, offset, direct)
            if (offset + len(view) if len(view) else size) < new_size:  # trailing zeros: a hole
                os.ftruncate(fd, new_size)
        finally:
            os.close(fd)
        self._touched(path)
        return crcs

    @staticmethod
    def _write_data(fd: int, view: memoryview, offset: int, direct: bool) -> None:
        """Write a payload into a data file: past the page cache when asked and possible, else buffered
        with writeback started."""
        if direct and direct_capable(view, offset) and _pwrite_direct(fd, view, offset):
            return
        _pwrite_all(fd, view, offset)
        _start_writeback(fd, offset, len(view))

    def _read_committed(self, base: ChunkMeta, new_size: int) -> bytearray:
        """A buffer of `new_size` bytes starting with the (verified) committed content."""
        buf = bytearray(new_size)
        n = min(base.size, new_size)
        path = self._path(base.chunk_id, base.commit_ver)
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError as e:
            raise make_error(Code.IO_ERROR, f"committed data file {path} is missing") from e
        try:
            ok = self._read_fd(fd, base.size, base.block_crcs, 0, n, memoryview(buf)[:n])
        finally:
            os.close(fd)
        if not ok:
            raise make_error(Code.CHECKSUM_MISMATCH, f"committed content of chunk {base.chunk_id.hex()} is corrupt")
        return buf

    # ----------------------------------------------------------------------------------- commit

    def commit(self, chunk_id: bytes, commit_ver: int, chain_ver: int, *, force: bool = False) -> ChunkMeta | None:
        """Make the pending version committed; None if the chunk is (now) removed.

        A stale commit (`commit_ver` <= committed version) returns the metadata unchanged. With `force`,
        whatever is pending is committed at its `update_ver`.
        """
        chunk_id = bytes(chunk_id)
        meta = self.get(chunk_id)
        if meta is None:
            return None
        pending = meta.update_ver != meta.commit_ver or meta.state != COMMIT
        if force:
            if not pending:
                return meta
        else:
            if meta.state not in (COMMIT, CLEAN):
                raise make_error(Code.CHUNK_NOT_CLEAN, f"chunk {chunk_id.hex()} is dirty")
            if commit_ver > meta.update_ver:
                raise make_error(
                    Code.INVALID_ARGUMENT,
                    f"commit {commit_ver} of chunk {chunk_id.hex()} beyond update version {meta.update_ver}",
                )
            if commit_ver <= meta.commit_ver:
                return meta
        old_ver, new_ver = meta.commit_ver, meta.update_ver
        fresh = self._take_fresh(chunk_id)
        if meta.removing:
            self._delete(chunk_id)
            with self._lock:
                self._chunks -= 1
            for v in {old_ver, new_ver} - {0}:
                self._remove_file(chunk_id, v)
            return None
        meta.commit_ver = new_ver
        meta.size = meta.pending_size
        meta.checksum = meta.pending_checksum
        meta.block_crcs = meta.pending_block_crcs
        meta.pending_size = 0
        meta.pending_checksum = 0
        meta.pending_block_crcs = b""
        meta.state = COMMIT
        meta.chain_ver = chain_ver
        meta.target_id = self.target_id
        self._put(meta)
        if fresh is not None and fresh[0] == new_ver:
            self._maps.put(self.target_id, chunk_id, (new_ver, _content(meta, new_ver)), fresh[1],
                           self._maps.generation())
        if old_ver and old_ver != new_ver:
            self._remove_file(chunk_id, old_ver)
        return meta

    def abort(self, chunk_id: bytes) -> ChunkMeta | None:
        """Discard a pending version (left by a failed update): back to the committed one.

        A chunk that was never committed disappears; returns the remaining metadata.
        """
        chunk_id = bytes(chunk_id)
        meta = self.get(chunk_id)
        self._take_fresh(chunk_id)
        if meta is None or (meta.update_ver == meta.commit_ver and meta.state == COMMIT):
            return meta
        pending_ver = meta.update_ver
        if meta.commit_ver == 0:
            self._delete(chunk_id)
            with self._lock:
                self._chunks -= 1
            self._remove_file(chunk_id, pending_ver)
            return None
        meta.update_ver = meta.commit_ver
        meta.pending_size = 0
        meta.pending_checksum = 0
        meta.pending_block_crcs = b""
        meta.removing = False
        meta.state = COMMIT
        self._put(meta)
        if pending_ver != meta.commit_ver:
            self._remove_file(chunk_id, pending_ver)
        return meta

    def _remove_file(self, chunk_id: bytes, ver: int) -> None:
        """Drop a version's file (kept for reuse when it qualifies); callers changed the metadata first."""
        path = self._path(chunk_id, ver)
        if not self._pool.keep(path):
            _unlink(path)
        self._touched(path, file=False)

    # ----------------------------------------------------------------------------------- read

    @overload
    def read(
        self, chunk_id: bytes, offset: int, length: int, out: None = None, *, relaxed: bool = False,
        nowait: bool = False,
    ) -> tuple[bytearray, ChunkMeta]: ...

    @overload
    def read(
        self, chunk_id: bytes, offset: int, length: int, out: memoryview | bytearray, *, relaxed: bool = False,
        nowait: bool = False,
    ) -> tuple[int, ChunkMeta]: ...

    def read(
        self,
        chunk_id: bytes,
        offset: int,
        length: int,
        out: memoryview | bytearray | None = None,
        *,
        relaxed: bool = False,
        nowait: bool = False,
    ) -> tuple[int | bytearray, ChunkMeta]:
        """Read `[offset, offset+length)` of the committed content (pending content if `relaxed`).

        With `out`, the bytes land in `out[:n]` (clipped to the content size and to `len(out)`) and
        `(n, meta)` is returned; without it, `(bytearray of the bytes, meta)`. Every 64 KiB block touched
        is verified against its CRC32C (CHECKSUM_MISMATCH otherwise). A missing chunk (or, for a relaxed
        read, a pending removal) is CHUNK_NOT_FOUND; a pending version on a strict read is CHUNK_NOT_COMMIT.
        With `nowait`, WouldBlock is raised instead of waiting for the disk (see `_preadv_all`).
        """
        chunk_id = bytes(chunk_id)
        if offset < 0 or length < 0:
            raise make_error(Code.INVALID_ARGUMENT, f"bad read range {offset}+{length}")
        dest = None if out is None else memoryview(out).cast("B")
        for _ in range(_READ_ATTEMPTS):
            meta, ver, size, crcs = self._readable_version(chunk_id, relaxed)
            n = max(0, min(offset + length, size) - offset)
            if dest is not None:
                n = min(n, len(dest))
            target = memoryview(bytearray(n)) if dest is None else dest[:n]
            if n:
                path = self._path(chunk_id, ver)
                fd = _open_data(path, nowait)
                if fd is None:
                    continue  # committed over or removed since the lookup
                try:
                    ok = self._read_fd(fd, size, crcs, offset, n, target, nowait)
                except OSError as e:
                    raise make_error(Code.IO_ERROR, f"reading {path}: {e}") from e
                finally:
                    os.close(fd)
                if _content(self.get(chunk_id), ver) != _content(meta, ver):
                    continue  # the version read was committed over, replaced or removed meanwhile
                if not ok:
                    raise make_error(
                        Code.CHECKSUM_MISMATCH, f"chunk {chunk_id.hex()} v{ver} is corrupt near offset {offset}"
                    )
            return (n if dest is not None else target.obj), meta
        raise make_error(Code.CHUNK_NOT_COMMIT, f"chunk {chunk_id.hex()} kept changing during the read")

    def _readable_version(self, chunk_id: bytes, relaxed: bool) -> tuple[ChunkMeta, int, int, bytes]:
        """(meta, version, size, block CRCs) a read serves: the committed version, or with `relaxed`
        a pending one; CHUNK_NOT_FOUND / CHUNK_NOT_COMMIT when there is none."""
        meta = self.get(chunk_id)
        if meta is None:
            raise make_error(Code.CHUNK_NOT_FOUND, f"chunk {chunk_id.hex()} not found")
        if meta.update_ver == meta.commit_ver and meta.state == COMMIT:
            return meta, meta.commit_ver, meta.size, meta.block_crcs
        if not relaxed:
            raise make_error(
                Code.CHUNK_NOT_COMMIT,
                f"chunk {chunk_id.hex()} has pending version {meta.update_ver} (committed {meta.commit_ver})",
            )
        if meta.removing:
            raise make_error(Code.CHUNK_NOT_FOUND, f"chunk {chunk_id.hex()} is being removed")
        return meta, meta.update_ver, meta.pending_size, meta.pending_block_crcs

    def _committed_span(self, chunk_id: bytes, offset: int,
                        length: int) -> tuple[ChunkMeta, int, int, bytes, int, int, int]:
        """(meta, version, size, block CRCs, n, first, stop) of a read of the committed content: n bytes
        at `offset` (clipped to the content), in the whole blocks `[first, stop)`."""
        meta, ver, size, crcs = self._readable_version(chunk_id, relaxed=False)
        n = max(0, min(offset + length, size) - offset)
        first, stop = _block_span(offset, n, size) if n else (offset, offset)
        return meta, ver, size, crcs, n, first, stop

    def read_view(self, chunk_id: bytes, offset: int, length: int) -> tuple[memoryview, ChunkMeta]:
        """The committed bytes `[offset, offset+length)` as a view of the page cache, without copying.

        Raises WouldBlock when a page is not cached, the file's path is not in the dentry cache, or
        mappings are unavailable: read() on an I/O thread then. Errors and CRC checks as read();
        committed versions only, because their files never shrink below the committed size while
        mapped (see threefs.storage.page_map). The mapping of the whole version is kept for the next
        read of the chunk (threefs.storage.map_cache) until its metadata changes.

        The CRCs of a block are checked once per stay in memory, not on every read: a kept mapping
        remembers the blocks it checked (or that this engine wrote whole from checked bytes:
        _keep_fresh) and the file's stamp (inode, size, mtime, ctime) then. A later read of such blocks
        skips the check when all their pages are still mapped (a page reclaimed in between, to be read
        from the disk again, is unmapped first: page_map.FileMap.mapped) and the stamp is unchanged (no
        write since). What stays unseen: a page reclaimed and faulted back from the disk by the send of
        the previous read in the microseconds after its check (the same window in which every read,
        checked or not, sends what the page then holds). With coarse file timestamps (kernels before
        6.13) a stamp counts only once it is a clock tick older than the file's last change (_settled).
        """
        chunk_id = bytes(chunk_id)
        if offset < 0 or length < 0:
            raise make_error(Code.INVALID_ARGUMENT, f"bad read range {offset}+{length}")
        if not page_map.AVAILABLE:
            raise WouldBlock()
        for _ in range(_READ_ATTEMPTS):
            meta, ver, size, crcs, n, first, stop = self._committed_span(chunk_id, offset, length)
            if not n:
                return memoryview(b""), meta
            key = (ver, _content(meta, ver))
            fmap = self._maps.get(self.target_id, chunk_id, key)
            kept = fmap is not None
            blocks = _block_mask(first, stop)
            # The file's stamp, taken before the check (a write after it moves the stamp). A kept mapping
            # pins the file's dentries, so the path lookup needs no disk on the event loop.
            if kept:
                stamp = _stamp_of(self._path(chunk_id, ver))
                if stamp is not None and stamp == fmap.stamp and fmap.checked & blocks == blocks:
                    if fmap.mapped(first, stop - first):
                        _SENT_TRUSTED.inc(n)
                        return fmap.view[offset:offset + n], meta     # checked, still in memory, unchanged
                    fmap.checked = 0    # pages were reclaimed: whatever comes back is checked again
            else:
                generation = self._maps.generation()
                mapped = self._map_version(chunk_id, ver, size, key)
                if mapped is None:
                    continue  # committed over or removed since the lookup
                fmap, stamp = mapped
            try:
                if not fmap.resident(first, stop - first):
                    raise WouldBlock()   # (a mapping of pages not cached is not kept: the disk path reads them)
            except OSError as e:
                raise make_error(Code.IO_ERROR, f"checking the pages of chunk {chunk_id.hex()}: {e}") from e
            if not kept:
                self._maps.put(self.target_id, chunk_id, key, fmap, generation)
            view = _verified(fmap.view[first:stop], first, stop, size, meta, crcs, chunk_id, ver, offset)
            if stamp is not None and self._settled(stamp):
                if stamp != fmap.stamp:
                    fmap.checked, fmap.stamp = 0, stamp
                fmap.checked |= blocks
            _SENT_CHECKED.inc(n)
            return view[offset - first:offset - first + n], meta
        raise make_error(Code.CHUNK_NOT_COMMIT, f"chunk {chunk_id.hex()} kept changing during the read")

    def _map_version(self, chunk_id: bytes, ver: int, size: int,
                     key: tuple) -> tuple[page_map.FileMap, tuple[int, int, int, int]] | None:
        """Map `[0, size)` of a committed version's file: (the mapping, the file's stamp); None if the file
        is gone or the chunk changed meanwhile (the path may then have named another file)."""
        path = self._path(chunk_id, ver)
        fd = _open_data(path, nowait=True)
        if fd is None:
            return None
        try:
            st = os.fstat(fd)
            if st.st_size < size:
                raise make_error(Code.CHECKSUM_MISMATCH, f"chunk {chunk_id.hex()} v{ver} is shorter than {size}")
            fmap = page_map.FileMap(fd, size, st)
        except OSError as e:
            if e.errno == errno.ENOMEM:        # out of mappings (vm.max_map_count): read it without one
                self._maps.shrink()
                raise WouldBlock() from e
            raise make_error(Code.IO_ERROR, f"mapping {path}: {e}") from e
        finally:
            os.close(fd)
        if (ver, _content(self.get(chunk_id), ver)) != key:
            return None
        return fmap, _stamp(st)

    def read_direct(self, chunk_id: bytes, offset: int, length: int) -> tuple[memoryview, ChunkMeta] | None:
        """The committed bytes `[offset, offset+length)` read past the page cache (O_DIRECT), or None
        where the file system refuses direct I/O (then use read()).

        For large reads that missed the page cache: the kernel's buffered path would allocate cache
        pages, fill them and copy them out again, which costs more CPU than the read itself on these
        VMs (~0.3-0.9 s per GiB against ~0.1 s direct). The whole blocks the range touches land in one
        aligned buffer and the returned view is a slice of it: no copy. Errors and CRC checks as read().
        """
        if not (_O_DIRECT and self._direct_reads):
            return None
        chunk_id = bytes(chunk_id)
        if offset < 0 or length < 0:
            raise make_error(Code.INVALID_ARGUMENT, f"bad read range {offset}+{length}")
        for _ in range(_READ_ATTEMPTS):
            meta, ver, size, crcs, n, first, stop = self._committed_span(chunk_id, offset, length)
            if not n:
                return memoryview(b""), meta
            span = -(-(stop - first) // DIRECT_ALIGN) * DIRECT_ALIGN
            if span < ALIGNED_FROM:
                return None         # the buffer would not be page-aligned: a small read is buffered
            buf = uninitialized_view(span)
            path = self._path(chunk_id, ver)
            try:
                fd = os.open(path, os.O_RDONLY | _O_CLOEXEC | _O_DIRECT)
                try:
                    got = _pread_direct(fd, buf, first)
                finally:
                    os.close(fd)
            except FileNotFoundError:
                continue  # committed over or removed since the lookup
            except OSError as e:
                if e.errno == errno.EINVAL:
                    self._direct_reads = False      # this file system refuses direct I/O (at open or read)
                    return None
                raise make_error(Code.IO_ERROR, f"reading {path}: {e}") from e
            if _content(self.get(chunk_id), ver) != _content(meta, ver):
                continue  # the version read was committed over, replaced or removed meanwhile
            if got < stop - first:
                raise make_error(Code.CHECKSUM_MISMATCH, f"chunk {chunk_id.hex()} v{ver} is shorter than {size}")
            view = _verified(buf[:stop - first], first, stop, size, meta, crcs, chunk_id, ver, offset)
            return view[offset - first:offset - first + n], meta
        raise make_error(Code.CHUNK_NOT_COMMIT, f"chunk {chunk_id.hex()} kept changing during the read")

    def _read_fd(self, fd: int, size: int, crcs: bytes, offset: int, n: int, out: memoryview,
                 nowait: bool = False) -> bool:
        """Read `[offset, offset+n)` into `out` plus the rest of the blocks it touches; verify CRCs."""
        end = offset + n
        first, stop = _block_span(offset, n, size)
        head = memoryview(bytearray(offset - first))
        tail = memoryview(bytearray(stop - end))
        if not _preadv_all(fd, [head, out, tail], first, nowait):
            return False
        return _blocks_ok([head, out, tail], first, stop, crcs)

    # ----------------------------------------------------------------------------------- misc

    def sync(self) -> None:
        """Make every update so far durable: fsync data files and directories, then sync the WAL."""
        with self._lock:
            files, dirs = self._unsynced_files, self._unsynced_dirs
            self._unsynced_files, self._unsynced_dirs = set(), set()
        try:
            if len(files) + len(dirs) < _SYNCFS_MIN_FILES or not _syncfs(str(self.target_dir)):
                for path in files:
                    _fsync_path(path)
                for path in dirs:
                    _fsync_path(path)
            self._wal.sync()            # not flush_wal(True): that holds the GIL through the fsync
        except Exception as e:
            with self._lock:
                self._unsynced_files |= files
                self._unsynced_dirs |= dirs
            if isinstance(e, FSError):
                raise
            raise make_error(Code.IO_ERROR, f"sync of target {self.target_dir} failed: {e}") from e

    def space(self) -> tuple[int, int, int, int]:
        """(capacity, used, free) bytes of the file system holding the target, and the chunk count."""
        st = os.statvfs(self.target_dir)
        capacity = st.f_blocks * st.f_frsize
        _, pooled = self._pool.size      # files kept for reuse count as free: a write can take them
        free = max(0, st.f_bavail * st.f_frsize + pooled - self.reserved)     # the reserve takes no chunk data
        return capacity, capacity - st.f_bfree * st.f_frsize - pooled, free, self._chunks

    def remove_all(self) -> None:
        """Drop every chunk (the target is about to be refilled by a full resync)."""
        self._maps.clear(self.target_id)
        with self._lock:
            self._fresh.clear()
        for key in list(self._db.keys()):
            self._db.delete(key)
        self._pool.drain()
        subdirs = [str(self._data / f"{i:02x}") for i in range(256)]
        for sub in subdirs:
            for entry in os.scandir(sub):
                _unlink(entry.path)
        with self._lock:
            self._unsynced_dirs.update(subdirs)
            self._chunks = 0
