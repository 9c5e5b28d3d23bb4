"""fsync of a rocksdb write-ahead log from Python, so a durable commit does not hold the GIL.

rocksdict's synced `write` (and `flush_wal(True)`) keep the GIL through the fsync: a meta server's
event loop stood still for every durable batch (up to hundreds of ms on a slow disk). RocksKV
writes its batches unsynced instead (the WAL record reaches the OS page cache before `write`
returns, as rocksdb flushes the WAL buffer after each write unless `manual_wal_flush` is set) and
then syncs the WAL files here with `os.fdatasync`, which releases the GIL. It works on the inode,
so a descriptor of our own covers what rocksdb wrote through its own. A WAL file that appeared
since the last call (rocksdb switched logs) is synced too, and the directory with it (its entry).
"""
from __future__ import annotations

import os


class WalSyncer:
    """Makes everything rocksdb wrote to the WAL files of one database directory durable."""

    def __init__(self, db_dir: str) -> None:
        self.dir = db_dir
        self._fds: dict[str, int] = {}

    def sync(self) -> None:
        """fsync every live WAL file (usually one), and the directory when a new one appeared."""
        names = [n for n in os.listdir(self.dir) if n.endswith(".log") and n[:-4].isdigit()]
        new = False
        for n in names:
            if n not in self._fds:
                try:
                    self._fds[n] = os.open(os.path.join(self.dir, n), os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue            # already deleted (its content is in a synced SST file)
                new = True
        for n in [n for n in self._fds if n not in names]:
            os.close(self._fds.pop(n))  # deleted by rocksdb after a memtable flush
        for fd in self._fds.values():
            os.fdatasync(fd)            # as rocksdb syncs its WAL: data and the size, not the times
        if new:
            fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
