"""Tunables of one meta server (defaults follow 3FS where the dev cluster does not need shorter ones)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetaConfig:
    """What a meta server is told at start; every field has a safe default."""

    authenticate: bool = False        # resolve request tokens through mgmtd's user table
    auth_cache_ttl: float = 30.0      # seconds a resolved token stays cached
    gc_interval: float = 0.5          # seconds between GC passes
    gc_delay: float = 0.0             # age a GC entry must reach before it is collected (3FS: 5 min)
    gc_retry_delay: float = 5.0       # a file still open for write is retried this much later
    gc_takeover: float = 30.0         # an entry this overdue is collected by any meta server
    client_timeout: float = 60.0      # a client silent this long loses its write sessions
    session_scan_interval: float = 5.0
    idem_ttl: float = 1800.0          # IDEM records expire after 30 minutes (3FS)
    idem_scan_interval: float = 60.0
    dir_lease_ttl: float = 10.0       # seconds a client that made a directory answers lookups in it alone (0: off)
    dir_lease_scan_interval: float = 30.0
    inline_max: int = 8192            # files up to this size, written at create, are kept in meta (0: never)
