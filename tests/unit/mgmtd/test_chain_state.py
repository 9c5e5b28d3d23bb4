"""The chain state machine (reference §3.5 table, §3.6 algorithm) as a pure function: every table row,
the ordering and one-SYNCING rules, LASTSRV handling, versions, and P-spec invariants on random chains."""
from __future__ import annotations

import random

import pytest

from threefs.common.errors import FSError
from threefs.mgmtd.chain_state import generate_new_chain, next_states, rotate_lastsrv
from threefs.proto import common_pb2 as cpb

SER, LST, SYN, WAI, OFF = cpb.SERVING, cpb.LASTSRV, cpb.SYNCING, cpb.WAITING, cpb.OFFLINE
UP, ON, DOWN = cpb.UPTODATE, cpb.ONLINE, cpb.LOCAL_OFFLINE
NAME = {SER: "SERVING", LST: "LASTSRV", SYN: "SYNCING", WAI: "WAITING", OFF: "OFFLINE"}


def chain(*targets: tuple[int, int], version: int = 7) -> cpb.ChainInfo:
    c = cpb.ChainInfo(chain_id=1, chain_version=version)
    c.targets.extend(cpb.ChainTarget(target_id=t, public_state=s) for t, s in targets)
    return c


def states(c: cpb.ChainInfo) -> dict[int, int]:
    return {t.target_id: t.public_state for t in c.targets}


def order(c: cpb.ChainInfo) -> list[tuple[int, int]]:
    return [(t.target_id, t.public_state) for t in c.targets]


# Every row of the §3.5 transition table. Target 9 is the subject; the other targets set up its
# predecessor ("serving" = a SERVING target before it, "not serving" = none serves, "none" = it is
# the head). Rows marked "any" are checked in several predecessor contexts.
#            (row, subject local, subject public, context chain before subject, their locals, expected)
TABLE = [
    ("up-to-date/serving/head", UP, SER, [], {}, SER),
    ("up-to-date/serving/after-serving", UP, SER, [(1, SER)], {1: UP}, SER),
    ("up-to-date/syncing/serving-pred", UP, SYN, [(1, SER)], {1: UP}, SER),
    ("up-to-date/syncing/no-serving", UP, SYN, [(1, LST)], {1: DOWN}, SER),
    ("up-to-date/lastsrv", UP, LST, [], {}, SER),
    ("up-to-date/lastsrv/others-offline", UP, LST, [(1, OFF)], {1: DOWN}, SER),
    ("up-to-date/waiting/serving-pred", UP, WAI, [(1, SER)], {1: UP}, WAI),
    ("up-to-date/waiting/no-serving", UP, WAI, [(1, LST)], {1: DOWN}, WAI),
    ("up-to-date/offline/serving-pred", UP, OFF, [(1, SER)], {1: UP}, WAI),
    ("up-to-date/offline/no-serving", UP, OFF, [(1, LST)], {1: DOWN}, WAI),
    ("online/serving/head", ON, SER, [], {}, SER),
    ("online/serving/after-serving", ON, SER, [(1, SER)], {1: UP}, SER),
    ("online/syncing/serving-pred", ON, SYN, [(1, SER)], {1: UP}, SYN),
    ("online/waiting/serving-pred", ON, WAI, [(1, SER)], {1: UP}, SYN),
    ("online/syncing/not-serving-pred", ON, SYN, [(1, LST)], {1: DOWN}, WAI),
    ("online/waiting/not-serving-pred", ON, WAI, [(1, LST)], {1: DOWN}, WAI),
    ("online/waiting/pred-is-syncing", ON, WAI, [(1, SER), (2, SYN)], {1: UP, 2: ON}, WAI),
    ("online/lastsrv", ON, LST, [], {}, SER),
    ("online/lastsrv/others-waiting", ON, LST, [(1, WAI)], {1: ON}, SER),
    # The doc row says OFFLINE+online -> waiting; the code (§3.6 step 4) goes straight to SYNCING when
    # something serves and nothing syncs (test_offline_online_target_starts_syncing_at_once). Where the
    # two agree: nothing serves, or another target already syncs.
    ("online/offline/no-serving", ON, OFF, [(1, LST)], {1: DOWN}, WAI),
    ("online/offline/another-syncing", ON, OFF, [(1, SER), (2, SYN)], {1: UP, 2: ON}, WAI),
    # "none (is head)": the failed head with nothing else serving keeps the LASTSRV marker.
    ("offline/serving/head-alone", DOWN, SER, [], {}, LST),
    ("offline/serving/head-others-dead", DOWN, SER, [], {}, LST),
    ("offline/serving/pred-exists", DOWN, SER, [(1, SER)], {1: UP}, OFF),
    ("offline/syncing", DOWN, SYN, [(1, SER)], {1: UP}, OFF),
    ("offline/syncing/no-serving", DOWN, SYN, [(1, LST)], {1: DOWN}, OFF),
    ("offline/waiting", DOWN, WAI, [(1, SER)], {1: UP}, OFF),
    ("offline/offline", DOWN, OFF, [(1, SER)], {1: UP}, OFF),
    ("offline/offline/no-serving", DOWN, OFF, [(1, LST)], {1: DOWN}, OFF),
    ("offline/lastsrv", DOWN, LST, [], {}, LST),
    ("offline/lastsrv/others-offline", DOWN, LST, [(1, OFF), (2, WAI)], {1: DOWN, 2: ON}, LST),
]


@pytest.mark.parametrize("row,local,public,before,locals_,expected", TABLE, ids=[r[0] for r in TABLE])
def test_transition_table_row(row, local, public, before, locals_, expected):
    targets = list(before) + [(9, public)]
    if row == "offline/serving/head-others-dead":
        targets = [(9, public), (2, SER), (3, SER)]
        locals_ = {2: DOWN, 3: DOWN}
    c = chain(*targets)
    new = generate_new_chain(c, {**locals_, 9: local})
    got = states(new)[9]
    assert got == expected, f"{row}: got {NAME[got]}, want {NAME[expected]}"


def test_offline_online_target_starts_syncing_at_once():
    """§3.6 step 4 / §3.7 recovery: OFFLINE -> SYNCING when the chain serves and nothing else syncs."""
    new = generate_new_chain(chain((1, SER), (2, SER), (9, OFF)), {1: UP, 2: UP, 9: ON})
    assert order(new) == [(1, SER), (2, SER), (9, SYN)]
    assert new.chain_version == 8


def test_only_one_target_syncs_at_a_time():
    c = chain((1, SER), (2, OFF), (3, WAI), (4, OFF))
    new = generate_new_chain(c, {1: UP, 2: ON, 3: ON, 4: ON})
    # old WAITING targets come before old OFFLINE ones; the first ONLINE of them syncs
    assert order(new) == [(1, SER), (3, SYN), (2, WAI), (4, WAI)]
    # the syncing one finishes (UPTODATE) -> SERVING, and the next one starts syncing
    new2 = generate_new_chain(new, {1: UP, 3: UP, 2: ON, 4: ON})
    assert order(new2) == [(1, SER), (3, SER), (2, SYN), (4, WAI)]
    assert new2.chain_version == new.chain_version + 1


def test_new_order_groups_states_and_keeps_relative_order():
    c = chain((1, OFF), (2, WAI), (3, SER), (4, SYN), (5, SER), (6, OFF))
    new = generate_new_chain(c, {1: DOWN, 2: ON, 3: UP, 4: ON, 5: UP, 6: UP})
    assert order(new) == [(3, SER), (5, SER), (4, SYN), (2, WAI), (6, WAI), (1, OFF)]


def test_failed_middle_moves_to_the_end_and_version_bumps():
    c = chain((1, SER), (2, SER), (3, SER))
    new = generate_new_chain(c, {1: UP, 2: DOWN, 3: UP})
    assert order(new) == [(1, SER), (3, SER), (2, OFF)]
    assert new.chain_version == c.chain_version + 1
    assert order(c) == [(1, SER), (2, SER), (3, SER)], "the input chain must not be modified"


def test_failed_head_leaves_new_head_serving():
    new = generate_new_chain(chain((1, SER), (2, SER), (3, SER)), {1: DOWN, 2: UP, 3: UP})
    assert order(new) == [(2, SER), (3, SER), (1, OFF)]


def test_all_serving_fail_first_becomes_lastsrv_rest_offline():
    new = generate_new_chain(chain((1, SER), (2, SER), (3, SER)), {})
    assert order(new) == [(1, LST), (2, OFF), (3, OFF)]
    # and it waits for exactly that target: others coming back only wait
    again = generate_new_chain(new, {2: ON, 3: UP})
    assert order(again) == [(1, LST), (2, WAI), (3, WAI)]
    back = generate_new_chain(again, {1: ON, 2: ON, 3: UP})
    assert order(back) == [(1, SER), (2, SYN), (3, WAI)]


def test_lastsrv_becomes_offline_once_something_serves():
    # a LASTSRV next to a returning (old SERVING) target: step 5 drops the marker
    new = generate_new_chain(chain((1, SER), (2, LST)), {1: UP, 2: DOWN})
    assert order(new) == [(1, SER), (2, OFF)]
    # two LASTSRV: the first alive one serves, the other goes offline
    new = generate_new_chain(chain((1, LST), (2, LST)), {1: DOWN, 2: ON})
    assert order(new) == [(2, SER), (1, OFF)]


def test_no_change_keeps_version_and_returns_a_copy():
    c = chain((1, SER), (2, SER), (3, SYN), (4, OFF))
    new = generate_new_chain(c, {1: UP, 2: ON, 3: ON, 4: DOWN})
    assert new.chain_version == c.chain_version
    assert order(new) == order(c)
    assert new is not c


def test_unknown_local_state_counts_as_offline():
    new = generate_new_chain(chain((1, SER), (2, SER)), {1: UP})
    assert order(new) == [(1, SER), (2, OFF)]


def test_rotate_lastsrv_promotes_next_target():
    c = chain((1, LST), (2, OFF), (3, WAI))
    new = rotate_lastsrv(c)
    assert order(new) == [(2, LST), (3, WAI), (1, OFF)]
    assert new.chain_version == c.chain_version + 1
    served = generate_new_chain(new, {2: ON, 3: ON, 1: DOWN})
    assert order(served) == [(2, SER), (3, SYN), (1, OFF)]
    for bad in (chain((1, SER), (2, OFF)), chain((1, OFF), (2, LST)), chain((1, LST))):
        with pytest.raises(FSError):
            rotate_lastsrv(bad)


@pytest.mark.parametrize("seed", range(40))
def test_invariants_on_random_chains(seed):
    """P-spec oracles: membership never changes, a chain keeps a SERVING or LASTSRV target, at most one
    SYNCING, groups in order, version +1 exactly when something changed; constant local states converge."""
    rnd = random.Random(seed)
    n = rnd.randint(1, 5)
    ids = list(range(1, n + 1))
    c = chain((ids[0], SER), *[(t, rnd.choice([SER, SYN, WAI, OFF])) for t in ids[1:]])
    c = generate_new_chain(c, {t: UP for t in ids})          # a reachable starting point
    rank = {SER: 0, LST: 1, SYN: 2, WAI: 3, OFF: 4}
    for _ in range(30):
        local = {t: rnd.choice([UP, ON, DOWN]) for t in ids}
        for _ in range(4):                                     # a few rounds with the same reports
            new = generate_new_chain(c, local)
            got = order(new)
            assert sorted(t for t, _ in got) == ids
            assert any(s in (SER, LST) for _, s in got), got
            assert sum(s == SYN for _, s in got) <= 1
            assert sum(s == LST for _, s in got) <= 1
            assert not (any(s == SER for _, s in got) and any(s == LST for _, s in got))
            assert [rank[s] for _, s in got] == sorted(rank[s] for _, s in got)
            assert new.chain_version == c.chain_version + (got != order(c))
            for t, s in got:
                if local[t] == DOWN:
                    assert s in (LST, OFF)
            c = new
        assert next_states(order(c), local) == order(c), "with constant reports the chain reaches a fixed point"
