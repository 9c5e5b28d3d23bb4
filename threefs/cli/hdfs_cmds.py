"""`threefs hdfs serve`: the WebHDFS-compatible REST gateway."""
from __future__ import annotations

import click

from threefs.cli.common import sweep_options
from threefs.cli.serve import run_service, setup_logging


@click.group()
def hdfs() -> None:
    """WebHDFS gateway commands."""


@hdfs.command()
@click.option("--mgmtd", "mgmtd_address", required=True, envvar="THREEFS_MGMTD", help="mgmtd HOST:PORT.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=9870, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--token", envvar="THREEFS_TOKEN", default="", help="The gateway's threefs token: a root user's "
              "when meta authenticates, and an admin's to read mgmtd's user table once an admin exists.")
@click.option("--default-user", default=None, help="Act as this threefs user for unknown or missing user.name "
              "(default: refuse them with SecurityException).")
@click.option("--require-token/--no-require-token", default=False, show_default=True,
              help="Require delegation=<threefs token> on every request (user.name alone is refused).")
@click.option("--list-limit", type=int, default=1000, show_default=True,
              help="Entries per LISTSTATUS_BATCH page (Hadoop's dfs.ls.limit).")
@sweep_options
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port (0: any).")
@click.option("--log-level", default="INFO", show_default=True)
def serve(mgmtd_address: str, host: str, port: int, token: str, default_user: str | None, require_token: bool,
          list_limit: int, sweep_interval: float, sweep_stale_after: float, metrics_port: int | None,
          log_level: str) -> None:
    """Serve the WebHDFS REST API (/webhdfs/v1) over the threefs namespace."""
    try:
        from threefs.gateway.hdfs.app import WebHdfsGateway
    except ImportError as e:
        raise click.ClickException(f"the WebHDFS gateway needs aiohttp (pip install 'threefs[hdfs]'): {e}") from None
    setup_logging(log_level)

    async def start():
        gw = WebHdfsGateway(mgmtd_address, token=token, default_user=default_user, require_token=require_token,
                            list_limit=list_limit, sweep_interval=sweep_interval, stale_after=sweep_stale_after)
        try:
            address = await gw.start(host, port)
        except BaseException:
            await gw.stop()
            raise
        return address, gw.stop

    run_service(start, "hdfs", metrics_port)


def register(cli: click.Group) -> None:
    """Add the `hdfs` group to the top-level command."""
    cli.add_command(hdfs)
