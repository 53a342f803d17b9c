"""Applying events to the learner-activity projection, and rebuilding it.

What counts is what the goals count (learning/goals.py, practice/counting.py): an analysis that
succeeded and whose result ``counted``; its day is the UTC day the analysis was asked for
(the task's ``created_at``), its minutes the recording's duration. The events carry ids only, so
applying ``analysis.succeeded`` reads the task, its result and its recording by the event's ids;
an analysis whose rows are gone (the account was erased) adds nothing, and ``account.erased``
removes the learner's rows. Each analysis is applied once (``learner_activity_attempts`` keyed by
task id), so a redelivered or replayed event changes nothing: the projection depends only on the
set of events applied, which is why a rebuild equals the live one.

Sources of a rebuild: the stream (from its first message), or, when the stream no longer reaches
back to its first message (retention dropped some), the database's own event log
(``ai_analysis_task_events``, the ``succeeded`` rows): the same function applied to the same tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from vocalborn.activity.models import LearnerActivityAttempt, LearnerActivityDay
from vocalborn.db import open_session
from vocalborn.events.catalogue import SUBJECT_PREFIX
from vocalborn.events.consumer import ConsumerSpec, Event, register
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.states import TaskStatus

if TYPE_CHECKING:
    from vocalborn.config import Settings
    from vocalborn.events.consumer import Event

log = logging.getLogger(__name__)

NAME = "learner-activity"
EVENT_TYPES = ("analysis.succeeded", "account.erased")


def _attempt(db: Session, task_id: uuid.UUID) -> tuple[uuid.UUID, date, float, bool] | None:
    row = db.exec(
        select(
            AIAnalysisTask.user_id,
            AIAnalysisTask.created_at,
            PracticeRecord.audio_duration_seconds,
            AIAnalysisResult.counted,
        )
        .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .where(AIAnalysisTask.task_id == task_id, AIAnalysisTask.status == TaskStatus.SUCCESS.value)
    ).first()
    if row is None:
        return None
    learner, created_at, seconds, counted = row
    return learner, created_at.date(), float(seconds), bool(counted)


def apply_succeeded(db: Session, task_id: uuid.UUID, event_id: uuid.UUID) -> bool:
    """Apply one analysis (in ``db``'s transaction; the caller commits). False: nothing to do."""
    if db.get(LearnerActivityAttempt, task_id) is not None:
        return False
    found = _attempt(db, task_id)
    if found is None:
        return False
    learner, day, seconds, counted = found
    db.add(
        LearnerActivityAttempt(
            task_id=task_id,
            learner_id=learner,
            day=day,
            seconds=seconds,
            counted=counted,
            event_id=event_id,
            applied_at=utcnow(),
        )
    )
    if counted:
        db.flush()  # the attempt first: a concurrent apply of the same task fails here
        changed = db.execute(
            update(LearnerActivityDay)
            .where(col(LearnerActivityDay.learner_id) == learner, col(LearnerActivityDay.day) == day)
            .values(
                attempts=col(LearnerActivityDay.attempts) + 1,
                seconds=col(LearnerActivityDay.seconds) + seconds,
            )
        )
        if getattr(changed, "rowcount", 0) == 0:
            db.add(LearnerActivityDay(learner_id=learner, day=day, attempts=1, seconds=seconds))
    return True


def forget(db: Session, learner: uuid.UUID) -> None:
    db.execute(delete(LearnerActivityAttempt).where(col(LearnerActivityAttempt.learner_id) == learner))
    db.execute(delete(LearnerActivityDay).where(col(LearnerActivityDay.learner_id) == learner))


def handle(event: Event) -> None:
    """The ``learner-activity`` consumer's handler (idempotent)."""

    with open_session() as db:
        if event.type == "analysis.succeeded":
            apply_succeeded(db, event.ids("task_id"), uuid.UUID(event.id))
        elif event.type == "account.erased":
            forget(db, event.ids("user_id"))
        else:
            return
        try:
            db.commit()
        except IntegrityError:  # a competing worker applied the same analysis first
            db.rollback()


def clear(db: Session) -> None:
    db.execute(delete(LearnerActivityAttempt))
    db.execute(delete(LearnerActivityDay))


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def streak_at(days: set[date], today: date) -> int:
    """Consecutive days with an attempt that counts, ending today (or yesterday when today has
    none yet), as learning/goals.streak_days counts it."""
    day = today if today in days else today - timedelta(days=1)
    n = 0
    while day in days:
        n += 1
        day -= timedelta(days=1)
    return n


def snapshot(db: Session, learner: uuid.UUID | None = None) -> list[tuple[str, str, int, float]]:
    """Every day row (learner, day, attempts, seconds rounded to ms), sorted: what tests compare."""
    stmt = select(LearnerActivityDay)
    if learner is not None:
        stmt = stmt.where(LearnerActivityDay.learner_id == learner)
    return sorted(
        (str(r.learner_id), r.day.isoformat(), r.attempts, round(r.seconds, 3)) for r in db.exec(stmt) if r.attempts
    )


def learner_activity(db: Session, learner: uuid.UUID, days: int, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    today = now.date()
    rows = {
        r.day: r
        for r in db.exec(
            select(LearnerActivityDay).where(
                LearnerActivityDay.learner_id == learner, col(LearnerActivityDay.attempts) > 0
            )
        )
    }
    practised = set(rows)
    out = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        row = rows.get(day)
        out.append(
            {
                "day": day,
                "attempts": row.attempts if row else 0,
                "minutes": round((row.seconds if row else 0.0) / 60.0, 2),
                "streak_days": streak_at(practised, day) if day in practised else 0,
            }
        )
    return {"learner_id": learner, "streak_days": streak_at(practised, today), "days": out}


# --------------------------------------------------------------------------------------------
# replay and rebuild
# --------------------------------------------------------------------------------------------
@dataclass
class ReplayResult:
    source: str
    messages: int = 0
    applied: int = 0
    first_seq: int | None = None
    last_seq: int | None = None


async def _replay_stream(settings: Settings, nats_url: str, start: int | datetime | None) -> ReplayResult:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    out = ReplayResult("stream")
    nc = await nats.connect(nats_url, connect_timeout=5)
    try:
        js = nc.jetstream(timeout=10)
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            filter_subjects=[SUBJECT_PREFIX + t for t in EVENT_TYPES],
            inactive_threshold=120.0,  # an ephemeral consumer: JetStream drops it if this dies
            max_ack_pending=-1,
        )
        if isinstance(start, int):
            config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, start
        elif isinstance(start, datetime):
            config.deliver_policy = DeliverPolicy.BY_START_TIME
            config.opt_start_time = start
        else:
            config.deliver_policy = DeliverPolicy.ALL
        made = await js.add_consumer(settings.events_stream, config)  # the live consumer is not touched
        sub = await js.pull_subscribe_bind(durable=made.name, stream=settings.events_stream)
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    msgs = await sub.fetch(500, timeout=1)
                except (NatsTimeout, TimeoutError):
                    if (await sub.consumer_info()).num_pending == 0:
                        break
                    continue
                for msg in msgs:
                    seq = int(msg.metadata.sequence.stream)
                    out.first_seq = out.first_seq or seq
                    out.last_seq = seq
                    out.messages += 1
                    if await loop.run_in_executor(None, _apply_one, Event.parse(msg.data, msg.subject)):
                        out.applied += 1
                    await msg.ack()
        finally:
            with contextlib.suppress(Exception):
                await js.delete_consumer(settings.events_stream, made.name)
    finally:
        await nc.close()
    return out


def _apply_one(event: Event) -> bool:
    with open_session() as db:
        if event.type == "analysis.succeeded":
            done = apply_succeeded(db, event.ids("task_id"), uuid.UUID(event.id))
        elif event.type == "account.erased":
            forget(db, event.ids("user_id"))
            done = True
        else:
            return False
        db.commit()
        return done


def replay_stream(settings: Settings, nats_url: str, start: int | datetime | None) -> ReplayResult:
    """Apply the stream's events from ``start`` (a stream sequence, a moment, or the beginning)
    to the projection. Idempotent: applied analyses are skipped."""
    return asyncio.run(_replay_stream(settings, nats_url, start))


def stream_complete(settings: Settings, nats_url: str) -> bool:
    """Whether the stream still holds its first message (nothing dropped by retention)."""

    async def check() -> bool:
        import nats

        nc = await nats.connect(nats_url, connect_timeout=5)
        try:
            info = await nc.jetstream(timeout=10).stream_info(settings.events_stream)
            return int(info.state.first_seq) <= 1
        finally:
            await nc.close()

    return asyncio.run(check())


def replay_database(since: datetime | None = None) -> ReplayResult:
    """Apply the analyses the database's event log says succeeded (``ai_analysis_task_events``,
    in order), from ``since``: the source when the stream has expired."""

    out = ReplayResult("database")
    last = 0
    while True:
        with open_session() as db:
            stmt = select(AIAnalysisTaskEvent.event_id, AIAnalysisTaskEvent.task_id).where(
                AIAnalysisTaskEvent.event_type == "succeeded", col(AIAnalysisTaskEvent.event_id) > last
            )
            if since is not None:
                stmt = stmt.where(col(AIAnalysisTaskEvent.created_at) >= since)
            rows: Iterable[tuple[int | None, uuid.UUID]] = db.exec(
                stmt.order_by(col(AIAnalysisTaskEvent.event_id)).limit(1000)
            ).all()
            rows = list(rows)
            if not rows:
                return out
            for event_id, task_id in rows:
                out.messages += 1
                if apply_succeeded(db, task_id, uuid.uuid5(uuid.NAMESPACE_OID, f"task-event-{event_id}")):
                    out.applied += 1
                db.flush()
            db.commit()
            last = int(rows[-1][0] or 0)


def rebuild(settings: Settings, nats_url: str | None, source: str = "auto") -> ReplayResult:
    """Empty the projection and apply every event again, from the stream when it is complete
    (or ``source`` says so), else from the database's event log."""

    if source == "auto":
        source = "stream" if nats_url and stream_complete(settings, nats_url) else "database"
    with open_session() as db:
        clear(db)
        db.commit()
    if source == "stream":
        if not nats_url:
            raise ValueError("NATS_URL is not set: the stream cannot be read")
        return replay_stream(settings, nats_url, None)
    return replay_database()


def _register() -> None:
    register(
        ConsumerSpec(
            name=NAME,
            event_types=EVENT_TYPES,
            handler=handle,
            description="the learner-activity projection (attempts and minutes per day)",
        )
    )


_register()
