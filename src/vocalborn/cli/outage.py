"""`vocalborn tasks retry-failed` and `vocalborn tasks circuit`: the analysis-service outage tools
(issue #27; docs/OPERATIONS.md "AI outage")."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from vocalborn.auth import service as accounts
from vocalborn.auth.models import Role
from vocalborn.cli.common import fail, load_settings
from vocalborn.db import open_session
from vocalborn.errors import DomainError
from vocalborn.outage import bulk_retry
from vocalborn.outage.fallback import shared_circuit


def _when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{name}: not an ISO 8601 time: {value!r} (e.g. 2026-12-07T10:00:00Z)")
    return None  # unreachable: fail exits


def retry_failed(
    failed_from: Annotated[
        str, typer.Option("--failed-from", help="start of the window on the failure time (ISO 8601, with a zone)")
    ],
    admin: Annotated[
        str, typer.Option("--admin", help="the admin account this is done as (named in the learners' access logs)")
    ],
    failed_to: Annotated[
        str | None, typer.Option("--failed-to", help="end of the window, exclusive (default: now)")
    ] = None,
    reason: Annotated[
        str | None,
        typer.Option(
            "--reason",
            help="an error class (network, timeout, service, internal, time_limit, input) or words of the message",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only list what would be re-queued (do this first)")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the outcome as JSON")] = False,
) -> None:
    """Re-queue the failed tasks of a time window, by reason, as POST /api/v1/admin/tasks/retry does.

    Run it with --dry-run first: it lists the count and the task ids. A second run does not queue a
    task twice (a re-queued task is no longer failed)."""

    load_settings()
    start = _when(failed_from, "--failed-from")
    end = _when(failed_to, "--failed-to")
    assert start is not None
    with open_session() as db:
        user = accounts.get_user_by_email(db, admin)
        if user is None or user.role != Role.ADMIN:
            fail(f"--admin {admin}: no admin account has this email")
        assert user is not None
        try:
            outcome = bulk_retry.retry_failed(db, user, start, end, reason, dry_run)
        except DomainError as exc:
            fail(exc.message)
    if as_json:
        typer.echo(json.dumps(outcome.as_dict(), indent=2))
        return
    window = f"{outcome.failed_from.isoformat()} .. {outcome.failed_to.isoformat()}"
    what = f"reason {outcome.reason!r}" if outcome.reason else "any reason"
    more = " (more in the window: run again)" if outcome.truncated else ""
    if dry_run:
        typer.echo(f"dry run: {outcome.matched} failed tasks of {window}, {what}, would be re-queued{more}")
        for task_id in outcome.task_ids:
            typer.echo(f"  {task_id}")
        return
    typer.echo(f"re-queued {len(outcome.requeued)} of {outcome.matched} failed tasks of {window}, {what}{more}")
    for skipped in outcome.skipped:
        typer.echo(f"  skipped {skipped['task_id']}: {skipped['why']}")


def circuit(
    reset: Annotated[bool, typer.Option("--reset", help="close the circuit now (after the service is back)")] = False,
) -> None:
    """The remote analysis engine's circuit breaker, as the workers share it in Redis."""

    settings = load_settings()
    breaker = shared_circuit(settings)
    if reset:
        breaker.reset()
    state = breaker.state()
    typer.echo(
        f"remote analysis circuit: {'OPEN for ' + str(state['open_for_seconds']) + ' s' if state['open'] else 'closed'}; "
        f"{state['consecutive_failures']} consecutive failures (opens at {state['threshold']}); "
        f"fallback engine: {settings.ai_engine_fallback}"
    )
