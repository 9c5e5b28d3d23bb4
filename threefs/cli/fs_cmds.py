"""File-system commands against a cluster: ls, stat, cat, put, get, mkdir, rm, mv."""
from __future__ import annotations

import asyncio
import os
import stat as st
import sys
import time

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from threefs.cli.common import data_dir_option, handle_errors, json_option, mgmtd_option, print_json, print_table, \
    resolve_mgmtd, run

BLOCK = 16 << 20
INFLIGHT = 4


def _client(mgmtd, data_dir):
    from threefs.client.fs import AsyncClient
    return AsyncClient(resolve_mgmtd(mgmtd, data_dir))


def _fs_cmd(f):
    return data_dir_option(mgmtd_option(handle_errors(f)))


def _fmt_time(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def _progress(total: int, label: str) -> Progress | None:
    if total < (64 << 20) or not sys.stderr.isatty():
        return None
    return Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    transient=True)


@click.command()
@click.argument("path", default="/")
@click.option("-l", "long", is_flag=True, help="Long listing.")
@json_option
@_fs_cmd
def ls(path, long, as_json, data_dir, mgmtd) -> None:
    """List a directory."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            s = await c.stat(path)
            if not st.S_ISDIR(s.st_mode):
                return [(os.path.basename(path.rstrip("/")), s)]
            from threefs.client.fs import StatResult
            return [(e.name, StatResult.of(i)) for e, i in await c.scandir(path)]

    rows = run(body())
    if as_json:
        return print_json([{"name": n, "inode": s.st_ino, "mode": oct(s.st_mode), "size": s.st_size,
                            "nlink": s.st_nlink, "uid": s.st_uid, "gid": s.st_gid, "mtime_ns": s.st_mtime_ns}
                           for n, s in rows])
    if not long:
        for n, s in rows:
            click.echo(n + ("/" if st.S_ISDIR(s.st_mode) else ""))
        return
    print_table(["Mode", "Links", "Uid", "Gid", "Size", "Modified", "Name"],
                [[st.filemode(s.st_mode), s.st_nlink, s.st_uid, s.st_gid, s.st_size, _fmt_time(s.st_mtime_ns), n]
                 for n, s in rows])


@click.command("stat")
@click.argument("path")
@json_option
@_fs_cmd
def stat_(path, as_json, data_dir, mgmtd) -> None:
    """Show a file's inode, including its layout."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            s = await c.stat(path, follow_symlinks=False)
            chains = []
            if s.inode.layout.WhichOneof("chains"):
                from threefs.client.file_io import FileIO
                chains = FileIO(s.inode, c.mgmtd, c.storage).all_chains()
            return s, chains

    s, chains = run(body())
    lay = s.inode.layout
    info = {"path": path, "inode": s.st_ino, "type": {0: "file", 1: "directory", 2: "symlink"}[s.inode.type],
            "mode": oct(s.st_mode & 0o7777), "nlink": s.st_nlink, "uid": s.st_uid, "gid": s.st_gid, "size": s.st_size,
            "truncate_ver": s.inode.truncate_ver, "atime": _fmt_time(s.st_atime_ns), "mtime": _fmt_time(s.st_mtime_ns),
            "ctime": _fmt_time(s.st_ctime_ns), "inline": s.inode.inline,
            "layout": {"table_id": lay.table_id, "table_version": lay.table_version, "chunk_size": lay.chunk_size,
                       "stripe": lay.stripe_size, "chains": chains}}
    if as_json:
        return print_json(info)
    for k, v in info.items():
        click.echo(f"{k:>13}: {v}")


@click.command()
@click.argument("path")
@_fs_cmd
def cat(path, data_dir, mgmtd) -> None:
    """Write a file's bytes to stdout."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            f = await c.open(path, "rb")
            try:
                out = sys.stdout.buffer
                off = 0
                while off < f.length:
                    data = await f.pread(BLOCK, off)
                    if not data:
                        break
                    out.write(data)
                    off += len(data)
                out.flush()
            finally:
                await f.close()

    run(body())


@click.command()
@click.argument("local", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.argument("remote")
@click.option("--sync/--no-sync", "do_sync", default=True, show_default=True, help="fsync before closing.")
@_fs_cmd
def put(local, remote, do_sync, data_dir, mgmtd) -> None:
    """Copy a local file (or - for stdin) into threefs."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            try:
                if st.S_ISDIR((await c.stat(remote)).st_mode):
                    target = remote.rstrip("/") + "/" + os.path.basename(local)
                else:
                    target = remote
            except FileNotFoundError:
                target = remote
            src = sys.stdin.buffer if local == "-" else open(local, "rb")
            total = 0 if local == "-" else os.fstat(src.fileno()).st_size
            f = await c.open(target, "wb")
            prog = _progress(total, "put")
            pending: set[asyncio.Task] = set()
            try:
                if prog:
                    prog.start()
                task = prog.add_task(f"put {os.path.basename(local)}", total=total) if prog else None
                sem = asyncio.Semaphore(INFLIGHT)
                off = 0
                while True:
                    buf = src.read(BLOCK)
                    if not buf:
                        break
                    await sem.acquire()

                    async def write(data=buf, at=off):
                        try:
                            await f.pwrite(data, at)
                            if prog:
                                prog.advance(task, len(data))
                        finally:
                            sem.release()

                    t = asyncio.create_task(write())
                    pending.add(t)
                    t.add_done_callback(pending.discard)
                    off += len(buf)
                    done = [t for t in list(pending) if t.done()]
                    for t in done:
                        t.result()
                if pending:
                    await asyncio.gather(*pending)
                if do_sync:
                    await f.fsync()
            except BaseException:
                for t in pending:
                    t.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
                raise
            finally:
                if prog:
                    prog.stop()
                await f.close()
                if src is not sys.stdin.buffer:
                    src.close()
            return target, off

    target, n = run(body())
    click.echo(f"{n} bytes -> {target}", err=True)


@click.command()
@click.argument("remote")
@click.argument("local", type=click.Path(dir_okay=True, allow_dash=True))
@_fs_cmd
def get(remote, local, data_dir, mgmtd) -> None:
    """Copy a threefs file to a local path (or - for stdout)."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            dst_path = local
            if local != "-" and os.path.isdir(local):
                dst_path = os.path.join(local, os.path.basename(remote.rstrip("/")))
            f = await c.open(remote, "rb")
            dst = sys.stdout.buffer if local == "-" else open(dst_path, "wb")
            prog = _progress(f.length, "get")
            try:
                if prog:
                    prog.start()
                task = prog.add_task(f"get {os.path.basename(remote)}", total=f.length) if prog else None
                offsets = list(range(0, f.length, BLOCK))
                for i in range(0, len(offsets), INFLIGHT):
                    parts = await asyncio.gather(*(f.pread(BLOCK, o) for o in offsets[i:i + INFLIGHT]))
                    for p in parts:
                        dst.write(p)
                        if prog:
                            prog.advance(task, len(p))
                dst.flush()
            finally:
                if prog:
                    prog.stop()
                await f.close()
                if dst is not sys.stdout.buffer:
                    dst.close()
            return dst_path, f.length

    path, n = run(body())
    if local != "-":
        click.echo(f"{n} bytes -> {path}", err=True)


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-p", "--parents", is_flag=True, help="Create missing parents; no error if it exists.")
@click.option("-m", "--mode", default="755", show_default=True, help="Permission bits (octal).")
@_fs_cmd
def mkdir(paths, parents, mode, data_dir, mgmtd) -> None:
    """Create directories."""
    try:
        perm = int(mode, 8)
    except ValueError:
        raise click.BadParameter(f"{mode!r} is not an octal mode", param_hint="--mode") from None

    async def body():
        async with _client(mgmtd, data_dir) as c:
            for p in paths:
                await c.mkdir(p, perm, parents=parents, exist_ok=parents)

    run(body())


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("-r", "-R", "--recursive", is_flag=True, help="Remove directories and their contents (instant; "
                                                             "space is reclaimed in the background).")
@click.option("-f", "--force", is_flag=True, help="Ignore missing paths.")
@_fs_cmd
def rm(paths, recursive, force, data_dir, mgmtd) -> None:
    """Remove files (and directories with -r)."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            for p in paths:
                try:
                    if recursive:
                        s = await c.stat(p, follow_symlinks=False)
                        if st.S_ISDIR(s.st_mode):
                            await c.rmtree(p)
                            continue
                    await c.remove(p)
                except FileNotFoundError:
                    if not force:
                        raise

    run(body())


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--exchange", is_flag=True, help="swap SRC and DST atomically (both must exist)")
@_fs_cmd
def mv(src, dst, exchange, data_dir, mgmtd) -> None:
    """Rename or move a file or directory (into DST if it is a directory)."""
    async def body():
        async with _client(mgmtd, data_dir) as c:
            if exchange:
                from threefs.client.fs import RENAME_EXCHANGE
                await c.rename(src, dst, flags=RENAME_EXCHANGE)
                return
            target = dst
            try:
                if st.S_ISDIR((await c.stat(dst)).st_mode):
                    target = dst.rstrip("/") + "/" + os.path.basename(src.rstrip("/"))
            except FileNotFoundError:
                pass
            await c.rename(src, target)

    run(body())


def register(cli: click.Group) -> None:
    for c in (ls, stat_, cat, put, get, mkdir, rm, mv):
        cli.add_command(c)
