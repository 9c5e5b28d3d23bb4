"""`threefs admin offline-target | update-chain | rotate-lastsrv`: chain edits after failures (3FS admin_cli).

`offline-target` asks the storage node holding a target to take it offline (it stays offline until that
process restarts, then rejoins through resync); `update-chain CHAIN TARGET -m add` appends a target to a
chain (as OFFLINE: it syncs in), `-m remove` drops an OFFLINE one; `rotate-lastsrv CHAIN` gives up on a
chain's LASTSRV target (the last one that served, now gone) and promotes the next one.
"""
from __future__ import annotations

import click

from threefs.cli.common import data_dir_option, handle_errors, json_option, mgmtd_option, print_json, resolve_mgmtd, run
from threefs.common.errors import Code, make_error
from threefs.proto import common_pb2 as cpb


def _chain_line(c: cpb.ChainInfo) -> str:
    return f"chain {c.chain_id} v{c.chain_version}: " + "  ".join(
        f"{t.target_id}({cpb.PublicTargetState.Name(t.public_state)})" for t in c.targets)


def _chain_json(c: cpb.ChainInfo) -> dict:
    return {"chain_id": c.chain_id, "version": c.chain_version,
            "targets": [{"target_id": t.target_id, "public": cpb.PublicTargetState.Name(t.public_state)}
                        for t in c.targets]}


async def _with_mgmtd(address: str, fn):
    from threefs.mgmtd.client import MgmtdClient
    m = MgmtdClient(address)
    try:
        return await fn(m)
    finally:
        await m.close()


@click.command("offline-target")
@click.option("--target-id", type=int, required=True, help="The target to take offline.")
@click.option("--node-id", type=int, default=None, help="Its storage node (checked against routing info).")
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def offline_target(target_id, node_id, data_dir, mgmtd, as_json) -> None:
    """Take a storage target offline: it stops serving and mgmtd moves it to the end of its chain."""
    from threefs.net.rpc import RpcClient
    from threefs.proto import storage_pb2 as spb

    async def body(m):
        r = await m.refresh(force=True)
        t = r.targets.get(target_id)
        if t is None or not t.node_id:
            raise make_error(Code.TARGET_NOT_FOUND, f"target {target_id} is not known to mgmtd")
        if node_id is not None and t.node_id != node_id:
            raise make_error(Code.INVALID_ARGUMENT, f"target {target_id} is on node {t.node_id}, not {node_id}")
        rpc = RpcClient()
        try:
            rsp, _ = await rpc.call(r.target_address(target_id), "Storage.OfflineTarget",
                                    spb.OfflineTargetReq(target_id=target_id), spb.OfflineTargetRsp, timeout=10)
        finally:
            await rpc.close()
        return {"target_id": target_id, "node_id": t.node_id, "chain_id": t.chain_id,
                "local": cpb.LocalTargetState.Name(rsp.local_state)}

    res = run(_with_mgmtd(resolve_mgmtd(mgmtd, data_dir), body))
    if as_json:
        return print_json(res)
    click.echo(f"target {target_id} on node {res['node_id']} is now {res['local']}; mgmtd will take it out of "
               f"chain {res['chain_id']}")


@click.command("update-chain")
@click.argument("chain_id", type=int)
@click.argument("target_id", type=int)
@click.option("-m", "--mode", type=click.Choice(["add", "remove"]), required=True,
              help="add: append the target (as OFFLINE; it syncs in); remove: drop an OFFLINE target.")
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def update_chain(chain_id, target_id, mode, data_dir, mgmtd, as_json) -> None:
    """Add a target to a chain or remove an offline one (the chain version goes up by one)."""
    from threefs.proto import mgmtd_pb2 as mpb
    m_ = mpb.CHAIN_ADD if mode == "add" else mpb.CHAIN_REMOVE
    chain = run(_with_mgmtd(resolve_mgmtd(mgmtd, data_dir), lambda m: m.update_chain(chain_id, target_id, m_)))
    if as_json:
        return print_json(_chain_json(chain))
    click.echo(_chain_line(chain))


@click.command("rotate-lastsrv")
@click.argument("chain_id", type=int)
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def rotate_lastsrv(chain_id, data_dir, mgmtd, as_json) -> None:
    """Give up on a chain's LASTSRV target: the next target becomes LASTSRV (and serves once alive)."""
    chain = run(_with_mgmtd(resolve_mgmtd(mgmtd, data_dir), lambda m: m.rotate_lastsrv(chain_id)))
    if as_json:
        return print_json(_chain_json(chain))
    click.echo(_chain_line(chain))


def register(group: click.Group) -> None:
    for c in (offline_target, update_chain, rotate_lastsrv):
        group.add_command(c)
