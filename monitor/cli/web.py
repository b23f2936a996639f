"""The web application and its accounts: `provenance web`, `provenance users add|list|remove`.

Thin wrappers over `monitor.web.app` and `monitor.jobs.accounts`.  Before
any account exists the web application binds to 127.0.0.1 only and says so.
"""

from __future__ import annotations

import getpass
import sys

import click

from monitor.cli.app import App, InputProblem, SetupProblem, pass_app, print_json, shown_markup, stderr, stdout
from monitor.cli.store import iso
from storage import NotFound, StorageError
from storage.records import ROLES


def _read_password(name: str) -> str:
    """The new password: asked twice on a terminal, else the first line of standard input."""
    if sys.stdin.isatty():
        first = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("the same password again: ") != first:
            raise InputProblem("the two passwords differ; nothing was changed")
        return first
    line = sys.stdin.readline()
    if not line:
        raise InputProblem("no password on standard input (give it on the first line)")
    return line.rstrip("\r\n")


@click.group()
def users() -> None:
    """Accounts of the web application (`provenance web`).

    Once one exists, every page and action needs a login. Roles: viewer
    (reads, queries, exports), editor (also watches, claims, merges,
    tracking, alerts), admin (also deletions and accounts).

    \b
    Example:
      provenance users add alice --role admin
    """


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@click.option("--author", metavar="NAME", help="Who adds it (default: your user name).")
@pass_app
def users_add(app: App, name: str, role: str, author: str | None) -> None:
    """Add an account; the password is read from standard input (twice on a terminal).

    It is stored only as an Argon2id hash.

    \b
    Example:
      provenance users add alice --role admin
      printf '%s\\n' "$PASSWORD" | provenance users add bot --role viewer
    """
    from monitor.jobs.accounts import AccountError, add_user
    from monitor.jobs.corrections import Actor

    password = _read_password(name)
    try:
        user = add_user(app.workspace(), Actor.at_cli(author), name, password, role)
    except (AccountError, StorageError) as exc:
        raise InputProblem(str(exc)) from exc
    stdout.print(f"user {shown_markup(user.name)} added ({user.role})", highlight=False)


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead.")
@pass_app
def users_list(app: App, as_json: bool) -> None:
    """List the accounts and their roles.

    \b
    Example:
      provenance users list
    """
    found = app.workspace().repository.list_users()
    if as_json:
        print_json([{"id": u.id, "name": u.name, "role": u.role, "created_at": iso(u.created_at),
                     "created_by": u.created_by} for u in found])
        return
    if not found:
        stdout.print("no accounts: the web application serves 127.0.0.1 only, without login")
    for u in found:
        stdout.print(f"{shown_markup(u.name)}  {u.role}  added {u.created_at:%Y-%m-%d} by {shown_markup(u.created_by)}",
                     highlight=False)


@users.command("remove")
@click.argument("name")
@click.option("--author", metavar="NAME", help="Who removes it (default: your user name).")
@pass_app
def users_remove(app: App, name: str, author: str | None) -> None:
    """Remove an account; its sessions end at once (its changes stay in the audit trail).

    \b
    Example:
      provenance users remove alice
    """
    from monitor.jobs.accounts import remove_user
    from monitor.jobs.corrections import Actor

    try:
        remove_user(app.workspace(), Actor.at_cli(author), name)
    except NotFound as exc:
        raise InputProblem(str(exc)) from exc
    stdout.print(f"user {shown_markup(name)} removed")


@click.command()
@click.option("--host", metavar="HOST", help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", type=int, metavar="PORT", help="Port to listen on (default: [web] port, 8765).")
@pass_app
def web(app: App, host: str | None, port: int | None) -> None:
    """Serve the investigator's workspace in a browser until stopped (Ctrl-C).

    Drop a video or paste a URL for its report, follow watches and their
    polls, search posts and footage, correct and delete with a trail, track
    footage and read alerts, export evidence bundles. Once an account exists
    (`provenance users add`) every page needs a login; before, the server
    listens on 127.0.0.1 only. Behind a TLS proxy set [web] https = true.

    \b
    Example:
      provenance web
      provenance web --host 0.0.0.0 --port 8080
    """
    import uvicorn

    from monitor.web.app import create_app
    from monitor.web.security import is_loopback

    settings = app.config.section("web")
    host, port = host or settings["host"], port or int(settings["port"])
    ws = app.workspace()
    if ws.repository.count_users() == 0:
        if not is_loopback(host):
            raise SetupProblem(f"no accounts yet, so the web application serves this machine only: add one with "
                               f"`provenance users add NAME --role admin` before listening on {host}")
        stderr.print("warning: no accounts yet: serving 127.0.0.1 only, and anyone on this machine can change the "
                     "store; add one with `provenance users add NAME --role admin`")
    stderr.print(f"serving http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(create_app(ws), host=host, port=port, log_level="info", proxy_headers=True,
                forwarded_allow_ips="127.0.0.1", server_header=False)
