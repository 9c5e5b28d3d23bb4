"""The FUSE fd wait that replaces pyfuse3's asyncio one, over a pipe (the mount tests use the real fd)."""
from __future__ import annotations

import asyncio
import os

import pyfuse3.asyncio as pyfuse3_asyncio
import pytest

from threefs.fuse import fuse_fd

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(30)]


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    fuse_fd.notify_closing(r)
    os.close(r)
    os.close(w)


async def _spins(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_waiter_wakes_when_the_fd_is_readable_and_the_fd_stays_registered(pipe) -> None:
    r, w = pipe
    for i in range(3):
        waiter = asyncio.ensure_future(fuse_fd.wait_readable(r))
        await _spins()
        assert not waiter.done()                       # nothing to read yet
        os.write(w, b"x")
        await asyncio.wait_for(waiter, 5)
        os.read(r, 1)                                  # the worker takes the request
        assert fuse_fd._watches[r].registered          # no epoll_ctl per request


async def test_a_readable_fd_nobody_waits_for_leaves_the_loop(pipe) -> None:
    r, w = pipe
    waiter = asyncio.ensure_future(fuse_fd.wait_readable(r))
    os.write(w, b"xy")
    await asyncio.wait_for(waiter, 5)
    await _spins()                                     # still readable, and nobody waits: no spinning
    assert not fuse_fd._watches[r].registered
    await asyncio.wait_for(fuse_fd.wait_readable(r), 5)  # the next waiter registers it again
    assert fuse_fd._watches[r].registered


async def test_closing_fails_the_waiters_with_pyfuse3s_error(pipe) -> None:
    r, _ = pipe
    waiters = [asyncio.ensure_future(fuse_fd.wait_readable(r)) for _ in range(2)]
    await _spins()
    fuse_fd.notify_closing(r)
    for waiter in waiters:
        with pytest.raises(pyfuse3_asyncio.ClosedResourceError):
            await asyncio.wait_for(waiter, 5)
    assert r not in fuse_fd._watches


async def test_a_cancelled_waiter_is_forgotten(pipe) -> None:
    r, w = pipe
    gone = asyncio.ensure_future(fuse_fd.wait_readable(r))
    await _spins()
    gone.cancel()
    await _spins()
    assert not fuse_fd._watches[r].waiters
    waiter = asyncio.ensure_future(fuse_fd.wait_readable(r))
    os.write(w, b"x")
    await asyncio.wait_for(waiter, 5)


async def test_install_points_pyfuse3_at_these_functions() -> None:
    fuse_fd.install()
    assert pyfuse3_asyncio.wait_readable is fuse_fd.wait_readable
    assert pyfuse3_asyncio.notify_closing is fuse_fd.notify_closing
