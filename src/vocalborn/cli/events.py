"""``vocalborn events replay|rebuild``: the learner-activity projection from the event stream
(docs/EVENTS.md, "Replay")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from vocalborn.activity import projection as activity
from vocalborn.cli.common import fail, load_settings

PROJECTIONS = ("learner-activity",)


def _start(value: str) -> int | datetime:
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--from {value!r}: give a stream sequence (a number) or a date/time (2026-12-01, 2026-12-01T08:00Z)")
        raise
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def replay(
    start: Annotated[str, typer.Option("--from", help="stream sequence (number) or UTC date/time to start at")],
    source: Annotated[str, typer.Option(help="stream, or database (the event log) when the stream expired")] = "stream",
) -> None:
    """Apply the events from a point on to the learner-activity projection again (idempotent:
    analyses applied already are skipped)."""
    settings = load_settings()
    begin = _start(start)

    if source == "database":
        if isinstance(begin, int):
            fail("--source database takes a date/time, not a stream sequence")
        result = activity.replay_database(begin if isinstance(begin, datetime) else None)
    elif source == "stream":
        if not settings.nats_url:
            fail("NATS_URL is not set: the stream cannot be read (or use --source database)")
        assert settings.nats_url is not None
        result = activity.replay_stream(settings, settings.nats_url, begin)
    else:
        fail(f"--source {source!r}: stream or database")
        return
    typer.echo(f"replayed {result.messages} events from the {result.source}; {result.applied} applied")


def rebuild(
    projection: Annotated[str, typer.Argument(help="the projection: learner-activity")],
    source: Annotated[str, typer.Option(help="auto (the stream if it is complete), stream or database")] = "auto",
) -> None:
    """Empty a projection and build it again from every event."""
    settings = load_settings()
    if projection not in PROJECTIONS:
        fail(f"no projection named {projection}; there is: {', '.join(PROJECTIONS)}")
    if source not in ("auto", "stream", "database"):
        fail(f"--source {source!r}: auto, stream or database")

    try:
        result = activity.rebuild(settings, settings.nats_url, source)
    except ValueError as exc:
        fail(str(exc))
        return
    typer.echo(f"rebuilt {projection} from the {result.source}: {result.messages} events, {result.applied} applied")
