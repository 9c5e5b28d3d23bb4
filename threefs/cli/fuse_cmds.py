"""`threefs mount` / `threefs umount`: the FUSE mount."""
from __future__ import annotations

import asyncio

import click

from threefs.cli.serve import setup_logging


@click.command()
@click.option("--mgmtd", "mgmtd_address", required=True, envvar="THREEFS_MGMTD", help="mgmtd HOST:PORT.")
@click.argument("mountpoint", type=click.Path(file_okay=False))
@click.option("-o", "options", multiple=True, help="Mount options, comma separated (allow_other, ro, ...).")
@click.option("--allow-other", is_flag=True, help="Let other users use the mount (same as -o allow_other).")
@click.option("--writeback-cache", is_flag=True, help="Enable the kernel writeback cache (3FS default: off).")
@click.option("--root-squash", is_flag=True, help="Treat uid/gid 0 of callers as nobody (65534).")
@click.option("--attr-timeout", type=float, default=30.0, show_default=True, help="Kernel attribute cache TTL (s).")
@click.option("--entry-timeout", type=float, default=30.0, show_default=True, help="Kernel name cache TTL (s).")
@click.option("--negative-timeout", type=float, default=5.0, show_default=True, help="Cache TTL of missing names.")
@click.option("--no-read-cache", is_flag=True, help="Bypass the page cache for reads (direct_io).")
@click.option("--no-dir-leases", is_flag=True,
              help="Ask meta for every lookup, also of names in directories this mount just made (no leases).")
@click.option("--retry-timeout", type=float, default=30.0, show_default=True,
              help="Seconds a failing meta/storage request is retried before the caller gets EIO.")
@click.option("--log-level", default="WARNING", show_default=True)
def mount(mgmtd_address, mountpoint, options, allow_other, writeback_cache, root_squash, attr_timeout,
          entry_timeout, negative_timeout, no_read_cache, no_dir_leases, retry_timeout, log_level) -> None:
    """Mount the file system at MOUNTPOINT (prints `READY fuse MOUNTPOINT`; SIGTERM unmounts)."""
    from threefs.fuse.mount import serve
    from threefs.fuse.ops import MountOptions
    from threefs.net.rpc import install_uvloop, tune_malloc
    setup_logging(log_level)
    extra = [o for opt in options for o in opt.split(",") if o]
    if "allow_other" in extra:
        extra.remove("allow_other")
        allow_other = True
    from threefs.fuse.mountpoint import prepare
    try:
        mountpoint, detached = prepare(mountpoint)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if detached:
        click.echo(f"detached the mount at {mountpoint} left by a threefs daemon that had exited", err=True)
    opts = MountOptions(attr_timeout=attr_timeout, entry_timeout=entry_timeout, negative_timeout=negative_timeout,
                        writeback_cache=writeback_cache, root_squash=root_squash, read_cache=not no_read_cache,
                        dir_leases=not no_dir_leases)
    install_uvloop()
    tune_malloc()     # 1 MiB write payloads and read buffers: reused heap memory, not fresh pages each time
    try:
        asyncio.run(serve(mgmtd_address, mountpoint, opts, allow_other=allow_other, extra_options=extra,
                          retry_timeout=retry_timeout))
    except ValueError as e:
        raise click.UsageError(str(e)) from None


@click.command()
@click.argument("mountpoint", type=click.Path())
@click.option("-l", "--lazy", is_flag=True, help="Detach now, clean up when no longer busy.")
def umount(mountpoint, lazy) -> None:
    """Unmount a threefs FUSE mount."""
    import subprocess

    from threefs.fuse.mount import unmount
    try:
        unmount(mountpoint, lazy=lazy)
    except subprocess.CalledProcessError as e:
        raise click.ClickException((e.stderr or e.stdout or str(e)).strip()) from None


def register(cli: click.Group) -> None:
    cli.add_command(mount)
    cli.add_command(umount)
