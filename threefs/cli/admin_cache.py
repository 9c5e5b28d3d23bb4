"""`threefs admin drop-cache`: make every storage node let go of the chunk pages it keeps mapped.

A storage node keeps recently written and read chunks mapped (up to `--mapped-chunks`), so that a read
of them sends from memory without a fresh CRC check (threefs.storage.chunk_engine.read_view). The kernel
does not drop mapped pages on `echo 3 > /proc/sys/vm/drop_caches`, so a cold-read measurement first
asks the nodes to unmap them; the pages then go with the rest of the page cache.
"""
from __future__ import annotations

import click

from threefs.cli.common import data_dir_option, handle_errors, json_option, mgmtd_option, print_json, resolve_mgmtd, run
from threefs.common.errors import Code, FSError, make_error
from threefs.proto import common_pb2 as cpb


@click.command("drop-cache")
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def drop_cache(data_dir, mgmtd, as_json) -> None:
    """Unmap the chunks every storage node keeps mapped, so that dropping the kernel's page cache
    (echo 3 > /proc/sys/vm/drop_caches on each storage machine, afterwards) makes reads cold."""
    from threefs.mgmtd.client import MgmtdClient
    from threefs.net.rpc import RpcClient
    from threefs.proto import storage_pb2 as spb

    async def body() -> list[dict]:
        m, rpc = MgmtdClient(resolve_mgmtd(mgmtd, data_dir)), RpcClient()
        try:
            nodes = [n for n in (await m.refresh(force=True)).nodes_of_type(cpb.STORAGE)
                     if n.status == cpb.HEARTBEAT_CONNECTED and n.address]
            if not nodes:
                raise make_error(Code.UNAVAILABLE, "mgmtd knows no connected storage node")
            out = []
            for n in nodes:
                try:
                    rsp, _ = await rpc.call(n.address, "Storage.DropMappings", spb.DropMappingsReq(),
                                            spb.DropMappingsRsp, timeout=10)
                    out.append({"node_id": n.node_id, "address": n.address, "released": rsp.released})
                except FSError as e:
                    out.append({"node_id": n.node_id, "address": n.address, "error": str(e)})
            return out
        finally:
            await rpc.close()
            await m.close()

    res = run(body())
    if as_json:
        print_json(res)
    else:
        for r in res:
            what = f"failed: {r['error']}" if "error" in r else f"released {r['released']} chunk mappings"
            click.echo(f"storage node {r['node_id']} ({r['address']}): {what}")
    failed = [r for r in res if "error" in r]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(res)} storage nodes did not answer; their pages stay mapped")


def register(group: click.Group) -> None:
    group.add_command(drop_cache)
