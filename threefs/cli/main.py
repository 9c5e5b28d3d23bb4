"""The `threefs` command: services, the dev cluster, admin commands and file-system commands."""
from __future__ import annotations

from pathlib import Path

import click

from threefs import __version__
from threefs.cli import admin, cluster_cmds, fs_cmds, fuse_cmds, hdfs_cmds, s3_cmds
from threefs.cli.serve import run_service, setup_logging
from threefs.storage.map_cache import DEFAULT_CAPACITY


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="threefs")
def cli() -> None:
    """threefs: a Python implementation of the Fire-Flyer File System (3FS)."""


def _service_options(f):
    f = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")(f)
    f = click.option("--port", type=int, default=0, help="Port to listen on (0: any free port).")(f)
    f = click.option("--node-id", type=int, required=True, help="Node id of this process.")(f)
    f = click.option("--log-level", default="INFO", show_default=True)(f)
    f = click.option("--metrics-port", type=int, default=None,
                     help="Serve Prometheus metrics on this port (0: any free port).")(f)
    return f


@cli.command()
@_service_options
@click.option("--kv", default="rocksdb://./mgmtd-kv", show_default=True, help="KV engine URL for cluster state.")
@click.option("--heartbeat-fail-ms", type=int, default=60_000, show_default=True,
              help="A node silent this long is marked failed.")
@click.option("--check-interval", type=float, default=1.0, show_default=True,
              help="Seconds between failure checks and chain-state updates.")
@click.option("--bootstrap-ms", type=int, default=120_000, show_default=True,
              help="After becoming primary, chains wait this long (or until all their targets reported).")
@click.option("--lease-ms", type=int, default=60_000, show_default=True, help="Primary lease length.")
@click.option("--lease-extend-interval", type=float, default=10.0, show_default=True,
              help="Seconds between lease extensions.")
@click.option("--lease-suspicious-ms", type=int, default=20_000, show_default=True,
              help="Stop acting as primary this long before the lease ends.")
def mgmtd(host, port, node_id, log_level, metrics_port, kv, heartbeat_fail_ms, check_interval, bootstrap_ms, lease_ms,
          lease_extend_interval, lease_suspicious_ms) -> None:
    """Run the cluster manager (gRPC)."""
    from threefs.kv.engine import open_engine
    from threefs.mgmtd.service import MgmtdConfig, MgmtdServer
    setup_logging(log_level)
    config = MgmtdConfig(heartbeat_fail_ms=heartbeat_fail_ms, check_interval=check_interval,
                         bootstrap_ms=bootstrap_ms, lease_ms=lease_ms, lease_extend_interval=lease_extend_interval,
                         lease_suspicious_ms=lease_suspicious_ms)

    async def start():
        engine = open_engine(kv)
        server = MgmtdServer(engine, node_id=node_id, host=host, port=port, config=config)
        address = await server.start()

        async def stop():
            await server.stop()
            await engine.close()

        return address, stop

    run_service(start, "mgmtd", metrics_port)


@cli.command()
@_service_options
@click.option("--mgmtd", "mgmtd_address", required=True, envvar="THREEFS_MGMTD", help="mgmtd HOST:PORT.")
@click.option("--kv", default="rocksdb://./meta-kv", show_default=True, help="KV engine URL for metadata.")
@click.option("--chunk-size", type=int, default=4 << 20, show_default=True, help="Root directory chunk size.")
@click.option("--stripe", type=int, default=4, show_default=True, help="Root directory stripe (chains per file).")
@click.option("--table-id", type=int, default=1, show_default=True, help="Root directory chain table.")
@click.option("--heartbeat-interval", type=float, default=1.0, show_default=True)
@click.option("--gc-interval", type=float, default=0.5, show_default=True)
@click.option("--gc-delay", type=float, default=0.0, show_default=True,
              help="Seconds an unlinked file waits in the GC queue before its chunks are removed.")
@click.option("--client-timeout", type=float, default=60.0, show_default=True,
              help="Write sessions of a client silent this long are pruned.")
@click.option("--authenticate/--no-authenticate", default=False, show_default=True,
              help="Require a valid user token (from mgmtd's user table) on every request.")
@click.option("--inline-max", type=click.IntRange(0, 65536), default=8192, show_default=True,
              help="Files of at most this many bytes, written whole after create, keep their content in meta "
                   "instead of on storage (0: never).")
@click.option("--dir-lease-ttl", type=click.FloatRange(0, 3600), default=10.0, show_default=True,
              help="Seconds a mount that made a directory answers lookups of names it did not add there without "
                   "meta; another client adding a name recalls it first (0: no leases).")
def meta(host, port, node_id, log_level, metrics_port, mgmtd_address, kv, chunk_size, stripe, table_id, heartbeat_interval,
         gc_interval, gc_delay, client_timeout, authenticate, inline_max, dir_lease_ttl) -> None:
    """Run a metadata server (framed RPC)."""
    from threefs.common import placement
    from threefs.kv.engine import open_engine
    from threefs.meta.config import MetaConfig
    from threefs.meta.service import MetaServer
    from threefs.proto import common_pb2 as cpb
    setup_logging(log_level)
    layout = cpb.Layout(table_id=table_id, chunk_size=chunk_size, stripe_size=stripe)
    try:
        placement.validate_layout(layout)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None

    async def start():
        engine = open_engine(kv)
        config = MetaConfig(authenticate=authenticate, gc_interval=gc_interval, gc_delay=gc_delay,
                            client_timeout=client_timeout, inline_max=inline_max,
                            dir_lease_ttl=dir_lease_ttl)
        server = MetaServer(engine, node_id, mgmtd_address, host=host, port=port, default_layout=layout,
                            heartbeat_interval=heartbeat_interval, config=config)
        address = await server.start()

        async def stop():
            await server.stop()
            await engine.close()

        return address, stop

    run_service(start, "meta", metrics_port)


@cli.command()
@_service_options
@click.option("--mgmtd", "mgmtd_address", required=True, envvar="THREEFS_MGMTD", help="mgmtd HOST:PORT.")
@click.option("--target", "targets", multiple=True, required=True, metavar="ID=PATH",
              help="A target: its id and directory (repeat for each target).")
@click.option("--heartbeat-interval", type=float, default=1.0, show_default=True)
@click.option("--io-threads", type=int, default=8, show_default=True)
@click.option("--resync-rate-mb", type=float, default=0.0, show_default=True,
              help="Cap on resync traffic sent by this node, MiB/s (0: no cap).")
@click.option("--direct-reads/--buffered-reads", default=True, show_default=True,
              help="Read chunks that are not in the page cache past it (O_DIRECT: less CPU, nothing cached), "
                   "or through it (when clients re-read a working set that fits in this node's memory).")
@click.option("--mapped-chunks", type=click.IntRange(min=0), default=DEFAULT_CAPACITY, show_default=True,
              help="Chunks (of all this node's targets) kept mapped after they were written or read, so that "
                   "reads of them send from memory without mapping or checking them again (0: map, check and "
                   "unmap on every read). `threefs admin drop-cache` unmaps them all.")
@click.option("--reserved-space", type=click.IntRange(min=0), default=None,
              help="Bytes of each target's file system that chunk data may not take, so that metadata and chunk "
                   "removals can still be written when data has filled the disk [default: 5% of the file "
                   "system, at most 1 GiB; 0: none].")
def storage(host, port, node_id, log_level, metrics_port, mgmtd_address, targets, heartbeat_interval, io_threads,
            resync_rate_mb, direct_reads, mapped_chunks, reserved_space) -> None:
    """Run a storage server owning one or more targets (framed RPC)."""
    from threefs.storage.service import StorageConfig, StorageNode
    setup_logging(log_level)
    dirs: dict[int, str] = {}
    for t in targets:
        tid, sep, path = t.partition("=")
        if not sep or not tid.isdigit() or not path:
            raise click.BadParameter(f"expected ID=PATH, got {t!r}", param_hint="--target")
        Path(path).mkdir(parents=True, exist_ok=True)
        dirs[int(tid)] = path

    async def start():
        node = StorageNode(node_id, dirs, mgmtd_address, host=host, port=port, heartbeat_interval=heartbeat_interval,
                           io_threads=io_threads, config=StorageConfig(resync_rate=resync_rate_mb * (1 << 20),
                                                               direct_reads=direct_reads,
                                                               mapped_chunks=mapped_chunks,
                                                               reserved_space=reserved_space))
        address = await node.start()
        return address, node.stop

    run_service(start, "storage", metrics_port)


cluster_cmds.register(cli)
fs_cmds.register(cli)
fuse_cmds.register(cli)
cli.add_command(admin.admin)
hdfs_cmds.register(cli)
s3_cmds.register(cli)


def main() -> None:
    cli(prog_name="threefs")


if __name__ == "__main__":
    main()
