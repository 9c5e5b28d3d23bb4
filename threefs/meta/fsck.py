"""fsck: check the namespace invariants on one consistent snapshot of the KV engine.

Every entry names a live inode of the entry's type under a directory; every inode's nlink equals
its entries (an unlinked inode, nlink 0, is referenced by exactly one GC-queue entry); directory
inodes agree with their entry (parent, name, ACL copy); the directory graph has no cycles; every
write session belongs to an existing inode. The whole namespace is read in one read-only
transaction, so the report describes a single instant even while clients keep working.
"""
from __future__ import annotations

from collections import Counter

from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction
from threefs.meta.schema import DIRECTORY, FILE, GC_ROOT_ID, ROOT_ID, SYMLINK, acl_of
from threefs.proto import meta_pb2 as mp

MAX_ERRORS = 1000


async def _scan(txn: Transaction, prefix: bytes) -> list[tuple[bytes, bytes]]:
    return await txn.get_range(prefix, keys.prefix_end(prefix), snapshot=True)


async def fsck(kv: KVEngine) -> mp.FsckRsp:
    """Scan inodes, entries and sessions; return counts and every violated invariant."""
    txn = kv.transaction()
    try:
        raw_inodes = await _scan(txn, keys.INODE)
        raw_dirents = await _scan(txn, keys.DIRENT)
        raw_sessions = await _scan(txn, keys.INODE_SESSION)
        raw_inline = await _scan(txn, keys.INLINE_DATA)
        raw_dir_times = await _scan(txn, keys.DIR_MTIME)
    finally:
        txn.cancel()
    rsp = mp.FsckRsp()
    errors: list[str] = []

    def error(msg: str) -> None:
        if len(errors) < MAX_ERRORS:
            errors.append(msg)

    inodes = {}
    for k, v in raw_inodes:
        inode = mp.Inode.FromString(v)
        if int.from_bytes(k[len(keys.INODE):], "little") != inode.id:
            error(f"inode key {k[4:].hex()} holds inode {inode.id:#x}")
        inodes[inode.id] = inode
    for special in (ROOT_ID, GC_ROOT_ID):
        if special not in inodes:
            error(f"special directory {special:#x} is missing")
    links: Counter[int] = Counter()
    gc_refs: Counter[int] = Counter()
    for k, v in raw_dirents:
        parent = int.from_bytes(k[4:12], "little")
        name = k[12:].decode(errors="replace")
        e = mp.DirEntry.FromString(v)
        inode = inodes.get(e.id)
        where = f"entry {name!r} in {parent:#x}"
        if parent == GC_ROOT_ID:
            rsp.gc_pending += 1
            gc_refs[e.id] += 1
            if inode is None:
                error(f"GC {where} names missing inode {e.id:#x}")
            elif inode.nlink != 0:
                error(f"GC {where} names inode {e.id:#x} that still has nlink {inode.nlink}")
            continue
        rsp.dirents += 1
        p = inodes.get(parent)
        if p is None or p.type != DIRECTORY:
            error(f"{where}: parent is {'missing' if p is None else 'not a directory'}")
        if inode is None:
            error(f"{where} points at missing inode {e.id:#x}")
            continue
        links[e.id] += 1
        if inode.type != e.type:
            error(f"{where}: type {e.type} but inode {e.id:#x} has type {inode.type}")
        if inode.type == DIRECTORY:
            if (inode.parent, inode.name) != (parent, name):
                error(f"directory {e.id:#x} is at {name!r} in {parent:#x} "
                      f"but records {inode.name!r} in {inode.parent:#x}")
            if e.dir_acl != acl_of(inode):
                error(f"{where}: its ACL copy differs from directory {e.id:#x}")
    for inode in inodes.values():
        if inode.id in (ROOT_ID, GC_ROOT_ID):
            continue
        rsp.inodes += 1
        rsp.files += inode.type == FILE
        rsp.directories += inode.type == DIRECTORY
        rsp.symlinks += inode.type == SYMLINK
        n = links[inode.id]
        if inode.nlink != n:
            error(f"inode {inode.id:#x} has nlink {inode.nlink} but {n} entries")
        if inode.nlink == 0 and gc_refs[inode.id] != 1:
            error(f"unlinked inode {inode.id:#x} is referenced by {gc_refs[inode.id]} GC entries (want 1)")
        if inode.nlink > 0 and gc_refs[inode.id]:
            error(f"linked inode {inode.id:#x} is also queued for GC")
    _check_cycles(inodes, error)
    for _, v in raw_sessions:
        s = mp.FileSession.FromString(v)
        rsp.sessions += 1
        if s.inode not in inodes:
            error(f"write session {s.session_id.hex()} belongs to missing inode {s.inode:#x}")
    _check_inline(inodes, raw_inline, error)
    for k, _ in raw_dir_times:
        dir_id = int.from_bytes(k[len(keys.DIR_MTIME):], "little")
        if dir_id not in inodes or inodes[dir_id].type != DIRECTORY:
            error(f"entry-change time of {dir_id:#x} belongs to {'no inode' if dir_id not in inodes else 'a non-directory'}")
    rsp.errors.extend(errors)
    return rsp


def _check_inline(inodes: dict[int, mp.Inode], raw_inline: list[tuple[bytes, bytes]], error) -> None:
    """Inline content (meta.inline) exists exactly for inline files, and is as long as the file."""
    stored = {}
    for k, v in raw_inline:
        inode_id = int.from_bytes(k[len(keys.INLINE_DATA):], "little")
        stored[inode_id] = len(v)
        inode = inodes.get(inode_id)
        if inode is None or not inode.inline:
            error(f"inline content of {inode_id:#x} belongs to {'no inode' if inode is None else 'a non-inline file'}")
    for inode in inodes.values():
        if inode.inline and stored.get(inode.id, 0) != inode.length:
            error(f"inline file {inode.id:#x} has length {inode.length} but {stored.get(inode.id, 0)} bytes of content")


def _check_cycles(inodes: dict[int, mp.Inode], error) -> None:
    """Every linked directory must reach the root (or a directory queued for GC) by parent links."""
    settled: set[int] = {ROOT_ID}
    for d in inodes.values():
        if d.type != DIRECTORY or d.id in settled or d.id == GC_ROOT_ID:
            continue
        path: list[int] = []
        on_path: set[int] = set()
        cur = d.id
        while cur not in settled:
            node = inodes.get(cur)
            if node is None:
                error(f"directory {path[-1] if path else d.id:#x} has missing parent {cur:#x}")
                break
            if node.nlink == 0:
                break                       # inside a tree queued for GC
            if cur in on_path:
                error(f"directory cycle through {cur:#x}")
                break
            path.append(cur)
            on_path.add(cur)
            cur = node.parent
        settled.update(path)
