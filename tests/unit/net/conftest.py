"""Run every async test in this directory on both the stdlib event loop and uvloop."""
from __future__ import annotations

import asyncio


def pytest_asyncio_loop_factories(config, item):
    factories = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
