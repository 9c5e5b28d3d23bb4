"""`threefs admin` commands on the namespace: set-layout, fsck, find-orphaned-chunks, gc-list, gc-run,
session-list (names follow 3FS's admin_cli)."""
from __future__ import annotations

import sys
import time

import click

from threefs.cli.common import data_dir_option, handle_errors, json_option, mgmtd_option, print_json, print_table, \
    resolve_mgmtd, run

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def parse_size(text: str) -> int:
    """'4M' -> 4194304 (units K, M, G; powers of 1024)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    unit = t[-1:] if t[-1:] in SIZE_UNITS else ""
    try:
        return int(t[:len(t) - len(unit)]) * SIZE_UNITS[unit]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a size (e.g. 1048576, 512K, 4M)") from None


def token_option(f):
    return click.option("--token", envvar="THREEFS_TOKEN", default="",
                        help="Token of the caller (needed when meta authenticates).")(f)


def _meta_cmd(f):
    return token_option(data_dir_option(mgmtd_option(handle_errors(f))))


async def _call(mgmtd: str, token: str, method: str, make_req, rsp_type, *, timeout: float = 10.0):
    """Connect a client as this user (with `token`) and make one meta call."""
    from threefs.client.fs import AsyncClient, default_user
    user = default_user()
    if token:
        user.token = token
    async with AsyncClient(mgmtd, user=user) as c:
        c.meta.timeout = timeout
        return await c.meta.call(method, make_req(c.meta.base()), rsp_type)


@click.command("set-layout")
@click.argument("path")
@click.option("--chunk-size", default=None, help="Chunk size of new files (power of two, e.g. 4M).")
@click.option("--stripe", type=int, default=None, help="Chains each new file stripes over.")
@click.option("--table-id", type=int, default=None, help="Chain table new files take chains from.")
@click.option("--table-version", type=int, default=None, help="Pin a chain table version (0: latest).")
@_meta_cmd
def set_layout(path, chunk_size, stripe, table_id, table_version, token, data_dir, mgmtd) -> None:
    """Set the layout new files under directory PATH (and new subdirectories) inherit."""
    from threefs.client.fs import _path
    from threefs.proto import meta_pb2 as mp
    if chunk_size is None and stripe is None and table_id is None and table_version is None:
        raise click.UsageError("give at least one of --chunk-size, --stripe, --table-id, --table-version")
    address = resolve_mgmtd(mgmtd, data_dir)

    async def body():
        from threefs.client.fs import AsyncClient, default_user
        user = default_user()
        if token:
            user.token = token
        async with AsyncClient(address, user=user) as c:
            layout = (await c.stat(path)).inode.layout
            layout.ClearField("chains")
            if chunk_size is not None:
                layout.chunk_size = parse_size(chunk_size)
            if stripe is not None:
                layout.stripe_size = stripe
            if table_id is not None:
                layout.table_id = table_id
            if table_version is not None:
                layout.table_version = table_version
            req = mp.SetAttrReq(base=c.meta.base(), path=_path(path), follow_last=True, layout=layout)
            return (await c.meta.call("SetAttr", req, mp.SetAttrRsp)).inode.layout

    lay = run(body())
    click.echo(f"{path}: table {lay.table_id} (version {lay.table_version or 'latest'}), chunk {lay.chunk_size}, "
               f"stripe {lay.stripe_size}")


def _orphans(address: str, token: str):
    from threefs.proto import meta_pb2 as mp
    return _call(address, token, "FindOrphanedChunks", lambda b: mp.FindOrphanedChunksReq(base=b),
                 mp.FindOrphanedChunksRsp, timeout=300.0)


@click.command("fsck")
@click.option("--chunks/--no-chunks", default=True, show_default=True,
              help="Also scan storage for chunks whose inode is gone.")
@json_option
@_meta_cmd
def fsck(chunks, as_json, token, data_dir, mgmtd) -> None:
    """Check the namespace (entries, nlink, cycles, sessions) and, optionally, leaked chunks; exit 1 on errors."""
    from threefs.proto import meta_pb2 as mp
    address = resolve_mgmtd(mgmtd, data_dir)

    async def body():
        rsp = await _call(address, token, "Fsck", lambda b: mp.FsckReq(base=b), mp.FsckRsp, timeout=300.0)
        orphans = await _orphans(address, token) if chunks else None
        return rsp, orphans

    rsp, orphans = run(body())
    errors = list(rsp.errors)
    if orphans is not None:
        errors += [f"chunk {o.chunk_id.hex()} on target {o.target_id} belongs to missing inode {o.inode:#x}"
                   for o in orphans.chunks]
        errors += [f"target {t} could not be scanned" for t in orphans.unreachable_targets]
    report = {"inodes": rsp.inodes, "dirents": rsp.dirents, "directories": rsp.directories, "files": rsp.files,
              "symlinks": rsp.symlinks, "gc_pending": rsp.gc_pending, "sessions": rsp.sessions,
              "chunks_scanned": orphans.scanned_chunks if orphans else None,
              "orphaned_chunks": len(orphans.chunks) if orphans else None, "errors": errors}
    if as_json:
        print_json(report)
    else:
        for k, v in report.items():
            if k != "errors" and v is not None:
                click.echo(f"{k:>16}: {v}")
        for e in errors:
            click.echo(f"ERROR {e}")
        click.echo("clean" if not errors else f"{len(errors)} problem(s) found")
    if errors:
        sys.exit(1)


@click.command("find-orphaned-chunks")
@json_option
@_meta_cmd
def find_orphaned_chunks(as_json, token, data_dir, mgmtd) -> None:
    """List chunks on storage targets whose inode no longer exists."""
    rsp = run(_orphans(resolve_mgmtd(mgmtd, data_dir), token))
    rows = [{"target_id": o.target_id, "chain_id": o.chain_id, "chunk_id": o.chunk_id.hex(), "inode": o.inode,
             "size": o.size} for o in rsp.chunks]
    if as_json:
        return print_json({"scanned_targets": rsp.scanned_targets, "scanned_chunks": rsp.scanned_chunks,
                           "unreachable_targets": list(rsp.unreachable_targets), "orphaned": rows})
    click.echo(f"scanned {rsp.scanned_chunks} chunks on {rsp.scanned_targets} targets; {len(rows)} orphaned")
    if rsp.unreachable_targets:
        click.echo(f"unreachable targets: {', '.join(map(str, rsp.unreachable_targets))}")
    if rows:
        print_table(["TargetId", "ChainId", "ChunkId", "Inode", "Size"],
                    [[r["target_id"], r["chain_id"], r["chunk_id"], f"{r['inode']:#x}", r["size"]] for r in rows])


@click.command("gc-list")
@click.option("--limit", type=int, default=1000, show_default=True)
@json_option
@_meta_cmd
def gc_list(limit, as_json, token, data_dir, mgmtd) -> None:
    """List the GC queue: unlinked files and removed trees waiting for collection."""
    from threefs.meta.gc_queue import parse_entry_name
    from threefs.proto import meta_pb2 as mp
    rsp = run(_call(resolve_mgmtd(mgmtd, data_dir), token, "GcList", lambda b: mp.GcListReq(base=b, limit=limit),
                    mp.GcListRsp))
    now = time.time()
    rows = []
    for e, i in zip(rsp.entries, rsp.inodes, strict=True):
        kind, due_us, inode = parse_entry_name(e.name)
        rows.append({"entry": e.name, "kind": kind, "inode": inode, "length": i.length,
                     "due_in_s": round(due_us / 1e6 - now, 1), "removed_by": e.gc_info.uid,
                     "orig_path": e.gc_info.orig_path})
    if as_json:
        return print_json({"entries": rows, "more": rsp.more})
    print_table(["Kind", "Inode", "Length", "DueIn(s)", "RemovedBy", "OrigPath"],
                [[r["kind"], f"{r['inode']:#x}", r["length"], r["due_in_s"], r["removed_by"], r["orig_path"]]
                 for r in rows])
    if rsp.more:
        click.echo(f"(more than {limit} entries)")


@click.command("gc-run")
@json_option
@_meta_cmd
def gc_run(as_json, token, data_dir, mgmtd) -> None:
    """Collect every due GC entry now (waits up to a minute); prints what was collected and what is left."""
    from threefs.proto import meta_pb2 as mp
    rsp = run(_call(resolve_mgmtd(mgmtd, data_dir), token, "GcRun", lambda b: mp.GcRunReq(base=b), mp.GcRunRsp,
                    timeout=120.0))
    if as_json:
        return print_json({"collected": rsp.collected, "pending": rsp.pending})
    click.echo(f"collected {rsp.collected}; {rsp.pending} entries still queued")


@click.command("session-list")
@click.argument("path", required=False)
@json_option
@_meta_cmd
def session_list(path, as_json, token, data_dir, mgmtd) -> None:
    """List write sessions (of PATH's file, or all) with their clients' last lease renewal."""
    from threefs.client.fs import AsyncClient, default_user
    from threefs.proto import meta_pb2 as mp
    address = resolve_mgmtd(mgmtd, data_dir)

    async def body():
        user = default_user()
        if token:
            user.token = token
        async with AsyncClient(address, user=user) as c:
            inode = (await c.stat(path)).st_ino if path else 0
            req = mp.ListSessionsReq(base=c.meta.base(), inode=inode, all=not path)
            return await c.meta.call("ListSessions", req, mp.ListSessionsRsp)

    rsp = run(body())
    leases = {c.client_id: c for c in rsp.clients}
    now_ms = time.time() * 1000
    rows = [{"inode": s.inode, "session": s.session_id.hex(), "client": s.client_id.hex(),
             "host": leases[s.client_id].hostname if s.client_id in leases else "",
             "age_s": round((now_ms - s.created_ms) / 1000, 1),
             "lease_age_s": round((now_ms - leases[s.client_id].renewed_ms) / 1000, 1)
             if s.client_id in leases else None} for s in rsp.sessions]
    if as_json:
        return print_json(rows)
    print_table(["Inode", "Session", "Client", "Host", "Age(s)", "LeaseAge(s)"],
                [[f"{r['inode']:#x}", r["session"], r["client"], r["host"], r["age_s"], r["lease_age_s"]]
                 for r in rows])


def register(admin: click.Group) -> None:
    for c in (set_layout, fsck, find_orphaned_chunks, gc_list, gc_run, session_list):
        admin.add_command(c)
