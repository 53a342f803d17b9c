"""The `vocalborn` command: run the stack or any one process, migrate, manage users, analyse.

One module per command family; this file makes them one command, in the order that
``vocalborn --help`` lists them:

- ``run``: migrate, api, worker, beat, relay, consume, flower (one process each)
- ``up``: all of them together, with a bundled Redis if none is configured
- ``control``: status, stop (of the ``up`` on a data folder; its lock and state file)
- ``engine``: analyze, sample-audio (the analysis engine, no server)
- ``client``: submit, history (a client of a running API); ``reports``: report, drills (the same)
- ``accounts``: users create|link|set-role, storage rotate|rotate-key
- ``mail``: mail serve|list|show (the local mail outbox)
- ``backup``: backup, restore (database, recordings and keys in one archive)
- ``outage``: tasks retry-failed|circuit (outages of the analysis service)
- ``events``: events replay|rebuild (the learner-activity projection)
- ``common``: what they share (settings that fail in one line, migrations)

Importing it stays cheap: a command's module is imported only when that command runs or shows its
own ``--help`` (``cli/lazy.py``); ``vocalborn --help`` reads the docstrings from the source.
"""

from __future__ import annotations

import typer

from vocalborn.cli.common import load_settings, run_migrations
from vocalborn.cli.lazy import Table, lazy_group

__all__ = ["app", "main", "run_migrations"]

# Each command: its name, its module and its function (imported when it runs).
COMMANDS: Table = {
    "migrate": ("vocalborn.cli.run", "migrate"),
    "api": ("vocalborn.cli.run", "api"),
    "worker": ("vocalborn.cli.run", "worker"),
    "beat": ("vocalborn.cli.run", "beat"),
    "relay": ("vocalborn.cli.run", "relay"),
    "consume": ("vocalborn.cli.run", "consume"),
    "flower": ("vocalborn.cli.run", "flower"),
    "up": ("vocalborn.cli.up", "up"),
    "status": ("vocalborn.cli.control", "status"),
    "stop": ("vocalborn.cli.control", "stop"),
    "analyze": ("vocalborn.cli.engine", "analyze"),
    "sample-audio": ("vocalborn.cli.engine", "sample_audio"),
    "submit": ("vocalborn.cli.client", "submit"),
    "history": ("vocalborn.cli.client", "history"),
    "report": ("vocalborn.cli.reports", "report"),
    "drills": ("vocalborn.cli.reports", "drills"),
    "backup": ("vocalborn.cli.backup", "backup"),
    "restore": ("vocalborn.cli.backup", "restore"),
}
USERS: Table = {
    "create": ("vocalborn.cli.accounts", "users_create"),
    "link": ("vocalborn.cli.accounts", "users_link"),
    "set-role": ("vocalborn.cli.accounts", "users_set_role"),
}
MAIL: Table = {
    "serve": ("vocalborn.cli.mail", "serve"),
    "list": ("vocalborn.cli.mail", "list_"),
    "show": ("vocalborn.cli.mail", "show"),
}
STORAGE: Table = {
    "rotate": ("vocalborn.cli.accounts", "storage_rotate"),
    "rotate-key": ("vocalborn.cli.accounts", "storage_rotate_key"),
}
TASKS: Table = {
    "retry-failed": ("vocalborn.cli.outage", "retry_failed"),
    "circuit": ("vocalborn.cli.outage", "circuit"),
}
EVENTS: Table = {
    "replay": ("vocalborn.cli.events", "replay"),
    "rebuild": ("vocalborn.cli.events", "rebuild"),
}

app = typer.Typer(
    cls=lazy_group(COMMANDS),
    help="VocalBorn Tasks: asynchronous speech-practice analysis.",
    no_args_is_help=True,
    add_completion=False,
)
# Commands that are clients of a running API, or use no settings: they run without a valid
# server configuration. Every other command checks it first, so a refused configuration (production
# without STORAGE_ENCRYPTION_KEYS, an example SECRET_KEY...) is one line on stderr, not a traceback.
_NO_SERVER_SETTINGS = frozenset({"submit", "history", "report", "drills", "sample-audio", "analyze"})


@app.callback()
def _check_settings(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in _NO_SERVER_SETTINGS and not ctx.resilient_parsing:
        load_settings()


users_app = typer.Typer(
    cls=lazy_group(USERS), help="Manage accounts (admins are created here only).", no_args_is_help=True
)
app.add_typer(users_app, name="users")
mail_app = typer.Typer(
    cls=lazy_group(MAIL), help="The local mail outbox (vocalborn up without SMTP_HOST).", no_args_is_help=True
)
app.add_typer(mail_app, name="mail")
storage_app = typer.Typer(cls=lazy_group(STORAGE), help="Stored recordings: encryption at rest.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
tasks_app = typer.Typer(
    cls=lazy_group(TASKS), help="Analysis tasks: outages of the analysis service.", no_args_is_help=True
)
app.add_typer(tasks_app, name="tasks")
events_app = typer.Typer(
    cls=lazy_group(EVENTS), help="Integration events: replay and rebuild projections.", no_args_is_help=True
)
app.add_typer(events_app, name="events")


def main() -> None:
    app()
