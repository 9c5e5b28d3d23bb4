"""Delete the rows of one key prefix that a predicate picks, a page per transaction (background expiry)."""
from __future__ import annotations

from collections.abc import Callable

from threefs.kv import keys
from threefs.kv.engine import KVEngine, Transaction, run_txn

PAGE = 1024


async def sweep_prefix(kv: KVEngine, prefix: bytes, doomed: Callable[[bytes], bool], *, page: int = PAGE) -> int:
    """Clear every row under `prefix` whose value `doomed(value)` is true; returns how many were cleared.
    Rows are read as a snapshot: a row rewritten meanwhile is judged again by the next sweep."""
    begin, end = prefix, keys.prefix_end(prefix)
    deleted = 0
    while True:
        async def one_page(txn: Transaction, b=begin):
            rows = await txn.get_range(b, end, limit=page, snapshot=True)
            n = 0
            for k, v in rows:
                if doomed(v):
                    txn.clear(k)
                    n += 1
            return rows, n

        rows, n = await run_txn(kv, one_page)
        deleted += n
        if len(rows) < page:
            return deleted
        begin = rows[-1][0] + b"\0"
