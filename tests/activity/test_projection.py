"""The learner-activity projection (event sourcing): built live by the ``learner-activity``
consumer from a real nats-server's stream, then rebuilt from the stream and from the database's
event log: the rebuilt projection equals the live one exactly, agrees with the goals' streak
(learning/goals.py) and with what counts (practice/counting.py); replay is idempotent; an erased
account leaves nothing; ``GET /api/v1/me/activity`` reads it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import seeding
from tests.events.support import ConsumerThread, NatsServer, RelayThread
from tests.services import ServicesUnderTest
from tests.support import Api, wait_until

pytestmark = pytest.mark.worker  # a nats-server and a consumer thread

SILENT = {"timing_analysis": {"attempt_speech_time": 0.1, "attempt_duration": 2.0}}
GOOD = {"timing_analysis": {"attempt_speech_time": 1.5, "attempt_duration": 2.0}}


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def _clear() -> None:
    from vocalborn.activity.projection import clear
    from vocalborn.db import open_session

    with open_session() as db:
        clear(db)
        db.commit()


def _practise(learners: int, per_learner: int, now: datetime) -> list[uuid.UUID]:
    """Analyses that succeeded over the last days (some not counting: silent), each with its
    task event and its outbox event, committed together as the worker does."""
    from vocalborn.db import open_session
    from vocalborn.events import outbox
    from vocalborn.practice import counting
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent

    ids = []
    with open_session() as db:
        for n in range(learners):
            user, sentence, session = seeding.learner_with_sentence(db, f"act{n}", "你好")
            db.flush()
            ids.append(user.user_id)
            for k in range(per_learner):
                record = seeding.record(db, session, sentence.sentence_id, user.user_id)
                record.audio_duration_seconds = 2.0 + k % 3
                # days 0..5 back, with a gap on day 3 for learners with an odd number
                back = k % 6 if n % 2 == 0 else [0, 1, 2, 4, 5, 0][k % 6]
                asked = now - timedelta(days=back, minutes=k)
                task = AIAnalysisTask(
                    celery_task_id=str(uuid.uuid4()),
                    practice_record_id=record.practice_record_id,
                    user_id=user.user_id,
                    status="success",
                    created_at=asked,
                    updated_at=asked,
                )
                db.add(task)
                db.flush()
                detail = SILENT if k % 5 == 4 else GOOD
                counted, reason = counting.decide(detail)
                db.add(
                    AIAnalysisResult(
                        task_id=task.task_id, counted=counted, not_counted_reason=reason, detailed_analysis=detail
                    )
                )
                db.add(AIAnalysisTaskEvent(task_id=task.task_id, event_type="succeeded", status="success"))
                outbox.add(
                    db,
                    "analysis.succeeded",
                    task_id=task.task_id,
                    learner_id=user.user_id,
                    practice_record_id=record.practice_record_id,
                )
        db.commit()
    return ids


def _snapshot(learners: list[uuid.UUID]) -> list[tuple[str, str, int, float]]:
    from vocalborn.activity.projection import snapshot
    from vocalborn.db import open_session

    with open_session() as db:
        return [row for learner in learners for row in snapshot(db, learner)]


def test_rebuilt_projection_equals_the_live_one(
    api: Api, migrated: ServicesUnderTest, nats_server: NatsServer, tmp_path: Path
) -> None:
    from vocalborn.activity import projection
    from vocalborn.db import open_session
    from vocalborn.learning.goals import streak_days
    from vocalborn.sqltypes import utcnow

    _clear()
    now = utcnow()
    learners = _practise(6, 15, now)
    from vocalborn.events.consumer import load_consumers

    spec = load_consumers()["learner-activity"]
    relay = RelayThread(nats_server.url).start()
    live = ConsumerThread(nats_server.url, spec).start()
    try:
        expected_rows = 6 * 15
        wait_until(
            lambda: live.runner is not None and live.runner.counters.handled >= expected_rows,
            60,
            what="the live projection",
        )
    finally:
        live.stop()
        relay.stop()
    live_view = _snapshot(learners)
    # What the goals count: 12 of 15 attempts count (every 5th is silent), minutes of those.
    assert sum(r[2] for r in live_view) == 6 * 12
    with open_session() as db:
        for learner in learners:
            view = projection.learner_activity(db, learner, 7, now)
            assert view["streak_days"] == streak_days(db, learner, now), "the goals count another streak"
        assert {projection.learner_activity(db, learners[0], 7, now)["streak_days"]} == {6}
        assert projection.learner_activity(db, learners[1], 7, now)["streak_days"] == 3  # the gap on day 3

    # a replay of everything again changes nothing (idempotent)
    again = projection.replay_stream(live.settings, nats_server.url, 1)
    assert again.messages >= expected_rows and again.applied == 0
    assert _snapshot(learners) == live_view

    # rebuild from the stream: equal
    result = projection.rebuild(live.settings, nats_server.url, "stream")
    assert result.source == "stream" and result.applied >= expected_rows
    assert _snapshot(learners) == live_view
    # rebuild from the database's event log (as when the stream expired), by the command: equal
    env = {**os.environ, **migrated.env, "NATS_URL": nats_server.url}
    out = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "events", "rebuild", "learner-activity", "--source", "database"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "from the database" in out.stdout
    assert _snapshot(learners) == live_view
    # auto: the stream is complete, so it is the source
    out = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "events", "rebuild", "learner-activity"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "from the stream" in out.stdout, out.stdout + out.stderr
    assert _snapshot(learners) == live_view
    # replay --from a date, and a bad --from
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocalborn.cli",
            "events",
            "replay",
            "--from",
            (now - timedelta(days=1)).date().isoformat(),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "0 applied" in out.stdout, out.stdout + out.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "events", "replay", "--from", "yesterday"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "--from" in bad.stderr


def test_erased_account_and_the_route(api: Api) -> None:
    from vocalborn.activity import projection
    from vocalborn.db import open_session
    from vocalborn.events.consumer import Event
    from vocalborn.sqltypes import utcnow

    now = utcnow()
    learner = api.register("learner")
    me = uuid.UUID(learner["user"]["user_id"])
    # the projection of a learner with rows, applied straight from the database's log
    others = _practise(1, 5, now)
    projection.replay_database(now - timedelta(days=10))
    assert _snapshot(others)
    r = api.client.get("/api/v1/me/activity?days=3", headers=learner["headers"])
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["learner_id"] == str(me) and len(body["days"]) == 3 and body["streak_days"] == 0
    assert all(d["attempts"] == 0 for d in body["days"])
    assert api.client.get("/api/v1/me/activity?days=0", headers=learner["headers"]).status_code == 422
    assert api.client.get("/api/v1/me/activity").status_code == 401
    erased = Event.parse(
        f'{{"id":"{uuid.uuid4()}","type":"account.erased","schema_version":1,"occurred_at":"2026-12-07T00:00:00Z",'
        f'"subject":{{"user_id":"{others[0]}"}}}}'.encode(),
        "vocalborn.events.account.erased",
    )
    projection.handle(erased)
    assert _snapshot(others) == []
    with open_session() as db:
        assert projection.learner_activity(db, others[0], 7, now)["streak_days"] == 0
