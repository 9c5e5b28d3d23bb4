"""`threefs admin user-*`: the user and token table held by mgmtd (3FS admin_cli user commands)."""
from __future__ import annotations

import click

from threefs.cli.common import data_dir_option, handle_errors, json_option, mgmtd_option, print_json, print_table, \
    resolve_mgmtd, run


def token_option(f):
    return click.option("--token", "admin_token", envvar="THREEFS_TOKEN", default="",
                        help="Admin token of the caller (not needed before the first admin exists).")(f)


def _groups(text: str) -> list[int]:
    try:
        return [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of gids", param_hint="--groups") from None


async def _with_users(address: str, fn):
    from threefs.mgmtd.users import UsersClient
    users = UsersClient(address)
    try:
        return await fn(users)
    finally:
        await users.close()


def _row(u, show_token: bool) -> dict:
    return {"uid": u.uid, "name": u.name, "gid": u.gid, "groups": list(u.groups), "root": u.root, "admin": u.admin,
            "token": u.token if show_token else "***"}


@click.command("user-add")
@click.argument("uid", type=int)
@click.argument("name")
@click.option("--gid", type=int, default=None, help="Primary group (default: the uid).")
@click.option("--groups", default="", help="Supplementary groups, comma-separated gids.")
@click.option("--root", is_flag=True, help="The user may act as any uid (e.g. a FUSE daemon).")
@click.option("--admin", is_flag=True, help="The user may manage users and run admin requests.")
@token_option
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def user_add(uid, name, gid, groups, root, admin, admin_token, data_dir, mgmtd, as_json) -> None:
    """Add a user; prints the token it authenticates with."""
    gids = _groups(groups)
    user = run(_with_users(resolve_mgmtd(mgmtd, data_dir), lambda c: c.add_user(
        uid, name, gid=gid, groups=gids, root=root, admin=admin, admin_token=admin_token)))
    if as_json:
        return print_json(_row(user, True))
    click.echo(user.token)


@click.command("user-list")
@click.option("--show-tokens", is_flag=True, help="Print tokens instead of ***.")
@token_option
@data_dir_option
@mgmtd_option
@json_option
@handle_errors
def user_list(show_tokens, admin_token, data_dir, mgmtd, as_json) -> None:
    """List users."""
    users = run(_with_users(resolve_mgmtd(mgmtd, data_dir), lambda c: c.list_users(admin_token)))
    rows = [_row(u, show_tokens) for u in users]
    if as_json:
        return print_json(rows)
    print_table(["Uid", "Name", "Gid", "Groups", "Root", "Admin", "Token"],
                [[r["uid"], r["name"], r["gid"], ",".join(map(str, r["groups"])), r["root"], r["admin"], r["token"]]
                 for r in rows])


@click.command("user-set-token")
@click.argument("uid", type=int)
@click.option("--new-token", default="", help="The token to set (default: generate one).")
@token_option
@data_dir_option
@mgmtd_option
@handle_errors
def user_set_token(uid, new_token, admin_token, data_dir, mgmtd) -> None:
    """Replace a user's token; prints the new token (the old one stops working once meta caches expire)."""
    user = run(_with_users(resolve_mgmtd(mgmtd, data_dir), lambda c: c.set_token(uid, new_token, admin_token)))
    click.echo(user.token)


@click.command("user-remove")
@click.argument("uid", type=int)
@token_option
@data_dir_option
@mgmtd_option
@handle_errors
def user_remove(uid, admin_token, data_dir, mgmtd) -> None:
    """Remove a user (its token stops working once meta caches expire)."""
    run(_with_users(resolve_mgmtd(mgmtd, data_dir), lambda c: c.remove_user(uid, admin_token)))
    click.echo(f"removed user {uid}")


def register(admin: click.Group) -> None:
    for c in (user_add, user_list, user_set_token, user_remove):
        admin.add_command(c)
