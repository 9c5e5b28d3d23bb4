"""The public-state machine of a chain: 3FS's `generateNewChain` (reference §3.5-3.6) as a pure function.

Given a chain (targets in order, each with its public state) and the local states the storage nodes
reported, compute the next chain: targets are processed grouped by their old public state in the order
SERVING, LASTSRV, SYNCING, WAITING, OFFLINE (relative order kept inside a group), the new order is
SERVING..., LASTSRV..., SYNCING..., WAITING..., OFFLINE..., and the chain version is bumped by one when
anything (a state or the order) changed. At most one target of a chain is SYNCING at a time; when no
target serves any more, the first failed SERVING target becomes LASTSRV (it holds the newest data).
"""
from __future__ import annotations

from collections.abc import Mapping

from threefs.common.errors import Code, make_error
from threefs.proto import common_pb2 as cpb

SERVING, LASTSRV, SYNCING, WAITING, OFFLINE = cpb.SERVING, cpb.LASTSRV, cpb.SYNCING, cpb.WAITING, cpb.OFFLINE
UPTODATE, ONLINE, LOCAL_OFFLINE = cpb.UPTODATE, cpb.ONLINE, cpb.LOCAL_OFFLINE

GROUP_ORDER = (SERVING, LASTSRV, SYNCING, WAITING, OFFLINE)


def _alive(local: int) -> bool:
    return local in (UPTODATE, ONLINE)


def next_states(targets: list[tuple[int, int]], local_states: Mapping[int, int]) -> list[tuple[int, int]]:
    """[(target id, public state)] in chain order -> the new [(target id, public state)] in new order.

    A target missing from `local_states` counts as locally OFFLINE.
    """
    def local(tid: int) -> int:
        return local_states.get(tid, LOCAL_OFFLINE)

    groups: dict[int, list[int]] = {s: [] for s in GROUP_ORDER}
    for tid, state in targets:
        groups[state if state in groups else OFFLINE].append(tid)

    serving: list[int] = []
    lastsrv: list[int] = []
    syncing: list[int] = []
    waiting: list[int] = []
    offline: list[int] = []

    # 1. old SERVING: alive stays SERVING; the first failed one becomes LASTSRV, later ones OFFLINE.
    first_failed = True
    for tid in groups[SERVING]:
        if _alive(local(tid)):
            serving.append(tid)
        elif first_failed:
            lastsrv.append(tid)
            first_failed = False
        else:
            offline.append(tid)
    # 2. old LASTSRV: with no SERVING yet an alive one serves again, a dead one stays LASTSRV.
    for tid in groups[LASTSRV]:
        if serving:
            offline.append(tid)
        elif _alive(local(tid)):
            serving.append(tid)
        else:
            lastsrv.append(tid)
    # 3. old SYNCING: UPTODATE serves; ONLINE keeps syncing while something serves; dead -> OFFLINE.
    for tid in groups[SYNCING]:
        state = local(tid)
        if state == UPTODATE:
            serving.append(tid)
        elif state == ONLINE:
            (syncing if serving else waiting).append(tid)
        else:
            offline.append(tid)
    # 4. old WAITING and OFFLINE: one ONLINE target may start syncing if something serves.
    for tid in groups[WAITING] + groups[OFFLINE]:
        state = local(tid)
        if serving and not syncing and state == ONLINE:
            syncing.append(tid)
        elif _alive(state):
            waiting.append(tid)
        else:
            offline.append(tid)
    # 5. a LASTSRV marker is only kept while nothing serves.
    if serving and lastsrv:
        offline = lastsrv + offline
        lastsrv = []
    # 6. the new order.
    return ([(t, SERVING) for t in serving] + [(t, LASTSRV) for t in lastsrv] + [(t, SYNCING) for t in syncing]
            + [(t, WAITING) for t in waiting] + [(t, OFFLINE) for t in offline])


def generate_new_chain(chain: cpb.ChainInfo, local_states: Mapping[int, int]) -> cpb.ChainInfo:
    """The chain after one evaluation of the state machine; version +1 iff states or order changed.

    Returns a new message; `chain` is not modified.
    """
    old = [(t.target_id, t.public_state) for t in chain.targets]
    new = next_states(old, local_states)
    out = cpb.ChainInfo()
    out.CopyFrom(chain)
    if new == old:
        return out
    del out.targets[:]
    out.targets.extend(cpb.ChainTarget(target_id=t, public_state=s) for t, s in new)
    out.chain_version = chain.chain_version + 1
    return out


def rotate_lastsrv(chain: cpb.ChainInfo) -> cpb.ChainInfo:
    """Admin `rotate-lastsrv`: the LASTSRV head goes OFFLINE to the end, the next target becomes LASTSRV.

    Only for a chain with no SERVING target whose head is LASTSRV and that has another target.
    """
    targets = [(t.target_id, t.public_state) for t in chain.targets]
    if any(s == SERVING for _, s in targets):
        raise make_error(Code.INVALID_ARGUMENT, f"chain {chain.chain_id} still has a serving target")
    if not targets or targets[0][1] != LASTSRV:
        raise make_error(Code.INVALID_ARGUMENT, f"chain {chain.chain_id} has no LASTSRV target to rotate")
    if len(targets) < 2:
        raise make_error(Code.INVALID_ARGUMENT, f"chain {chain.chain_id} has no other target to promote")
    (old, _), (nxt, _) = targets[0], targets[1]
    new = [(nxt, LASTSRV)] + targets[2:] + [(old, OFFLINE)]
    out = cpb.ChainInfo()
    out.CopyFrom(chain)
    del out.targets[:]
    out.targets.extend(cpb.ChainTarget(target_id=t, public_state=s) for t, s in new)
    out.chain_version = chain.chain_version + 1
    return out
