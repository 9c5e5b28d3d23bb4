"""Idempotent retries (IDEM records, request ids stamped in entries) and inode ids unique across
meta servers sharing one KV engine."""
from __future__ import annotations

import asyncio
import errno
import os

import pytest

from meta_util import ENGINES, expect_errno
from threefs.kv.engine import open_engine
from threefs.meta.idem import IdemExpirer
from threefs.meta.schema import InodeAllocator
from threefs.proto import meta_pb2 as mp


def call(fs, method: str, req, rsp_type):
    return fs.run(fs.aio.meta.call(method, req, rsp_type))


def test_retried_remove_returns_the_first_result(fs, wd):
    fs.write_file(f"{wd}/f", b"x")
    req = mp.RemoveReq(base=fs.aio.meta.base(), path=mp.PathAt(path=f"{wd}/f"))
    call(fs, "Remove", req, mp.RemoveRsp)
    call(fs, "Remove", req, mp.RemoveRsp)                       # the retry after a lost reply succeeds
    fresh = mp.RemoveReq(base=fs.aio.meta.base(), path=req.path)
    expect_errno(errno.ENOENT, call, fs, "Remove", fresh, mp.RemoveRsp)
    fs.mkdir(f"{wd}/d")
    fs.write_file(f"{wd}/d/x", b"")
    tree = mp.RemoveReq(base=fs.aio.meta.base(), path=mp.PathAt(path=f"{wd}/d"), recursive=True, at_flags=0x200)
    call(fs, "Remove", tree, mp.RemoveRsp)
    call(fs, "Remove", tree, mp.RemoveRsp)


def test_retried_creates_return_the_first_result(fs, wd):
    base = fs.aio.meta.base()
    req = mp.CreateReq(base=base, path=mp.PathAt(path=f"{wd}/f"), flags=os.O_CREAT | os.O_EXCL, perm=0o644)
    first = call(fs, "Create", req, mp.CreateRsp)
    again = call(fs, "Create", req, mp.CreateRsp)               # O_EXCL, yet no EEXIST for our own retry
    assert again.created and again.inode.id == first.inode.id
    other = mp.CreateReq(base=fs.aio.meta.base(), path=req.path, flags=req.flags, perm=0o644)
    expect_errno(errno.EEXIST, call, fs, "Create", other, mp.CreateRsp)
    mk = mp.MkdirsReq(base=fs.aio.meta.base(), path=mp.PathAt(path=f"{wd}/d"), perm=0o755)
    assert call(fs, "Mkdirs", mk, mp.MkdirsRsp).inode.id == call(fs, "Mkdirs", mk, mp.MkdirsRsp).inode.id
    sl = mp.SymlinkReq(base=fs.aio.meta.base(), path=mp.PathAt(path=f"{wd}/s"), target="f")
    assert call(fs, "Symlink", sl, mp.SymlinkRsp).inode.id == call(fs, "Symlink", sl, mp.SymlinkRsp).inode.id
    hl = mp.HardLinkReq(base=fs.aio.meta.base(), old_path=mp.PathAt(path=f"{wd}/f"), new_path=mp.PathAt(path=f"{wd}/h"))
    call(fs, "HardLink", hl, mp.HardLinkRsp)
    assert call(fs, "HardLink", hl, mp.HardLinkRsp).inode.nlink == 2      # not 3
    assert fs.listdir(wd) == ["d", "f", "h", "s"]


def test_a_request_id_reused_for_another_operation_is_refused(fs, wd):
    fs.write_file(f"{wd}/a", b"")
    base = fs.aio.meta.base()
    call(fs, "Remove", mp.RemoveReq(base=base, path=mp.PathAt(path=f"{wd}/a")), mp.RemoveRsp)
    fs.write_file(f"{wd}/b", b"")
    expect_errno(errno.EINVAL, call, fs, "Rename",
                 mp.RenameReq(base=base, src=mp.PathAt(path=f"{wd}/b"), dst=mp.PathAt(path=f"{wd}/c")), mp.RenameRsp)


def test_idem_records_expire(fs, wd, meta_cluster):
    fs.write_file(f"{wd}/f", b"")
    req = mp.RemoveReq(base=fs.aio.meta.base(), path=mp.PathAt(path=f"{wd}/f"))
    call(fs, "Remove", req, mp.RemoveRsp)
    assert meta_cluster.call(IdemExpirer(meta_cluster.kv, ttl=-60.0, interval=1).run_once()) >= 1   # all expired
    expect_errno(errno.ENOENT, call, fs, "Remove", req, mp.RemoveRsp)     # past the TTL a retry is new


@pytest.mark.parametrize("engine", sorted(ENGINES))
async def test_inode_allocators_sharing_one_engine_never_collide(engine, tmp_path):
    kv = open_engine(ENGINES[engine](tmp_path))
    try:
        servers = [InodeAllocator(kv) for _ in range(3)]        # three meta servers on one engine
        ids = await asyncio.gather(*(a.allocate() for a in servers for _ in range(5000)))
        assert len(set(ids)) == len(ids) == 15000
        assert min(ids) >= 4096                                 # block 0 holds root and GC root
        restarted = InodeAllocator(kv)                          # a restart continues after the counter
        assert await restarted.allocate() > max(ids)
    finally:
        await kv.close()
