"""Accounts and stored recordings: `vocalborn users create|link`, `vocalborn storage rotate|rotate-key`."""

from __future__ import annotations

from typing import Annotated

import typer

from vocalborn.auth import passwords, service
from vocalborn.auth.models import Role
from vocalborn.cli.common import DataDirOption, fail, load_settings, need_database, settings_for
from vocalborn.db import open_session
from vocalborn.storage import MissingKey, get_storage, rotation


def storage_rotate() -> None:
    """Re-encrypt every stored recording not written with the current key (STORAGE_ENCRYPTION_KEY_ID,
    default the last of STORAGE_ENCRYPTION_KEYS), plain files included. Safe to run again."""

    settings = load_settings()
    try:
        report = get_storage().rotate()
    except MissingKey as exc:
        fail(str(exc))
    typer.echo(
        f"{settings.storage_dir}: re-encrypted {report.reencrypted}, already current {report.already_current}, "
        f"failed {report.failed}"
    )
    if report.failed:
        raise typer.Exit(1)


def storage_rotate_key(
    wait: Annotated[
        bool, typer.Option("--wait", help="run in the foreground until done (default: in the background)")
    ] = False,
    status: Annotated[bool, typer.Option("--status", help="only show the progress of the last rotation")] = False,
) -> None:
    """Move every stored file to the newest key, in the background, while the service runs.

    Embedded default: a new key is generated in DATA_DIR/storage_keys; the old ones stay
    readable until every file is on the new one, then they are dropped. With
    STORAGE_ENCRYPTION_KEYS: add the new key and make it current first (restart), run this, and
    remove the old key when it says done. Progress is kept in DATA_DIR/storage-rotation.json:
    running it again after an interruption resumes."""
    import os
    import sys

    settings = load_settings()
    data_dir = settings.data_dir.resolve()
    current = rotation.read_progress(data_dir)
    if status:
        if current is None:
            typer.echo("no key rotation has run here")
            return
        running = current.state == "running" and rotation.alive(current.pid)
        state = current.line() + ("" if running or current.state != "running" else " (stopped: run it again to resume)")
        typer.echo(state)
        return
    if not wait:
        if current is not None and current.state == "running" and rotation.alive(current.pid):
            fail(f"a rotation is already running (pid {current.pid}): {current.line()}")
        argv = [sys.executable, "-m", "vocalborn.cli", "storage", "rotate-key", "--wait"]
        pid = rotation.start_in_background(data_dir, argv, dict(os.environ, DATA_DIR=str(data_dir)))
        typer.echo(
            f"re-encrypting in the background (pid {pid}); progress: {rotation.progress_path(data_dir)}, "
            f"log: {data_dir / rotation.LOG_FILE}; see it with `vocalborn storage rotate-key --status`"
        )
        return
    try:
        progress, resumed = rotation.begin(settings)
    except (MissingKey, RuntimeError) as exc:
        fail(str(exc))
    typer.echo(("resuming " if resumed else "starting ") + progress.line())
    done = rotation.run(settings, progress, report=lambda p: typer.echo(p.line()))
    if done.retired:
        typer.echo(f"old keys dropped from {data_dir / 'storage_keys'}: {', '.join(done.retired)}")
    elif settings.encryption_keys() and done.state == "done":
        typer.echo(f"every file is on key {done.target}; the other keys may now leave STORAGE_ENCRYPTION_KEYS")
    if done.state != "done":
        typer.echo(f"files that failed: {', '.join(done.failed_keys)}", err=True)
        raise typer.Exit(1)


def users_create(
    email: Annotated[str, typer.Option(help="login email")],
    name: Annotated[str, typer.Option(help="display name")],
    role: Annotated[str, typer.Option(help="learner, therapist or admin")] = "admin",
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="VOCALBORN_PASSWORD",
            help="or set VOCALBORN_PASSWORD",
        ),
    ] = "",
    data_dir: DataDirOption = None,
) -> None:
    """Create an account; the only way to make an admin."""

    if role not in {r.value for r in Role}:
        fail(f"role must be learner, therapist or admin, not {role!r}")

    weak = passwords.problem(password, [email, name])
    if weak is not None:
        fail(weak)
    need_database(settings_for(data_dir))
    with open_session() as db:
        try:
            user = service.create_user(db, email=email, password=password, name=name, role=Role(role))
        except service.EmailTaken:
            fail(f"an account with email {email} already exists")
    typer.echo(f"created {role} {user.email} ({user.user_id})")


def users_link(
    learner: Annotated[str, typer.Argument(help="learner's email")],
    therapist: Annotated[str, typer.Argument(help="therapist's email")],
    data_dir: DataDirOption = None,
) -> None:
    """Let a therapist read a learner's analyses."""

    need_database(settings_for(data_dir))
    with open_session() as db:
        lrn = service.get_user_by_email(db, learner)
        thr = service.get_user_by_email(db, therapist)
        if lrn is None or thr is None:
            fail("both accounts must exist")
        assert lrn is not None and thr is not None
        try:
            service.link_therapist(db, lrn, thr)
        except ValueError as exc:
            fail(str(exc))
    typer.echo(f"{learner} is now linked to therapist {therapist}")


def users_set_role(
    email: Annotated[str, typer.Argument(help="the account's email")],
    role: Annotated[str, typer.Argument(help="learner, therapist or admin")],
    data_dir: DataDirOption = None,
) -> None:
    """Change an account's role; its sessions end at once (it logs in again with the new role)."""

    if role not in {r.value for r in Role}:
        fail(f"role must be learner, therapist or admin, not {role!r}")
    need_database(settings_for(data_dir))
    with open_session() as db:
        user = service.get_user_by_email(db, email)
        if user is None:
            fail(f"no account with email {email}")
            return
        ended = service.change_role(db, user, Role(role))
    typer.echo(f"{email} is now {role}; {ended} session(s) ended")
