"""A background worker that runs `run_once()` every `interval` seconds and survives its failures."""
from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod

log = logging.getLogger(__name__)


class PeriodicWorker(ABC):
    """Subclasses implement run_once(); start() schedules it on the running loop, stop() cancels it."""

    name = "worker"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task | None = None

    @abstractmethod
    async def run_once(self) -> int:
        """One pass; returns how many items it handled."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except OSError as e:
                log.warning("%s pass failed: %s", self.name, e)
            except Exception:  # noqa: BLE001 - a background worker must keep running
                log.exception("%s pass crashed", self.name)
            await asyncio.sleep(self.interval)
