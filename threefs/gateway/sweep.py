"""Sweeping the upload temporaries a gateway killed mid-upload leaves behind.

An S3 PUT and a WebHDFS CREATE write a temporary file and rename it into place once the body is
complete, so a failed upload never shows as a partial object. A gateway that dies mid-upload cannot
remove its temporary; nothing else would, and its space would stay taken for good. Every gateway
therefore sweeps: a temporary whose upload is alive has a write session open in meta (its gateway's
client renews the session's lease); one whose gateway died loses its session once meta prunes the
dead client (`threefs meta --client-timeout`). A temporary older than `stale_after` seconds with no
write session is removed. Several gateways may sweep the same namespace: a removal that finds the
file gone already is not an error.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # the CLI reads the defaults below without loading the client library
    from threefs.client.fs import AsyncClient

log = logging.getLogger(__name__)

STALE_AFTER = 600.0       # seconds since a temporary was created before it may be swept
SWEEP_INTERVAL = 300.0    # seconds between sweeps (the first runs right after start)


async def stale(client: AsyncClient, path: str, stale_after: float) -> bool:
    """Whether the temporary at `path` is older than `stale_after` and no writer holds it open.
    FileNotFoundError when it is gone."""
    from threefs.proto import meta_pb2 as mp
    st = await client.lstat(path)
    if time.time() - st.st_ctime < stale_after:
        return False
    rsp = await client.meta.call("ListSessions", mp.ListSessionsReq(base=client.meta.base(), inode=st.st_ino),
                                 mp.ListSessionsRsp)
    return not rsp.sessions


async def remove_if_stale(client: AsyncClient, path: str, stale_after: float) -> bool:
    """Remove the temporary at `path` when it is stale; True when this call removed it."""
    try:
        if not await stale(client, path, stale_after):
            return False
        await client.remove(path)
    except FileNotFoundError:
        return False
    log.info("swept %s, an upload temporary left by a gateway that stopped mid-upload", path)
    return True


async def listdir_or_empty(client: AsyncClient, path: str) -> list[str]:
    try:
        return await client.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


class Sweeper:
    """Runs `sweep()` now and every `interval` seconds until stopped; a failed sweep is logged and retried
    at the next interval (meta or mgmtd may be away for a while)."""

    def __init__(self, sweep: Callable[[], Awaitable[int]], interval: float = SWEEP_INTERVAL) -> None:
        self._sweep = sweep
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.swept = 0

    def start(self) -> None:
        if self._task is None and self.interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                self.swept += await self._sweep()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # noqa: BLE001 - a sweep must never take the gateway down
                log.warning("sweeping upload temporaries failed (retried in %.0f s): %r", self.interval, e)
            await asyncio.sleep(self.interval)
