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

Importing it stays cheap: the commands import what they need when they run.
"""

from __future__ import annotations

import typer

from vocalborn.cli import accounts, backup, client, control, engine, events, mail, outage, reports, run, up
from vocalborn.cli.common import load_settings, run_migrations

__all__ = ["app", "main", "run_migrations"]

app = typer.Typer(
    help="VocalBorn Tasks: asynchronous speech-practice analysis.", no_args_is_help=True, add_completion=False
)
# Commands that are clients of a running API, or use no settings: they run without a valid
# server configuration. Every other command checks it first, so a refused configuration (production
# without STORAGE_ENCRYPTION_KEYS, an example SECRET_KEY...) is one line on stderr, not a traceback.
_NO_SERVER_SETTINGS = frozenset({"submit", "history", "report", "drills", "sample-audio", "analyze"})


@app.callback()
def _check_settings(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand not in _NO_SERVER_SETTINGS and not ctx.resilient_parsing:
        load_settings()


users_app = typer.Typer(help="Manage accounts (admins are created here only).", no_args_is_help=True)
app.add_typer(users_app, name="users")
mail_app = typer.Typer(help="The local mail outbox (vocalborn up without SMTP_HOST).", no_args_is_help=True)
app.add_typer(mail_app, name="mail")
storage_app = typer.Typer(help="Stored recordings: encryption at rest.", no_args_is_help=True)
app.add_typer(storage_app, name="storage")
tasks_app = typer.Typer(help="Analysis tasks: outages of the analysis service.", no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
events_app = typer.Typer(help="Integration events: replay and rebuild projections.", no_args_is_help=True)
app.add_typer(events_app, name="events")

for command in (
    run.migrate,
    run.api,
    run.worker,
    run.beat,
    run.relay,
    run.consume,
    run.flower,
    up.up,
    control.status,
    control.stop,
    engine.analyze,
):
    app.command()(command)
app.command("sample-audio")(engine.sample_audio)
app.command()(client.submit)
app.command()(client.history)
app.command()(reports.report)
app.command()(reports.drills)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
users_app.command("create")(accounts.users_create)
users_app.command("link")(accounts.users_link)
users_app.command("set-role")(accounts.users_set_role)
mail_app.command("serve")(mail.serve)
mail_app.command("list")(mail.list_)
mail_app.command("show")(mail.show)
storage_app.command("rotate")(accounts.storage_rotate)
storage_app.command("rotate-key")(accounts.storage_rotate_key)
tasks_app.command("retry-failed")(outage.retry_failed)
tasks_app.command("circuit")(outage.circuit)
events_app.command("replay")(events.replay)
events_app.command("rebuild")(events.rebuild)


def main() -> None:
    app()
