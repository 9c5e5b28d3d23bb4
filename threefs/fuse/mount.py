"""Run a mount: connect the client, mount with pyfuse3 (asyncio mode), serve until SIGTERM or unmount."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess

import pyfuse3

from threefs.client.fs import AsyncClient
from threefs.common.errors import FSError
from threefs.fuse import fuse_fd
from threefs.fuse.mountpoint import unmount_command
from threefs.fuse.ops import MountOptions, ThreeFSOperations

log = logging.getLogger("threefs.fuse")
READ_AHEAD_KB = 8192      # reads arrive as 1 MiB requests (machine.md), about 8 of them in flight
MAX_BACKGROUND = 32       # 3FS max_background: async requests (readahead) the kernel keeps in flight
FUSECTL = "/sys/fs/fuse/connections"
FLUSH_INTERVAL = 5.0      # seconds between flushes of idle write buffers


def mount_options(allow_other: bool, extra: list[str] | None = None) -> set[str]:
    """pyfuse3 options; never max_read (it breaks the mount).

    default_permissions: the kernel checks mode bits too, also on path walks through its dentry
    cache (which never reach meta); meta still checks every request as the caller.
    """
    opts = {"fsname=threefs", "subtype=threefs", "noatime", "default_permissions"}
    if allow_other:
        opts.add("allow_other")
    for o in extra or []:
        if o.split("=")[0] in ("max_read", "max_write", "async_read", "sync_read"):
            raise ValueError(f"mount option {o!r} is not supported by pyfuse3 (see docs)")
        opts.add(o)
    return opts


def mount_device(mountpoint: str) -> str | None:
    """The mount's "major:minor" from /proc/self/mountinfo (a stat would ask this very daemon)."""
    with open("/proc/self/mountinfo") as f:
        found = None
        for line in f:
            fields = line.split()
            if fields[4] == mountpoint:
                found = fields[2]          # the last (topmost) mount on this path wins
    return found


def readahead_bytes(mountpoint: str) -> int | None:
    """The kernel's read-ahead window of the mount (its bdi read_ahead_kb), or None if unreadable."""
    dev = mount_device(mountpoint)
    try:
        with open(f"/sys/class/bdi/{dev}/read_ahead_kb") as f:
            return int(f.read()) << 10
    except (OSError, ValueError):
        return None


def raise_readahead(mountpoint: str, kb: int = READ_AHEAD_KB) -> bool:
    """Raise the mount's bdi read_ahead_kb (root only); returns whether it took."""
    dev = mount_device(mountpoint)
    if dev is None:
        return False
    path = f"/sys/class/bdi/{dev}/read_ahead_kb"
    try:
        with open(path, "w") as f:
            f.write(str(kb))
        return True
    except OSError as e:
        log.info("could not raise readahead via %s: %s", path, e)
        return False


def _connection_dir(mountpoint: str) -> str | None:
    """The mount's fusectl directory (mounting fusectl when missing, as systemd does at boot), or None."""
    dev = mount_device(mountpoint)
    if dev is None:
        return None
    major, minor = (int(x) for x in dev.split(":"))
    conn = os.path.join(FUSECTL, str((major << 20) | minor))
    if not os.path.isdir(conn) and os.path.isdir(FUSECTL) and not os.listdir(FUSECTL):
        subprocess.run(["mount", "-t", "fusectl", "fusectl", FUSECTL], check=False, capture_output=True)
    return conn if os.path.isdir(conn) else None


def raise_max_background(mountpoint: str, n: int = MAX_BACKGROUND) -> bool:
    """Let the kernel keep `n` async requests in flight (default 12); root only, returns whether it took.

    pyfuse3 cannot set libfuse's max_background, so this goes through fusectl after mounting.
    """
    conn = _connection_dir(mountpoint)
    if conn is None:
        return False
    try:
        for name, value in (("max_background", n), ("congestion_threshold", n * 3 // 4)):
            with open(os.path.join(conn, name), "w") as f:
                f.write(str(value))
        return True
    except OSError as e:
        log.info("could not raise max_background via %s: %s", conn, e)
        return False


def unmount(mountpoint: str, lazy: bool = False) -> None:
    """fusermount3 -u (lazy: -z), falling back to umount."""
    subprocess.run(unmount_command(mountpoint, lazy), check=True, capture_output=True, text=True)


async def _flush_periodically(ops: ThreeFSOperations, mountpoint: str, interval: float = FLUSH_INTERVAL) -> None:
    """Flush idle write buffers; follow the kernel's read-ahead window, which an admin may change."""
    while True:
        ops.prefetch_budget.follow_readahead(readahead_bytes(mountpoint))
        await asyncio.sleep(interval)
        await ops.flush_all()


async def serve(mgmtd: str, mountpoint: str, options: MountOptions, *, allow_other: bool = False,
                extra_options: list[str] | None = None, retry_timeout: float = 30.0,
                ready: str = "READY fuse {mountpoint}") -> None:
    """Mount, print the ready line, serve; on SIGTERM/SIGINT flush open files and unmount cleanly."""
    fuse_fd.install()
    mountpoint = os.path.abspath(mountpoint)
    client = await AsyncClient(mgmtd, retry_timeout=retry_timeout).connect()
    ops = ThreeFSOperations(client, mountpoint, options)
    if options.dir_leases:
        try:
            await ops.leases.start(client.meta.address())
        except (OSError, FSError) as e:         # the mount works without: every lookup asks meta
            log.warning("directory leases are off: %s", e)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        pyfuse3.init(ops, mountpoint, mount_options(allow_other, extra_options))
    except BaseException:
        await client.close()
        raise
    unmounted = False
    tasks: list[asyncio.Future] = []
    try:
        main = asyncio.ensure_future(pyfuse3.main(max_tasks=256))
        stop = asyncio.ensure_future(stopping.wait())
        tasks += [main, stop]
        # A stat from a thread completes FUSE_INIT (which sets the readahead) and proves the mount serves.
        await asyncio.wait({main, asyncio.ensure_future(asyncio.to_thread(os.stat, mountpoint))},
                           return_when=asyncio.FIRST_COMPLETED)
        if not main.done():
            raise_readahead(mountpoint)
            raise_max_background(mountpoint)
            tasks.append(asyncio.ensure_future(_flush_periodically(ops, mountpoint)))
            print(ready.format(mountpoint=mountpoint), flush=True)
        await asyncio.wait({main, stop}, return_when=asyncio.FIRST_COMPLETED)
        if main.done():
            unmounted = True          # unmounted from outside (fusermount3 -u): the loop ended
            main.result()
        else:
            log.info("stopping")
            await ops.close_all()
            pyfuse3.terminate()
            await main
    finally:
        for t in tasks[1:]:
            t.cancel()
        try:
            pyfuse3.close(unmount=not unmounted)
        finally:
            await ops.close_all()
            await ops.leases.stop()
            await client.close()
