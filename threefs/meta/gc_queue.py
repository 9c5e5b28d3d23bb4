"""The GC queue: entries under the GC root naming inodes whose last link is gone (3FS §2.9).

Entry names are `<kind>-<20-digit due time in µs>-<inode hex>`: kind `d` for a directory tree, `S`
/ `f` / `L` for small (<32 chunks) / medium / large (>=128 chunks) files. Names sort by kind and
then due time, so the collector reads only the due prefix of each kind. The inode row stays (with
nlink 0, still stat-able by id) until the collector has removed its chunks or children.
"""
from __future__ import annotations

from threefs.kv.engine import Transaction
from threefs.meta.schema import (DIRECTORY, FILE, GC_ROOT_ID, delete_inode, now_ns, store_dirent, store_inode)
from threefs.proto import meta_pb2 as mp

KINDS = ("L", "S", "d", "f")
SMALL_CHUNKS = 32
LARGE_CHUNKS = 128


def kind_of(inode: mp.Inode) -> str:
    if inode.type == DIRECTORY:
        return "d"
    chunks = -(-inode.length // inode.layout.chunk_size) if inode.layout.chunk_size else 0
    return "S" if chunks < SMALL_CHUNKS else ("L" if chunks >= LARGE_CHUNKS else "f")


def entry_name(kind: str, due_us: int, inode_id: int) -> str:
    return f"{kind}-{due_us:020d}-{inode_id:016x}"


def parse_entry_name(name: str) -> tuple[str, int, int]:
    """(kind, due time in µs, inode id) of a GC entry name."""
    kind, due, inode = name.split("-")
    return kind, int(due), int(inode, 16)


def queue_for_gc(txn: Transaction, inode: mp.Inode, info: mp.GcInfo | None = None, *, due_us: int | None = None) -> str:
    """Park an unlinked inode under the GC root; returns the entry's name."""
    name = entry_name(kind_of(inode), now_ns() // 1000 if due_us is None else due_us, inode.id)
    entry = mp.DirEntry(parent=GC_ROOT_ID, name=name, id=inode.id, type=inode.type)
    if info is not None:
        entry.gc_info.CopyFrom(info)
    store_dirent(txn, entry)
    return name


def drop_link(txn: Transaction, inode: mp.Inode, info: mp.GcInfo | None = None) -> None:
    """Account for one removed directory entry of `inode`: nlink-1; at zero files and directories
    go to the GC queue (a directory's children are collected there), symlinks are deleted."""
    inode.nlink = max(0, inode.nlink - 1)
    inode.ctime_ns = now_ns()
    if inode.nlink > 0:
        store_inode(txn, inode)
    elif inode.type in (FILE, DIRECTORY):
        store_inode(txn, inode)
        queue_for_gc(txn, inode, info)
    else:
        delete_inode(txn, inode.id)
