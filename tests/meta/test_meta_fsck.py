"""fsck finds each kind of broken invariant (records injected into a scratch KV engine)."""
from __future__ import annotations

import pytest

from threefs.kv import keys
from threefs.kv.engine import run_txn
from threefs.kv.memory import MemoryKV
from threefs.meta.fsck import fsck
from threefs.meta.schema import DIRECTORY, FILE, GC_ROOT_ID, ROOT_ID, dirent_for, store_dirent, store_inode
from threefs.meta.service import ensure_root
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp


async def scratch(build) -> mp.FsckRsp:
    kv = MemoryKV()
    await ensure_root(kv, cpb.Layout(table_id=1, chunk_size=1 << 20, stripe_size=1))

    async def fn(txn):
        build(txn)

    await run_txn(kv, fn)
    return await fsck(kv)


def file(i: int, nlink: int = 1) -> mp.Inode:
    return mp.Inode(id=i, type=FILE, nlink=nlink, perm=0o644)


def directory(i: int, parent: int, name: str) -> mp.Inode:
    return mp.Inode(id=i, type=DIRECTORY, nlink=1, perm=0o755, parent=parent, name=name)


def link(txn, parent: int, name: str, inode: mp.Inode) -> None:
    store_dirent(txn, dirent_for(parent, name, inode))


def healthy(txn) -> None:
    d = directory(5000, ROOT_ID, "d")
    store_inode(txn, d)
    link(txn, ROOT_ID, "d", d)
    f = file(5001, nlink=2)
    store_inode(txn, f)
    link(txn, 5000, "a", f)
    link(txn, ROOT_ID, "b", f)
    gone = file(5002, nlink=0)
    store_inode(txn, gone)
    store_dirent(txn, mp.DirEntry(parent=GC_ROOT_ID, name="S-00000000000000000001-0000000000001392", id=5002))


async def test_a_healthy_namespace_is_clean():
    rsp = await scratch(healthy)
    assert list(rsp.errors) == []
    assert (rsp.inodes, rsp.dirents, rsp.files, rsp.directories, rsp.gc_pending) == (3, 3, 2, 1, 1)


@pytest.mark.parametrize("damage, expect", [
    (lambda txn: link(txn, ROOT_ID, "dangling", file(9000)), "missing inode"),
    (lambda txn: store_inode(txn, file(5001, nlink=3)), "nlink 3 but 2 entries"),
    (lambda txn: store_inode(txn, file(9001)), "nlink 1 but 0 entries"),
    (lambda txn: txn.clear(keys.dirent_key(GC_ROOT_ID, "S-00000000000000000001-0000000000001392")),
     "referenced by 0 GC entries"),
    (lambda txn: (store_inode(txn, directory(5000, 5000, "d"))), "records"),
    (lambda txn: txn.set(keys.session_key(9002, b"s" * 16),
                         mp.FileSession(inode=9002, session_id=b"s" * 16).SerializeToString()),
     "missing inode 0x232a"),
    (lambda txn: txn.set(keys.inline_data_key(5001), b"stray"), "belongs to a non-inline file"),
    (lambda txn: txn.set(keys.inline_data_key(9003), b"stray"), "belongs to no inode"),
    (lambda txn: store_inode(txn, mp.Inode(id=5001, type=FILE, nlink=2, perm=0o644, inline=True, length=4)),
     "has length 4 but 0 bytes"),
])
async def test_each_broken_invariant_is_reported(damage, expect):
    rsp = await scratch(lambda txn: (healthy(txn), damage(txn)))
    assert any(expect in e for e in rsp.errors), list(rsp.errors)


async def test_inline_files_are_clean():
    def inline_file(txn):
        healthy(txn)
        store_inode(txn, mp.Inode(id=5001, type=FILE, nlink=2, perm=0o644, inline=True, length=5))
        txn.set(keys.inline_data_key(5001), b"hello")

    assert list((await scratch(inline_file)).errors) == []


async def test_directory_cycles_are_reported():
    def cyclic(txn):
        a, b = directory(6000, 6001, "a"), directory(6001, 6000, "b")
        for d in (a, b):
            store_inode(txn, d)
        link(txn, 6001, "a", a)
        link(txn, 6000, "b", b)

    rsp = await scratch(cyclic)
    assert any("cycle" in e for e in rsp.errors), list(rsp.errors)
