"""Shared CLI plumbing: finding the cluster, running async bodies, errors without tracebacks, output."""
from __future__ import annotations

import asyncio
import functools
import json
import os
import select
import signal
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from threefs.common.errors import FSError

DEFAULT_DATA_DIR = os.environ.get("THREEFS_DATA_DIR", str(Path.home() / ".threefs"))
console = Console()


def data_dir_option(f):
    return click.option("--data-dir", type=click.Path(file_okay=False), default=DEFAULT_DATA_DIR, show_default=True,
                        envvar="THREEFS_DATA_DIR", help="Directory holding the dev cluster's data and state.")(f)


def mgmtd_option(f):
    return click.option("--mgmtd", "mgmtd", envvar="THREEFS_MGMTD", default=None,
                        help="mgmtd address HOST:PORT (default: the dev cluster in --data-dir).")(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")(f)


def sweep_options(f):
    """--sweep-interval and --sweep-stale-after of a gateway (threefs.gateway.sweep)."""
    from threefs.gateway import sweep
    f = click.option("--sweep-stale-after", type=click.FloatRange(min=0), default=sweep.STALE_AFTER,
                     show_default=True, help="A temporary older than this, with no writer left, is swept.")(f)
    return click.option("--sweep-interval", type=click.FloatRange(min=0), default=sweep.SWEEP_INTERVAL,
                        show_default=True, help="Seconds between sweeps of upload temporaries left by gateways "
                        "that died mid-upload (0: off).")(f)


def resolve_mgmtd(mgmtd: str | None, data_dir: str | None = None) -> str:
    """The mgmtd address: explicit, $THREEFS_MGMTD, or the dev cluster's state file."""
    if mgmtd:
        return mgmtd
    state = Path(data_dir or DEFAULT_DATA_DIR) / "cluster.json"
    if state.exists():
        from threefs.cli.devcluster import DevCluster
        return DevCluster(state.parent).mgmtd_address
    raise click.UsageError("no cluster found: pass --mgmtd HOST:PORT, set THREEFS_MGMTD, "
                           f"or start one with `threefs up` (looked for {state})")


def fail(message: str, code: int = 1) -> None:
    click.echo(f"threefs: error: {message}", err=True)
    sys.exit(code)


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end was closed (poll reports an error on it)."""
    try:
        p = select.poll()
        p.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def handle_errors(fn):
    """Turn FSError/OSError/ValueError into a one-line message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except FSError as e:
            fail(f"{e.strerror}" + (f": {e.filename}" if e.filename else "") + f" [{e.code.name}]")
        except BrokenPipeError as e:
            if not _stdout_reader_gone():
                fail(str(e))
            # the reader left (`threefs ls | head`): stop quietly, as a tool killed by SIGPIPE does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no second error at exit
            sys.exit(128 + signal.SIGPIPE)
        except (OSError, ValueError, RuntimeError, TimeoutError) as e:
            fail(str(e))
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper


def run(coro):
    from threefs.net.rpc import install_uvloop
    install_uvloop()
    return asyncio.run(coro)


def print_table(columns: list[str], rows: list[list], title: str | None = None) -> None:
    table = Table(title=title, show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    console.print(table)


def print_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))
