"""`threefs up|down|status`: the dev cluster of real processes on loopback."""
from __future__ import annotations

import shlex
from pathlib import Path

import click

from threefs.cli.common import data_dir_option, handle_errors, json_option, print_json, print_table
from threefs.cli.devcluster import ClusterSpec, DevCluster


@click.command()
@data_dir_option
@click.option("--base-port", type=int, default=8000, show_default=True,
              help="First port: mgmtd, then storage nodes, then meta (0: any free ports).")
@click.option("--storage-nodes", type=int, default=3, show_default=True)
@click.option("--targets-per-node", type=int, default=3, show_default=True)
@click.option("--replicas", type=int, default=3, show_default=True)
@click.option("--chunk-size", type=int, default=4 << 20, show_default=True)
@click.option("--fuse/--no-fuse", default=True, show_default=True, help="Mount the file system (needs /dev/fuse).")
@click.option("--mountpoint", default="", help="Where to mount (default: DATA_DIR/mnt).")
@click.option("--s3/--no-s3", default=True, show_default=True, help="Start the S3 endpoint.")
@click.option("--hdfs/--no-hdfs", default=True, show_default=True, help="Start the WebHDFS endpoint.")
@click.option("--timeout", type=float, default=90, show_default=True, help="Seconds to wait for start-up.")
@json_option
@handle_errors
def up(data_dir, base_port, storage_nodes, targets_per_node, replicas, chunk_size, fuse, mountpoint, s3, hdfs,
       timeout, as_json) -> None:
    """Start a dev cluster (idempotent: a running cluster is reported, a stale one restarted)."""
    if replicas > storage_nodes:
        raise click.BadParameter(f"{replicas} replicas need at least {replicas} storage nodes", param_hint="--replicas")
    if storage_nodes * targets_per_node < replicas:
        raise click.BadParameter("not enough targets for one chain", param_hint="--targets-per-node")
    dc = DevCluster(data_dir)
    if not dc.procs:
        dc.spec = ClusterSpec(base_port=base_port, storage_nodes=storage_nodes, targets_per_node=targets_per_node,
                              replicas=replicas, chunk_size=chunk_size, fuse=fuse, mountpoint=mountpoint, s3=s3,
                              hdfs=hdfs)
    else:
        _check_same_spec(dc, base_port=base_port, storage_nodes=storage_nodes, targets_per_node=targets_per_node,
                         replicas=replicas, chunk_size=chunk_size, fuse=fuse, mountpoint=mountpoint, s3=s3, hdfs=hdfs)
    was_running = bool(dc.procs) and len(dc.running()) == len(dc.procs)
    st = dc.up(timeout=timeout)
    if as_json:
        print_json(st)
        return
    click.echo("threefs cluster " + ("already running" if was_running else "is up"))
    _print_status(st)
    # THREEFS_DATA_DIR: `threefs status` and `threefs down` find this cluster without --data-dir
    click.echo(f"\n  export THREEFS_MGMTD={st['mgmtd']} THREEFS_DATA_DIR={shlex.quote(st['data_dir'])}"
               "\n  threefs put FILE /FILE; threefs ls /; threefs status; threefs down")
    if st.get("s3"):
        click.echo(f"  AWS_ACCESS_KEY_ID={st['s3_access_key']} AWS_SECRET_ACCESS_KEY={st['s3_secret_key']} "
                   f"aws --endpoint-url {st['s3']} s3 ls")


def _check_same_spec(dc: DevCluster, **given) -> None:
    """An existing cluster keeps the shape it was created with: an option given on the command line that
    asks for another one is an error that says so, not silently ignored."""
    ctx = click.get_current_context()
    differ = []
    for name, value in given.items():
        if ctx.get_parameter_source(name) != click.core.ParameterSource.COMMANDLINE:
            continue
        saved = getattr(dc.spec, name)
        if name == "mountpoint":
            value, saved = str(Path(value).resolve()), str(Path(dc.mountpoint).resolve())
        if value != saved:
            flag = name.replace("_", "-")
            shown = (f"--{flag}" if saved else f"--no-{flag}") if isinstance(saved, bool) else f"--{flag} {saved}"
            differ.append(shown)
    if differ:
        raise click.UsageError(f"the cluster in {dc.data_dir} was created with {', '.join(differ)}; its shape "
                               f"is kept. Leave these options out, or use another --data-dir (or `threefs down` "
                               f"and remove {dc.data_dir}) for a cluster of another shape.")


@click.command()
@data_dir_option
@json_option
@handle_errors
def down(data_dir, as_json) -> None:
    """Stop every process of the dev cluster (data is kept)."""
    dc = DevCluster(data_dir)
    stopped = dc.down()
    if as_json:
        print_json({"stopped": stopped})
    else:
        click.echo(f"stopped {len(stopped)} processes" + (f": {', '.join(stopped)}" if stopped else ""))


@click.command()
@data_dir_option
@json_option
@handle_errors
def status(data_dir, as_json) -> None:
    """Show every process of the dev cluster and its endpoints."""
    dc = DevCluster(data_dir)
    if not dc.procs:
        if as_json:
            print_json({"data_dir": str(dc.data_dir), "running": False, "processes": []})
            return
        raise click.ClickException(f"no cluster in {dc.data_dir}; start one with `threefs up`")
    st = dc.status()
    if as_json:
        print_json(st)
    else:
        _print_status(st)


def _print_status(st: dict) -> None:
    click.echo(f"data dir: {st['data_dir']}")
    click.echo(f"mgmtd:    {st['mgmtd']}   routing version {st['routing_version']}, {st['chains']} chains")
    for key, label in (("mount", "mount:   "), ("s3", "s3:      "), ("webhdfs", "webhdfs: ")):
        if st.get(key):
            click.echo(f"{label} {st[key]}")
    click.echo(f"logs:     {st['data_dir']}/logs/")
    print_table(["Role", "NodeId", "Pid", "Address", "State"],
                [[p["role"], p["node_id"], p["pid"] or "-", p["address"], p["state"]] for p in st["processes"]])


def register(cli: click.Group) -> None:
    for c in (up, down, status):
        cli.add_command(c)
