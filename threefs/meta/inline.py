"""Small files kept inline in meta, and their move to storage before anyone else writes them.

A file written whole by the handle that created it, and no longer than `MetaConfig.inline_max`,
keeps its content in meta (INLN key, `inode.inline`) instead of a replicated chunk: closing it costs
one meta commit instead of a chain write, and reading it one open (Lustre's Data-on-MDT, for files
smaller than a chunk; 3FS itself always writes chunks).

Invariants (what makes the move to storage safe without a lock):
- Only the creating handle puts content inline, and only while `inode.fresh` (no write open since
  create). Every other write open, and every truncate by path, first migrates the file.
- While `inode.inline` is set, a chunk of the file on storage, if any, holds exactly the inline
  content (a migration that wrote it and did not get to clear the flag, or the creator moving its
  content out before writing more), and only after `fresh` was cleared: an inline file still fresh
  has no chunk, so GC skips storage for it.
- Migration clears `fresh` first, so the inline content is frozen while it is copied; it writes
  chunk 0 with a create-only write (a chunk already there holds the same content, or newer data
  written after an earlier migration finished), fsyncs it, and only then clears the flag.
"""
from __future__ import annotations

from threefs.common import placement
from threefs.common.errors import Code, make_error
from threefs.kv.engine import Transaction, run_txn
from threefs.meta.length import chain_of_chunk
from threefs.meta.ops.context import MetaContext
from threefs.meta.schema import drop_inline, load_inline, load_inode, store_inode
from threefs.proto import meta_pb2 as mp

MAX_MIGRATIONS = 3       # an operation retried after this many migrations of its inode gives up


class InlineMigrationNeeded(Exception):
    """Raised inside a transaction that found an inline file it must not change in place."""

    def __init__(self, inode_id: int) -> None:
        super().__init__(f"inode {inode_id:#x} is inline")
        self.inode_id = inode_id


async def migrate(ctx: MetaContext, inode_id: int) -> None:
    """Move an inline file's content to its chunk 0 on storage and clear `inode.inline` (and `fresh`)."""

    async def freeze(txn: Transaction) -> tuple[mp.Inode, bytes] | None:
        inode = await load_inode(txn, inode_id)
        if inode is None:
            return None
        if inode.fresh:
            inode.fresh = False                 # the creator can no longer put or replace content inline
            store_inode(txn, inode)
        return (inode, await load_inline(txn, inode_id)) if inode.inline else None

    got = await run_txn(ctx.kv, freeze)
    if got is None:
        return
    inode, data = got
    if data:
        chain = await chain_of_chunk(ctx.mgmtd, inode, 0)
        await ctx.storage.write_chunk_if_absent(chain, placement.chunk_id(inode.id, 0), data, inode.layout.chunk_size)
        await ctx.storage.sync_chain(chain)     # the content was durable in meta: keep it durable

    async def clear(txn: Transaction) -> None:
        cur = await load_inode(txn, inode_id)
        if cur is not None and cur.inline:
            drop_inline(txn, cur)
            store_inode(txn, cur)

    await run_txn(ctx.kv, clear)


async def with_migrations(ctx: MetaContext, run):
    """Run `run()` (a whole transaction), migrating the inline file it reports, then running it again."""
    for attempt in range(MAX_MIGRATIONS + 1):
        try:
            return await run()
        except InlineMigrationNeeded as e:
            if attempt == MAX_MIGRATIONS:
                raise make_error(Code.BUSY, f"inode {e.inode_id:#x} stayed inline through {attempt} migrations") from None
            await migrate(ctx, e.inode_id)
    raise AssertionError("unreachable")
