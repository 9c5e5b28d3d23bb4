"""The §4.8 resync rule table (`resync_action`): one case per row, first matching row wins."""
from __future__ import annotations

import pytest

from threefs.proto import storage_pb2 as spb
from threefs.storage.resync import Action, resync_action

CUR = 9      # the chain's current version


def meta(commit: int, update: int | None = None, chain: int = 5, checksum: int = 0xAB, size: int = 100,
         removing: bool = False) -> spb.ChunkMeta:
    update = commit if update is None else update
    state = spb.COMMIT if update == commit else spb.CLEAN
    return spb.ChunkMeta(chunk_id=b"c", commit_ver=commit, update_ver=update, chain_ver=chain, state=state,
                         checksum=checksum, size=size, removing=removing)


ROWS = [
    ("only remote", None, meta(3), Action.REMOVE),
    ("only local", meta(3), None, Action.WRITE),
    ("only local, uncommitted", meta(3, 4), None, Action.WRITE),
    ("local being removed", meta(3, 4, removing=True), meta(3), Action.SKIP),
    ("local newer chain version", meta(3, chain=7), meta(3, chain=5), Action.WRITE),
    ("remote uncommitted", meta(3), meta(3, 4), Action.WRITE),
    ("remote newer chain, local committed", meta(3, chain=5), meta(3, chain=7), Action.FATAL),
    ("remote newer chain, local in flight", meta(3, 4, chain=5), meta(3, chain=7), Action.SKIP),
    ("versions differ, committed, old chain", meta(4, chain=5), meta(3, chain=5), Action.FATAL),
    ("versions differ, committed, current chain", meta(4, chain=CUR), meta(3, chain=CUR), Action.SKIP),
    ("versions differ, local in flight", meta(3, 4, chain=5), meta(2, chain=5), Action.SKIP),
    ("checksums differ, old chain", meta(3, checksum=1), meta(3, checksum=2), Action.FATAL),
    ("sizes differ, old chain", meta(3, size=10), meta(3, size=20), Action.FATAL),
    ("checksums differ, current chain", meta(3, chain=CUR, checksum=1), meta(3, chain=CUR, checksum=2), Action.SKIP),
    ("identical", meta(3), meta(3), Action.SKIP),
    ("neither", None, None, Action.SKIP),
]


@pytest.mark.parametrize("row,local,remote,expected", ROWS, ids=[r[0] for r in ROWS])
def test_resync_rule(row, local, remote, expected):
    assert resync_action(local, remote, CUR) == expected


def test_heavy_sync_rewrites_identical_chunks():
    assert resync_action(meta(3), meta(3), CUR, heavy=True) == Action.WRITE
    assert resync_action(None, meta(3), CUR, heavy=True) == Action.REMOVE
