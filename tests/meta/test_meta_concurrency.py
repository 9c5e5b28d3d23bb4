"""Many clients race creates, writes, renames between two directories, links, unlinks, rmdirs and
recursive removes on a shared set of names, through two meta servers on one KV engine; afterwards
fsck finds a consistent namespace and, once GC ran, no chunk is left without its inode."""
from __future__ import annotations

import asyncio

from meta_race import race
from meta_util import wait_until

DURATION = 4.0


def test_racing_clients_leave_a_consistent_namespace(meta_cluster, fs, wd):
    second = meta_cluster.add_meta(101)
    try:
        counts = asyncio.run(race(meta_cluster.mgmtd_address, wd, DURATION))
        succeeded = sum(v for k, v in counts.items() if k != "failed")
        assert succeeded > 200 and counts.get("rename", 0) > 20, counts
        report = meta_cluster.fsck()
        assert list(report.errors) == [], report.errors
        wait_until(lambda: meta_cluster.fsck().gc_pending == 0, 60, "GC to empty its queue")
        report = meta_cluster.fsck()
        assert list(report.errors) == [] and report.sessions == 0, report
        orphans = meta_cluster.orphans()
        assert orphans.scanned_targets == 3 and list(orphans.chunks) == []
    finally:
        meta_cluster.call(second.stop())
