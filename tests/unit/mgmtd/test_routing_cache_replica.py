"""Routing.cache_replica: the one serving replica per chunk that keeps it in memory and serves its reads."""
from __future__ import annotations

from collections import Counter

from threefs.common import placement
from threefs.mgmtd.routing import Routing
from threefs.proto import common_pb2 as cpb


def routing(states: dict[int, int]) -> Routing:
    info = cpb.RoutingInfo(version=1)
    chain = info.chains.add(chain_id=1, chain_version=1)
    for target_id, state in states.items():
        chain.targets.add(target_id=target_id, public_state=state)
    return Routing(info)


def test_one_serving_replica_per_chunk_spread_evenly():
    r = routing({11: cpb.SERVING, 12: cpb.SERVING, 13: cpb.SERVING})
    ids = [placement.chunk_id(inode, index) for inode in range(1, 31) for index in range(100)]
    owners = Counter(r.cache_replica(1, c) for c in ids)
    assert set(owners) == {11, 12, 13}
    assert all(0.28 < n / len(ids) < 0.39 for n in owners.values()), owners
    assert [r.cache_replica(1, c) for c in ids[:50]] == [r.cache_replica(1, c) for c in ids[:50]]  # pure


def test_only_serving_replicas_own_chunks():
    r = routing({11: cpb.SERVING, 12: cpb.SYNCING, 13: cpb.SERVING})
    ids = [placement.chunk_id(7, index) for index in range(200)]
    assert {r.cache_replica(1, c) for c in ids} == {11, 13}
    assert routing({11: cpb.OFFLINE, 12: cpb.WAITING}).cache_replica(1, ids[0]) is None
