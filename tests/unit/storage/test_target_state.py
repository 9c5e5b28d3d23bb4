"""Local target state rules of a storage node (§3.4, §3.7 rejoin)."""
from __future__ import annotations

import pytest

from threefs.proto import common_pb2 as cpb
from threefs.storage.target_state import next_local_state

UP, ON, DOWN = cpb.UPTODATE, cpb.ONLINE, cpb.LOCAL_OFFLINE
SER, LST, SYN, WAI, OFF = cpb.SERVING, cpb.LASTSRV, cpb.SYNCING, cpb.WAITING, cpb.OFFLINE

ROWS = [
    # restarted (OFFLINE) target: waits while mgmtd still lists it serving/syncing/waiting
    (DOWN, SER, DOWN), (DOWN, SYN, DOWN), (DOWN, WAI, DOWN),
    (DOWN, OFF, ON), (DOWN, LST, ON), (DOWN, None, ON),
    # ONLINE: up to date once it serves (returning LASTSRV); otherwise keeps waiting/syncing
    (ON, SER, UP), (ON, SYN, ON), (ON, WAI, ON), (ON, OFF, ON), (ON, LST, ON),
    # UPTODATE: mgmtd gave up on it -> fence itself
    (UP, SER, UP), (UP, SYN, UP), (UP, OFF, DOWN), (UP, LST, DOWN), (UP, WAI, DOWN),
]


@pytest.mark.parametrize("local,public,expected", ROWS)
def test_local_state_rule(local, public, expected):
    assert next_local_state(local, public) == expected


def test_sticky_and_draining_targets_stay_offline():
    assert next_local_state(DOWN, OFF, sticky=True) == DOWN
    assert next_local_state(DOWN, OFF, draining=True) == DOWN
    assert next_local_state(DOWN, OFF) == ON
