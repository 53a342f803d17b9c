"""The `vocalborn` command: run the stack or any one process, migrate, manage users, analyse.

One module per command family; this file makes them one command, in the order that
``vocalborn --help`` lists them:

- ``run``: migrate, api, worker, beat, relay, flower (one process each)
- ``up``: all of them together, with a bundled Redis if none is configured
- ``engine``: analyze, sample-audio (the analysis engine, no server)
- ``client``: submit, history (a client of a running API)
- ``accounts``: users create|link, storage rotate
- ``common``: what they share (settings that fail in one line, migrations)

Importing it stays cheap: the commands import what they need when they run.
"""

from __future__ import annotations

import typer

from vocalborn.cli import accounts, client, engine, run, up
from vocalborn.cli.common import run_migrations

__all__ = ["app", "main", "run_migrations"]

app = typer.Typer(
    help="VocalBorn Tasks: asynchronous speech-practice analysis.", no_args_is_help=True, add_completion=False
)
users_app = typer.Typer(help="Manage accounts (admins are created here only).", no_args_is_help=True)
app.add_typer(users_app, name="users")
storage_app = typer.Typer(help="Stored recordings: encryption at rest.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")

for command in (run.migrate, run.api, run.worker, run.beat, run.relay, run.flower, up.up, engine.analyze):
    app.command()(command)
app.command("sample-audio")(engine.sample_audio)
app.command()(client.submit)
app.command()(client.history)
users_app.command("create")(accounts.users_create)
users_app.command("link")(accounts.users_link)
storage_app.command("rotate")(accounts.storage_rotate)


def main() -> None:
    app()
