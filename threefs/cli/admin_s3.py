"""`threefs admin s3-key-add USER`: S3 access keys that act as a threefs user."""
from __future__ import annotations

import click

from threefs.cli.admin_users import _with_users, token_option
from threefs.cli.common import data_dir_option, handle_errors, json_option, mgmtd_option, print_json, resolve_mgmtd, run


@click.command("s3-key-add")
@click.argument("user")
@click.option("--access-key", default="", help="Access key id (default: generated).")
@click.option("--secret-key", default="", help="Secret key (default: generated).")
@token_option
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def s3_key_add(user, access_key, secret_key, admin_token, data_dir, mgmtd, as_json) -> None:
    """Create an S3 access key for USER (a uid or user name); prints ACCESS_KEY SECRET_KEY."""
    async def body(c):
        if user.isdigit():
            uid = int(user)
        else:
            match = [u for u in await c.list_users(admin_token=admin_token) if u.name == user]
            if not match:
                raise click.ClickException(f"no user named {user!r}")
            uid = match[0].uid
        return await c.add_s3_key(uid, access_key, secret_key, admin_token=admin_token)

    key = run(_with_users(resolve_mgmtd(mgmtd, data_dir), body))
    if as_json:
        return print_json({"access_key": key.access_key, "secret_key": key.secret_key, "uid": key.uid})
    click.echo(f"{key.access_key} {key.secret_key}")


def register(admin: click.Group) -> None:
    admin.add_command(s3_key_add)
