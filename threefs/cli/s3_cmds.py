"""`threefs s3 serve`: the S3-compatible endpoint over the file-system namespace."""
from __future__ import annotations

import click

from threefs.cli.common import sweep_options
from threefs.cli.serve import run_service, setup_logging


@click.group("s3")
def s3() -> None:
    """S3-compatible endpoint."""


@s3.command("serve")
@click.option("--mgmtd", "mgmtd_address", required=True, envvar="THREEFS_MGMTD", help="mgmtd HOST:PORT.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=9000, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--token", envvar="THREEFS_TOKEN", default="",
              help="Admin token the gateway resolves access keys with (not needed before an admin exists).")
@click.option("--region", default="us-east-1", show_default=True, help="Region the endpoint reports and accepts.")
@click.option("--min-part-size", type=int, default=5 << 20, show_default=True,
              help="Smallest multipart part (all but the last); S3 uses 5 MiB.")
@click.option("--domain", "domains", multiple=True,
              help="Serve virtual-hosted-style requests (Host: BUCKET.DOMAIN) for this domain (repeatable); "
                   "path-style requests keep working.")
@sweep_options
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port (0: any).")
@click.option("--log-level", default="INFO", show_default=True)
def serve(mgmtd_address, host, port, token, region, min_part_size, domains, sweep_interval, sweep_stale_after,
          metrics_port, log_level) -> None:
    """Serve S3 (SigV4) with buckets as top-level directories; prints READY s3 HOST:PORT."""
    from threefs.gateway.s3.app import S3Gateway
    setup_logging(log_level)

    async def start():
        gw = S3Gateway(mgmtd_address, token=token, region=region, min_part_size=min_part_size,
                       domains=tuple(domains), sweep_interval=sweep_interval, stale_after=sweep_stale_after)
        address = await gw.start(host, port)
        return address, gw.stop

    run_service(start, "s3", metrics_port)


def register(cli: click.Group) -> None:
    cli.add_command(s3)
