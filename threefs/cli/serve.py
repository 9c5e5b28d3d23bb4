"""Run one service process until SIGTERM/SIGINT: the body of `threefs mgmtd|meta|storage`."""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from threefs.common.errors import FSError
from threefs.common.metrics import serve_metrics
from threefs.net.rpc import install_uvloop, tune_malloc


def setup_logging(level: str = "INFO", log_file: Path | None = None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file is not None:
        handlers = [logging.FileHandler(log_file)]
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def run_service(start: Callable[[], Awaitable[tuple[str, Callable[[], Awaitable[None]]]]], role: str,
                metrics_port: int | None = None, metrics_host: str = "127.0.0.1") -> None:
    """Start a service (start() returns its address and a stop coroutine), print READY, wait for a signal.

    With `metrics_port` (0: any free port) Prometheus metrics are served at http://HOST:PORT/metrics.
    """
    install_uvloop()
    tune_malloc()      # every service moves MiB-sized payloads (the gateways too): keep them in reused heap memory
    if metrics_port is not None:
        print(f"METRICS {role} http://{serve_metrics(metrics_host, metrics_port)}/metrics", flush=True)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        address, stop = await start()
        print(f"READY {role} {address}", flush=True)
        await stopping.wait()
        logging.getLogger(role).info("stopping")
        await stop()

    try:
        asyncio.run(main())
    except FSError as e:            # a target or database that cannot be opened, a port in use...: no traceback
        raise click.ClickException(f"{role}: {e.strerror or e}") from None
