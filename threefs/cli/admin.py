"""`threefs admin ...`: cluster inspection and configuration (names follow 3FS's admin_cli)."""
from __future__ import annotations

import csv
import time

import click

from threefs.cli.common import (data_dir_option, handle_errors, json_option, mgmtd_option, print_json, print_table,
                                resolve_mgmtd, run)
from threefs.proto import common_pb2 as cpb
from threefs.proto import meta_pb2 as mp


def _state(v: int, enum) -> str:
    name = enum.Name(v)
    return name.replace("LOCAL_", "").replace("PUBLIC_", "")


async def _routing(address: str):
    from threefs.mgmtd.client import MgmtdClient
    m = MgmtdClient(address)
    try:
        return await m.refresh(force=True)
    finally:
        await m.close()


@click.group()
def admin() -> None:
    """Cluster administration."""


def _cmd(f):
    return admin.command()(data_dir_option(mgmtd_option(json_option(handle_errors(f)))))


@_cmd
def list_nodes(data_dir, mgmtd, as_json) -> None:
    """List the nodes known to mgmtd."""
    r = run(_routing(resolve_mgmtd(mgmtd, data_dir)))
    now = time.time() * 1000
    rows = [{"id": n.node_id, "type": cpb.NodeType.Name(n.type), "status": cpb.NodeStatus.Name(n.status),
             "hostname": n.hostname, "pid": n.pid, "address": n.address,
             "last_heartbeat_s": round((now - n.last_heartbeat_ms) / 1000, 1) if n.last_heartbeat_ms else None}
            for n in sorted(r.nodes.values(), key=lambda n: n.node_id)]
    if as_json:
        return print_json(rows)
    print_table(["Id", "Type", "Status", "Hostname", "Pid", "Address", "LastHeartbeat(s ago)"],
                [list(x.values()) for x in rows])


def _chain_status(chain: cpb.ChainInfo) -> str:
    serving = sum(t.public_state == cpb.SERVING for t in chain.targets)
    if serving == len(chain.targets):
        return "SERVING"
    if serving == 0:
        return "UNAVAILABLE"
    if any(t.public_state == cpb.SYNCING for t in chain.targets):
        return "SYNCING"
    return f"SERVING({serving}/{len(chain.targets)})"


@_cmd
def list_chains(data_dir, mgmtd, as_json) -> None:
    """List chains with each target's public and local state."""
    r = run(_routing(resolve_mgmtd(mgmtd, data_dir)))
    tables: dict[int, list[str]] = {}
    for tid, versions in r.tables.items():
        for v, t in versions.items():
            for c in t.chain_ids:
                tables.setdefault(c, []).append(f"{tid}@{v}")
    rows = []
    for c in sorted(r.chains.values(), key=lambda c: c.chain_id):
        targets = [{"target_id": t.target_id, "public": _state(t.public_state, cpb.PublicTargetState),
                    "local": _state(r.targets[t.target_id].local_state, cpb.LocalTargetState)
                    if t.target_id in r.targets else "UNKNOWN"} for t in c.targets]
        rows.append({"chain_id": c.chain_id, "tables": tables.get(c.chain_id, []), "version": c.chain_version,
                     "status": _chain_status(c), "targets": targets})
    if as_json:
        return print_json(rows)
    print_table(["ChainId", "ChainTables", "ChainVersion", "Status", "Targets"],
                [[x["chain_id"], ",".join(x["tables"]), x["version"], x["status"],
                  "  ".join(f"{t['target_id']}({t['public']}-{t['local']})" for t in x["targets"])] for x in rows])


@_cmd
def list_chain_tables(data_dir, mgmtd, as_json) -> None:
    """List chain tables and their versions."""
    r = run(_routing(resolve_mgmtd(mgmtd, data_dir)))
    rows = []
    for tid in sorted(r.tables):
        for v in sorted(r.tables[tid]):
            t = r.tables[tid][v]
            replicas = {len(r.chains[c].targets) for c in t.chain_ids if c in r.chains}
            rows.append({"table_id": tid, "version": v, "chains": len(t.chain_ids),
                         "replicas": ",".join(map(str, sorted(replicas))), "desc": t.desc})
    if as_json:
        return print_json(rows)
    print_table(["ChainTableId", "ChainTableVersion", "ChainCount", "ReplicaCount", "Desc"],
                [list(x.values()) for x in rows])


@_cmd
def list_targets(data_dir, mgmtd, as_json) -> None:
    """List targets with their chain, role, states and node."""
    r = run(_routing(resolve_mgmtd(mgmtd, data_dir)))
    rows = []
    for t in sorted(r.targets.values(), key=lambda t: (t.chain_id, t.target_id)):
        role = ""
        if t.chain_id in r.chains:
            serving = r.serving(t.chain_id)
            if serving and t.target_id == serving[0]:
                role = "HEAD"
            elif serving and t.target_id == serving[-1]:
                role = "TAIL"
            elif t.target_id in serving:
                role = "MIDDLE"
        rows.append({"target_id": t.target_id, "chain_id": t.chain_id or None, "role": role,
                     "public": _state(t.public_state, cpb.PublicTargetState),
                     "local": _state(t.local_state, cpb.LocalTargetState), "node_id": t.node_id,
                     "disk_index": t.disk_index, "used_size": t.used_size})
    if as_json:
        return print_json(rows)
    print_table(["TargetId", "ChainId", "Role", "PublicState", "LocalState", "NodeId", "DiskIndex", "UsedSize"],
                [list(x.values()) for x in rows])


@admin.command("query-chunk")
@click.argument("path")
@click.argument("index", type=click.IntRange(min=0), default=0)
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def query_chunk(path, index, data_dir, mgmtd, as_json) -> None:
    """Show every replica's versions and checksum of chunk INDEX of file PATH."""
    from threefs.client.file_io import FileIO
    from threefs.client.fs import AsyncClient
    from threefs.common import placement

    async def body():
        async with AsyncClient(resolve_mgmtd(mgmtd, data_dir)) as c:
            st = await c.stat(path)
            if st.inode.type != mp.FILE:
                raise ValueError(f"{path} is not a regular file: query-chunk shows the chunks of a file")
            fio = FileIO(st.inode, c.mgmtd, c.storage)
            chain_id = fio.chain_of(index)
            cid = placement.chunk_id(st.inode.id, index)
            chain = c.mgmtd.routing.chain(chain_id)
            out = []
            for t in chain.targets:
                try:
                    rsp = await c.storage.query_chunk(t.target_id, cid)
                    m = rsp.meta
                    out.append({"target_id": t.target_id, "public": _state(t.public_state, cpb.PublicTargetState),
                                "found": rsp.found, "commit_ver": m.commit_ver, "update_ver": m.update_ver,
                                "chain_ver": m.chain_ver, "size": m.size, "checksum": f"{m.checksum:08x}"
                                if rsp.found else None})
                except OSError as e:
                    out.append({"target_id": t.target_id, "public": _state(t.public_state, cpb.PublicTargetState),
                                "found": False, "error": str(e)})
            return {"path": path, "inode": st.inode.id, "index": index, "chunk_id": cid.hex(), "chain_id": chain_id,
                    "chain_version": chain.chain_version, "inline": st.inode.inline, "replicas": out}

    res = run(body())
    if as_json:
        return print_json(res)
    if res["inline"]:
        click.echo(f"{path}: its content is kept in meta (a small file, inline): storage holds no chunk of it")
    click.echo(f"chunk {res['chunk_id']} (inode {res['inode']:#x} index {index}) on chain {res['chain_id']} "
               f"v{res['chain_version']}")
    print_table(["TargetId", "PublicState", "Found", "CommitVer", "UpdateVer", "ChainVer", "Size", "Checksum"],
                [[x["target_id"], x["public"], x["found"], x.get("commit_ver"), x.get("update_ver"),
                  x.get("chain_ver"), x.get("size"), x.get("checksum") or x.get("error")] for x in res["replicas"]])


def _read_csv(path: str) -> list[list[str]]:
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(x.strip() for x in r)]
    if not rows:
        raise click.BadParameter(f"{path} is empty")
    return rows


@admin.command("upload-chains")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@data_dir_option
@mgmtd_option
@handle_errors
def upload_chains(csv_file, data_dir, mgmtd) -> None:
    """Create chains from a 3FS-style CSV: header `ChainId,TargetId,TargetId,...`, one chain per row."""
    rows = _read_csv(csv_file)
    if not rows[0][0].strip().lower().startswith("chainid"):
        raise click.BadParameter("the first line must be the header ChainId,TargetId,...")
    chains = []
    for i, r in enumerate(rows[1:], start=2):
        try:
            ids = [int(x) for x in r if x.strip()]
        except ValueError:
            raise click.BadParameter(f"line {i}: ids must be integers: {r}") from None
        info = cpb.ChainInfo(chain_id=ids[0])
        info.targets.extend(cpb.ChainTarget(target_id=t) for t in ids[1:])
        chains.append(info)

    async def body():
        from threefs.mgmtd.client import MgmtdClient
        m = MgmtdClient(resolve_mgmtd(mgmtd, data_dir))
        try:
            return await m.set_chains(chains)
        finally:
            await m.close()

    version = run(body())
    click.echo(f"uploaded {len(chains)} chains (routing version {version})")


@admin.command("upload-chain-table")
@click.argument("table_id", type=int)
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--desc", default="", help="Description of the table.")
@data_dir_option
@mgmtd_option
@handle_errors
def upload_chain_table(table_id, csv_file, desc, data_dir, mgmtd) -> None:
    """Create a new version of chain table TABLE_ID from a CSV with header `ChainId`."""
    rows = _read_csv(csv_file)
    if rows[0][0].strip().lower() != "chainid":
        raise click.BadParameter("the first line must be the header ChainId")
    try:
        chain_ids = [int(r[0]) for r in rows[1:]]
    except ValueError:
        raise click.BadParameter("chain ids must be integers") from None

    async def body():
        from threefs.mgmtd.client import MgmtdClient
        m = MgmtdClient(resolve_mgmtd(mgmtd, data_dir))
        try:
            return await m.set_chain_table(cpb.ChainTable(table_id=table_id, chain_ids=chain_ids, desc=desc))
        finally:
            await m.close()

    click.echo(f"chain table {table_id} is at version {run(body())}")


from threefs.cli import admin_cache, admin_chains, admin_meta, admin_s3, admin_users  # noqa: E402 - this group's command modules

for _module in (admin_chains, admin_meta, admin_users, admin_s3, admin_cache):
    _module.register(admin)
