"""Practice reminders (issue #26): the reminders job with an injected clock against the suite's
database, then a real nats-server, the relay, a real `vocalborn consume notifications` process
and a real SMTP server on loopback deliver them.

A learner with a target of 5 attempts on 3 days a week who practised twice (40 %, flagged on the
therapist's dashboard) is reminded once the next day at their hour (one in-app notification, one
mail), however often and however concurrently the job runs; quiet hours hold the reminder until
the window ends; an unlinked or erased learner is not reminded, nor is one who has no hour set,
no target, or has met it."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update
from sqlmodel import select

from tests.events.support import NatsServer, RelayThread
from tests.learning.test_counted import GOOD, _attempt, _linked, _report
from tests.notify.support import MailServer, consumer_process, wait_mail
from tests.support import Api, recording, wait_until

pytestmark = pytest.mark.worker

REMINDER = "practice.reminder_due"


@pytest.fixture
def stack(api: Any, migrated: Any, tmp_path: Path) -> Any:
    nats = NatsServer(tmp_path / "nats").start()
    mail = MailServer(tmp_path / "mail").start()
    relay = RelayThread(nats.url).start()
    try:
        yield {"nats": nats, "mail": mail, "relay": relay, "env": migrated.env, "tmp": tmp_path}
    finally:
        relay.stop()
        mail.stop()
        nats.stop()


def _prefs(api: Api, user: dict[str, Any], **body: Any) -> None:
    r = api.client.put("/api/v1/me/notification-preferences", headers=user["headers"], json=body)
    assert r.status_code == 200, r.text


def _behind(api: Api, attempts: int = 2) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A linked learner with 5 attempts on 3 days a week as their target, who practised
    ``attempts`` times (each counted); their assignment's sentence."""
    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording())["sentence_id"]
    r = api.client.post(
        f"/api/v1/learners/{uid}/assignments",
        headers=therapist["headers"],
        json={"sentence_id": sid, "target_attempts_per_week": 5, "days_per_week": 3},
    )
    assert r.status_code == 201, r.text
    if attempts:
        session = api.session(learner)["practice_session_id"]
        for _ in range(attempts):
            _attempt(api, learner, session, sid, _report(72.0, GOOD))
    return therapist, learner, sid


def _at(day: datetime, hour: int, minute: int, zone: str) -> datetime:
    """``day``'s date at hour:minute in ``zone``, as UTC."""
    local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))
    return local.astimezone(ZoneInfo("UTC"))


def _run(now: datetime) -> int:
    from vocalborn.notify.reminders import write_reminders

    return write_reminders(now)


def _events(learner: dict[str, Any]) -> list[Any]:
    from vocalborn.db import open_session
    from vocalborn.events.models import EventOutbox

    with open_session() as db:
        rows = db.exec(select(EventOutbox).where(EventOutbox.event_type == REMINDER)).all()
        return [r for r in rows if r.subject["learner_id"] == learner["user"]["user_id"]]


def _rows(event_id: uuid.UUID) -> list[Any]:
    from vocalborn.db import open_session
    from vocalborn.notify.models import Notification

    with open_session() as db:
        return list(db.exec(select(Notification).where(Notification.event_id == event_id)))


def _prune(event_id: uuid.UUID) -> None:
    from sqlalchemy import delete

    from vocalborn.db import open_session
    from vocalborn.events.models import EventOutbox

    with open_session() as db:
        db.execute(delete(EventOutbox).where(EventOutbox.event_id == event_id))  # type: ignore[arg-type]
        db.commit()


def _monday_of_this_week() -> datetime:
    from vocalborn.learning.goals import week_start
    from vocalborn.sqltypes import utcnow

    return week_start(utcnow())


def _move_attempts(learner: dict[str, Any], to: datetime) -> None:
    """The learner's attempts as if made at ``to`` (the clock of the scenario)."""
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisTask

    with open_session() as db:
        db.execute(
            update(AIAnalysisTask)
            .where(AIAnalysisTask.user_id == uuid.UUID(learner["user"]["user_id"]))  # type: ignore[arg-type]
            .values(created_at=to)
        )
        db.commit()


def test_behind_learner_is_reminded_once_the_next_day_at_their_hour(api: Api, stack: Any) -> None:
    therapist, learner, _ = _behind(api)
    uid = learner["user"]["user_id"]
    zone = "Europe/Berlin"
    _prefs(api, learner, reminder_hour=18, timezone=zone)
    # the dashboard: 40 % and flagged
    rows = api.client.get("/api/v1/therapists/me/learners", headers=therapist["headers"]).json()
    row = next(r for r in rows if r["user_id"] == uid)
    # flagged below half the dose, except on the first day of the learner's week (goals.below_dose)
    monday_there = datetime.now(ZoneInfo(zone)).weekday() == 0
    assert row["dose_met_percent"] == 40.0 and row["flags"] == ([] if monday_there else ["below_dose"]), row
    assert row["flagged"] is not monday_there
    monday = _monday_of_this_week()
    _move_attempts(learner, monday + timedelta(hours=9))  # the scenario's clock: practised twice on Monday
    tuesday = monday + timedelta(days=1)
    assert _goals_at(uid, _at(tuesday, 18, 0, zone))["dose_met_percent"] == 40.0

    # (The suite's database is shared: other tests' learners may be reminded too, so each check
    # looks at this learner's events.)
    _run(_at(tuesday, 17, 59, zone))
    assert _events(learner) == [], "not before their hour"
    # At their hour, four jobs at once (two Beats racing, a retried job): one event.
    errors: list[BaseException] = []

    def job(minute: int) -> None:
        try:
            _run(_at(tuesday, 18, minute, zone))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(m,)) for m in (0, 0, 1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and len(_events(learner)) == 1
    # Later that day, and after a worker restart (a fresh run): nothing more.
    _run(_at(tuesday, 18, 5, zone))
    _run(_at(tuesday, 23, 59, zone))
    [event] = _events(learner)
    assert event.subject == {"learner_id": uid, "therapist_id": therapist["user"]["user_id"]}
    from vocalborn.notify.reminders import reminder_event_id

    assert event.event_id == reminder_event_id(uuid.UUID(uid), tuesday.date().isoformat())

    consumer = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        wait_until(
            lambda: (
                [n["type"] for n in api.client.get("/api/v1/notifications", headers=learner["headers"]).json()]
                == [REMINDER]
            ),
            30,
            what="the in-app reminder",
        )
        kept = wait_mail(stack["mail"], learner["email"], 2)  # the verification mail and the reminder
        assert "該練習囉：本週目標還沒完成" in [k.subject for k in kept]
        # The same day's reminder again (a run after the outbox row was pruned, a redelivery): no more.
        _run(_at(tuesday, 20, 0, zone))
        assert len(_events(learner)) == 1
        _prune(event.event_id)  # the relay prunes sent rows: the notification still tells
        _run(_at(tuesday, 21, 0, zone))
        assert _events(learner) == []
        time.sleep(1.5)
        rows_ = _rows(event.event_id)
        assert sorted(r.channel for r in rows_) == ["email", "in_app"]
        reminders = [m for m in stack["mail"].raw_to(learner["email"]) if "練習" in str(m["Subject"])]
        assert len(reminders) == 1
        told = api.client.get("/api/v1/notifications", headers=therapist["headers"]).json()
        assert REMINDER not in [n["type"] for n in told]  # the learner's alone (the therapist: the analyses)
    finally:
        consumer.stop()

    # The next day it may come again (still behind): another day, another event.
    _run(_at(tuesday + timedelta(days=1), 18, 0, zone))
    assert len(_events(learner)) == 1


def _goals_at(uid: str, now: datetime) -> dict[str, Any]:
    from vocalborn.db import open_session
    from vocalborn.learning.goals import learner_goals

    with open_session() as db:
        return learner_goals(db, uuid.UUID(uid), now=now)


def test_quiet_hours_hold_the_reminder_until_the_window_ends(api: Api, stack: Any) -> None:
    from vocalborn.db import open_session
    from vocalborn.notify.models import Notification
    from vocalborn.sqltypes import utcnow

    _, learner, _ = _behind(api, attempts=0)
    real = utcnow()
    start, end = f"{(real.hour - 1) % 24:02d}:00", f"{(real.hour + 2) % 24:02d}:00"
    _prefs(
        api,
        learner,
        reminder_hour=real.hour,
        timezone="UTC",
        quiet_hours={"start": start, "end": end},
        language="en",
    )
    _run(real)
    [event] = _events(learner)
    consumer = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        wait_until(lambda: len(_rows(event.event_id)) == 2, 30, what="the held rows")
        time.sleep(1.0)
        assert api.client.get("/api/v1/notifications", headers=learner["headers"]).json() == []
        assert len(stack["mail"].kept(learner["email"])) == 1  # the verification mail only
        assert all(r.available_at.hour == (real.hour + 2) % 24 and r.status == "waiting" for r in _rows(event.event_id))
        # the window ends (moved by moving the rows' release time): both go
        with open_session() as db:
            db.execute(
                update(Notification)
                .where(Notification.event_id == event.event_id)  # type: ignore[arg-type]
                .values(available_at=real - timedelta(minutes=1))
            )
            db.commit()
        kept = wait_mail(stack["mail"], learner["email"], 2)
        assert "Time to practise: this week's target is not met yet" in [k.subject for k in kept]  # in English
        listed = api.client.get("/api/v1/notifications", headers=learner["headers"]).json()
        assert [n["type"] for n in listed] == [REMINDER]
    finally:
        consumer.stop()


def test_never_after_unlinking_or_erasure(api: Api, stack: Any) -> None:
    from vocalborn.sqltypes import utcnow

    now = utcnow()
    # Unlinked before the job: nothing written.
    _, gone, _ = _behind(api)
    _prefs(api, gone, reminder_hour=0, timezone="UTC")
    assert api.client.delete(f"/api/v1/links/{gone['user']['user_id']}", headers=gone["headers"]).status_code == 204
    # Erased: nothing written (and nothing of them is left to write about).
    _, erased, _ = _behind(api)
    _prefs(api, erased, reminder_hour=0, timezone="UTC")
    assert api.client.delete("/api/v1/me", headers=erased["headers"]).status_code in (200, 204)
    # Written, then unlinked before the consumer handled it: no notification, no mail.
    _, late, _ = _behind(api)
    _prefs(api, late, reminder_hour=0, timezone="UTC")
    # No hour set, or no target, or the target met: not reminded either.
    _, no_hour, _ = _behind(api)
    _, no_target = _linked(api)
    _prefs(api, no_target, reminder_hour=0, timezone="UTC")
    _, met, _ = _behind(api, attempts=5)
    _prefs(api, met, reminder_hour=0, timezone="UTC")
    # Written, then reminders turned off before the consumer handled it: nothing either.
    _, off, _ = _behind(api)
    _prefs(api, off, reminder_hour=0, timezone="UTC")

    _run(now)
    assert _events(gone) == [] and _events(erased) == [] and _events(no_hour) == []
    assert _events(no_target) == [] and _events(met) == []
    [event] = _events(late)
    [turned_off] = _events(off)
    r = api.client.delete(f"/api/v1/links/{late['user']['user_id']}", headers=late["headers"])
    assert r.status_code == 204
    _prefs(api, off, reminder_hour=None)
    consumer = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        # a later event of the same learner (the stream is ordered per learner) is handled ...
        from vocalborn.db import open_session
        from vocalborn.events import outbox

        probes = []
        with open_session() as db:
            for who in (late, off):
                probe = outbox.add(
                    db,
                    "review.saved",
                    review_id=uuid.uuid4(),
                    task_id=uuid.uuid4(),
                    learner_id=uuid.UUID(who["user"]["user_id"]),
                    therapist_id=uuid.uuid4(),
                )
                probes.append(probe.event_id)
            db.commit()
        for probe_id in probes:
            wait_until(lambda p=probe_id: len(_rows(p)) == 2, 30, what="the later event handled")
        # ... and the reminders before them wrote nothing
        assert _rows(event.event_id) == [] and _rows(turned_off.event_id) == []
        assert [k for k in stack["mail"].kept(late["email"]) if "練習" in k.subject and "回覆" not in k.subject] == []
    finally:
        consumer.stop()


def test_a_real_worker_runs_the_beat_job(api: Api, migrated: Any) -> None:
    """The job Beat sends (``vocalborn.maintenance.write_practice_reminders``) is registered in a
    real `vocalborn worker` (through ``imports``, outside tasks/) and writes the reminder."""
    from tests.support import WorkerProcess
    from vocalborn.celery_app import REMINDERS_TASK, celery_app

    _, learner, _ = _behind(api, attempts=1)
    _prefs(api, learner, reminder_hour=0, timezone="UTC")
    worker = WorkerProcess(f"reminders{uuid.uuid4().hex[:6]}", migrated.data_dir).start()
    try:
        celery_app.send_task(REMINDERS_TASK)
        wait_until(lambda: len(_events(learner)) == 1, 60, what="the reminder written by the worker")
        assert "Traceback" not in worker.log(), worker.log()[-3000:]
    finally:
        worker.stop()
