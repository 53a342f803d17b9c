"""`vocalborn mail serve|list|show`: the local mail outbox (notify/mailbox.py)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import typer

from vocalborn.cli.common import DataDirOption, fail, load_settings, settings_for
from vocalborn.notify import mailbox
from vocalborn.supervision import watch_supervisor


def serve(
    port: Annotated[int, typer.Option(help="SMTP port on 127.0.0.1")] = 8025,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
) -> None:
    """Run the local SMTP server that keeps every mail under DATA_DIR/mail (vocalborn up runs it)."""
    import signal

    settings = load_settings()
    watch_supervisor()
    folder = mailbox.mail_dir(settings.data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    server = mailbox.controller(folder, port, host)
    try:
        server.start()
    except Exception as exc:
        fail(f"the mail outbox could not listen on {host}:{port}: {exc}")
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    typer.echo(f"mail outbox: smtp://{host}:{port} -> {folder}")
    try:
        while not stopping:
            time.sleep(0.5)
    finally:
        server.stop()


def list_(
    to: Annotated[str | None, typer.Option(help="only mails to this address")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
    data_dir: DataDirOption = None,
) -> None:
    """The mails the local mail outbox kept, newest first."""

    settings = settings_for(data_dir)
    folder = mailbox.mail_dir(settings.data_dir)
    if not folder.is_dir():
        fail(
            f"no mail outbox at {folder.resolve()}: point --data-dir at the folder `vocalborn up` uses "
            "(it keeps the mails there when SMTP_HOST is not set)"
        )
    kept = mailbox.list_mail(folder, limit, to)
    if not kept:
        typer.echo(f"no mail in {folder.resolve()}")
        return
    for k in kept:
        when = datetime.fromtimestamp(k.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{k.id}  {when}Z  to {k.to}  {k.subject}")


def show(
    mail_id: Annotated[str, typer.Argument(help="the id `vocalborn mail list` shows")],
    data_dir: DataDirOption = None,
) -> None:
    """One kept mail: its headers and text."""

    settings = settings_for(data_dir)
    found = mailbox.show(mailbox.mail_dir(settings.data_dir), mail_id)
    if found is None:
        fail(f"no mail {mail_id!r} in {mailbox.mail_dir(settings.data_dir)}")
    assert found is not None
    kept, body = found
    typer.echo(f"From:       {kept.sender}\nTo:         {kept.to}\nSubject:    {kept.subject}")
    typer.echo(f"Message-ID: {kept.message_id}\n\n{body}")
