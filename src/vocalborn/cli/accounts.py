"""Accounts and stored recordings: `vocalborn users create|link` and `vocalborn storage rotate`."""

from __future__ import annotations

from typing import Annotated

import typer

from vocalborn.cli.common import fail, load_settings


def storage_rotate() -> None:
    """Re-encrypt every stored recording not written with the current key (STORAGE_ENCRYPTION_KEY_ID,
    default the last of STORAGE_ENCRYPTION_KEYS), plain files included. Safe to run again."""
    from vocalborn.storage import MissingKey, get_storage

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
) -> None:
    """Create an account; the only way to make an admin."""
    from vocalborn.auth import service
    from vocalborn.auth.models import Role
    from vocalborn.db import open_session

    if role not in {r.value for r in Role}:
        fail(f"role must be learner, therapist or admin, not {role!r}")
    from vocalborn.auth import passwords

    weak = passwords.problem(password, [email, name])
    if weak is not None:
        fail(weak)
    with open_session() as db:
        try:
            user = service.create_user(db, email=email, password=password, name=name, role=Role(role))
        except service.EmailTaken:
            fail(f"an account with email {email} already exists")
    typer.echo(f"created {role} {user.email} ({user.user_id})")


def users_link(
    learner: Annotated[str, typer.Argument(help="learner's email")],
    therapist: Annotated[str, typer.Argument(help="therapist's email")],
) -> None:
    """Let a therapist read a learner's analyses."""
    from vocalborn.auth import service
    from vocalborn.db import open_session

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
) -> None:
    """Change an account's role; its sessions end at once (it logs in again with the new role)."""
    from vocalborn.auth import service
    from vocalborn.auth.models import Role
    from vocalborn.db import open_session

    if role not in {r.value for r in Role}:
        fail(f"role must be learner, therapist or admin, not {role!r}")
    with open_session() as db:
        user = service.get_user_by_email(db, email)
        if user is None:
            fail(f"no account with email {email}")
            return
        ended = service.change_role(db, user, Role(role))
    typer.echo(f"{email} is now {role}; {ended} session(s) ended")
