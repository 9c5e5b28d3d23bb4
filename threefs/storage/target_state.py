"""Local target states on a storage node (3FS §3.4, §3.7): what a target reports to mgmtd.

A target starts OFFLINE after a (re)start and waits until routing info no longer lists it as SERVING,
SYNCING or WAITING (so mgmtd has taken it out of the chain), then reports ONLINE; an ONLINE target
becomes UPTODATE when the resync ends (SyncDone) or when it sees itself SERVING (a returning LASTSRV
target, which first force-commits its pending versions); an UPTODATE target that sees itself OFFLINE,
LASTSRV or WAITING was given up on by mgmtd and fences itself (OFFLINE), then rejoins the same way a
restarted one does. An admin `offline-target` (or a disk error) keeps it OFFLINE until a restart.
"""
from __future__ import annotations

from threefs.proto import common_pb2 as cpb

UPTODATE, ONLINE, OFFLINE = cpb.UPTODATE, cpb.ONLINE, cpb.LOCAL_OFFLINE


def next_local_state(local: int, public: int | None, *, sticky: bool = False, draining: bool = False) -> int:
    """The local state after seeing public state `public` (None: the target is in no chain).

    `sticky`: taken offline by an admin or an I/O error; `draining`: updates from before a fence are
    still running, so the target may not rejoin yet. ONLINE -> UPTODATE on SERVING is returned here;
    the caller force-commits pending versions before adopting it.
    """
    if local == OFFLINE:
        if sticky or draining:
            return OFFLINE
        if public in (None, cpb.PUBLIC_INVALID, cpb.OFFLINE, cpb.LASTSRV):
            return ONLINE
        return OFFLINE
    if local == ONLINE:
        return UPTODATE if public == cpb.SERVING else ONLINE
    if local == UPTODATE:
        return OFFLINE if public in (cpb.OFFLINE, cpb.LASTSRV, cpb.WAITING) else UPTODATE
    return OFFLINE
