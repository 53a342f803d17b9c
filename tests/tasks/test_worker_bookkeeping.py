"""The worker's bookkeeping (issue 13): the pure claim decision, the one event message, the noop
engine, the cancel flag without a database read per step, the heartbeat that reads the flag and
notices a lost lease, and the unit of work.

In-process runner calls against the real database and Redis; no worker consumes this module's
messages while the assertions run."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from tests.support import Api

NOW = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)


def _row(**fields: Any) -> Any:
    base = {
        "status": "pending",
        "attempt": 0,
        "deliveries": 0,
        "heartbeat_at": None,
        "cancel_requested_at": None,
        "next_attempt_at": None,
        "worker_name": None,
    }
    return SimpleNamespace(**{**base, **fields})


def _settings() -> Any:
    return SimpleNamespace(task_lease_seconds=30.0, task_max_deliveries=3)


# --------------------------------------------------------------------------------------------
# the pure decision
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("row", "died", "action", "takeover"),
    [
        (None, False, "skip", False),
        (_row(status="success"), False, "skip", False),
        (_row(status="cancelled"), False, "skip", False),
        (_row(cancel_requested_at=NOW), False, "cancel", False),
        (_row(status="processing", heartbeat_at=NOW - timedelta(seconds=5), worker_name="a@h/1"), False, "skip", False),
        (_row(status="processing", heartbeat_at=NOW - timedelta(seconds=5), worker_name="a@h/1"), True, "start", True),
        (
            _row(status="processing", heartbeat_at=NOW - timedelta(seconds=60), worker_name="a@h/1"),
            False,
            "start",
            True,
        ),
        (_row(status="retry", next_attempt_at=NOW + timedelta(seconds=30)), False, "skip", False),
        (_row(status="retry", next_attempt_at=NOW + timedelta(seconds=0.5)), False, "start", False),
        (_row(deliveries=3), False, "fail", False),
        (_row(deliveries=2, attempt=2), False, "start", False),
    ],
)
def test_the_claim_decision_reads_only_the_row(row: Any, died: bool, action: str, takeover: bool) -> None:
    from vocalborn.tasks.worker.claim import decide_claim

    decision = decide_claim(row, NOW, "me@h/2", _settings(), previous_run_died=died)
    assert (decision.action.value, decision.takeover) == (action, takeover)


def test_the_claim_decision_says_why_in_the_words_operators_grep_for() -> None:
    from vocalborn.tasks.worker.claim import decide_claim

    assert decide_claim(_row(status="success"), NOW, "me", _settings()).note.startswith("is already success")
    assert (
        "early delivery dropped"
        in decide_claim(_row(status="retry", next_attempt_at=NOW + timedelta(minutes=1)), NOW, "me", _settings()).note
    )
    assert decide_claim(_row(deliveries=3), NOW, "me", _settings()).note.startswith("gave up after 3 deliveries")


# --------------------------------------------------------------------------------------------
# the one message
# --------------------------------------------------------------------------------------------
KEYS = [
    "event_id",
    "task_id",
    "event_type",
    "status",
    "progress",
    "current_step",
    "total_steps",
    "attempt",
    "worker_name",
    "message",
    "timestamp",
]


def test_the_three_builders_make_one_message_shape() -> None:
    from vocalborn.tasks import events

    event = SimpleNamespace(
        event_id=7,
        task_id=uuid.uuid4(),
        event_type="started",
        status="processing",
        progress=0,
        current_step=None,
        attempt=1,
        worker_name="w@h/1",
        message=None,
        created_at=NOW,
    )
    stored = events.stored_event_message(event)  # type: ignore[arg-type]  # a row's fields suffice
    assert list(stored) == KEYS and stored["timestamp"] == "2026-12-05T08:00:00Z" and stored["total_steps"] == 5
    assert events.event_message(event) == stored  # type: ignore[arg-type]  # the service's name for it
    progress = events.progress_message(task_id="t", progress=45, current_step="發音比對", attempt=2, worker_name="w")
    assert list(progress) == KEYS
    assert (progress["event_id"], progress["event_type"], progress["status"]) == (None, "progress", "processing")
    assert progress["timestamp"].endswith("Z")
    task = SimpleNamespace(
        task_id=event.task_id,
        status="pending",
        progress=0,
        current_step=None,
        attempt=0,
        worker_name=None,
        error_message=None,
    )
    snapshot = events.snapshot_message(task, 3)  # type: ignore[arg-type]  # a row's fields suffice
    assert list(snapshot) == [*KEYS, "last_event_id"] and snapshot["event_type"] == "snapshot"
    assert json.loads(json.dumps(snapshot))["last_event_id"] == 3


# --------------------------------------------------------------------------------------------
# the noop engine
# --------------------------------------------------------------------------------------------
def test_the_noop_engine_reports_five_steps_and_a_valid_report_at_once() -> None:
    from vocalborn.config import get_settings
    from vocalborn.tasks.worker import registry, runner

    steps: list[tuple[int, str]] = []
    settings = get_settings().model_copy(update={"ai_engine": "noop"})
    engine = registry.build_engine(settings)
    report = engine.analyze(b"", b"", {}, progress=lambda n, key: steps.append((n, key)))
    assert [n for n, _ in steps] == [1, 2, 3, 4, 5]
    runner.check_report(report)
    assert set(registry.ENGINE_KINDS) == {"local", "remote", "noop"}
    with pytest.raises(RuntimeError, match="unknown AI_ENGINE"):
        registry.build_engine(settings.model_copy(update={"ai_engine": "quantum"}))


# --------------------------------------------------------------------------------------------
# runs against the real database and Redis
# --------------------------------------------------------------------------------------------
def _claim(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> Any:
    from vocalborn.tasks.worker import runner

    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    claim = runner.claim_task(uuid.UUID(task_id), "test-worker/1")
    assert isinstance(claim, runner.Claim)
    return claim


def _state(task_id: uuid.UUID) -> tuple[str, int, int]:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

    with open_session() as db:
        task = db.get(AIAnalysisTask, task_id)
        assert task is not None
        results = len(db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == task_id)).all())
        return task.status, task.attempt, results


@pytest.fixture
def noop_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalborn.tasks.worker import registry, runner

    monkeypatch.setattr(runner, "analysis_engine", registry.NoopEngine)


def test_a_noop_run_succeeds_with_one_result_and_its_events(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], noop_engine: None
) -> None:
    from vocalborn.tasks.worker import runner

    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    assert runner.run_analysis(task_id, "test-worker/1") is runner.Outcome.SUCCEEDED
    assert _state(uuid.UUID(task_id)) == ("success", 1, 1)
    kinds = [e["event_type"] for e in api.events(learner, task_id)]
    assert kinds[:2] == ["submitted", "started"] and kinds[-1] == "succeeded"
    assert runner.run_analysis(task_id, "test-worker/1") is runner.Outcome.SKIPPED  # a duplicate delivery
    assert _state(uuid.UUID(task_id)) == ("success", 1, 1)


def test_a_cancel_stops_the_run_at_the_next_step_without_a_database_read(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], noop_engine: None
) -> None:
    from vocalborn.config import get_settings
    from vocalborn.tasks.worker import runner
    from vocalborn.tasks.worker.progress import Cancelled, ProgressReporter, RunWatch

    claim = _claim(api, therapist, learner)
    r = api.client.delete(f"/api/v1/tasks/analysis/{claim.task_id}", headers=learner["headers"])
    assert r.status_code == 200, r.text
    watch = RunWatch(claim, 60)  # never beats during the test: the flag comes through Redis
    reporter = ProgressReporter(claim, watch)
    reporter.settings = get_settings().model_copy(update={"progress_write_interval": 60.0})  # publish, no write
    with pytest.raises(Cancelled):
        reporter(1, "load_audio")
    reporter.settings = get_settings().model_copy(update={"progress_write_interval": 0.0})  # a write is due
    with pytest.raises(Cancelled):
        reporter(2, "extract_features")
    reporter.close()
    assert runner._finish_cancelled(claim) is runner.Outcome.CANCELLED
    assert _state(claim.task_id) == ("cancelled", claim.attempt, 0)


def test_the_heartbeat_reads_the_cancel_flag_and_notices_a_lost_lease(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], noop_engine: None
) -> None:
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.worker import runner
    from vocalborn.tasks.worker.progress import Cancelled, LostLease, RunWatch

    claim = _claim(api, therapist, learner)
    watch = RunWatch(claim, 60)
    watch.beat()
    watch.raise_if_stopped()  # nothing yet
    with open_session() as db:  # a cancel whose publish never reached Redis
        db.execute(
            update(AIAnalysisTask)
            .where(col(AIAnalysisTask.task_id) == claim.task_id)
            .values(cancel_requested_at=utcnow())
        )
        db.commit()
    watch.beat()
    with pytest.raises(Cancelled):
        runner._analyse(claim, watch)

    other = _claim(api, therapist, learner)
    with open_session() as db:  # another attempt took it over
        db.execute(update(AIAnalysisTask).where(col(AIAnalysisTask.task_id) == other.task_id).values(attempt=9))
        db.commit()
    watch = RunWatch(other, 60)
    watch.beat()
    with pytest.raises(LostLease):
        runner._analyse(other, watch)
    assert _state(other.task_id) == ("processing", 9, 0)


def test_a_stored_progress_write_of_a_run_that_lost_its_task_writes_nothing(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
    from vocalborn.tasks.worker.progress import LostLease, ProgressReporter, RunWatch

    claim = _claim(api, therapist, learner)
    reporter = ProgressReporter(claim, RunWatch(claim, 60))
    reporter.settings = get_settings().model_copy(update={"progress_write_interval": 0.0})
    reporter(1, "load_audio")  # stored, through the run's session
    with open_session() as db:
        db.execute(update(AIAnalysisTask).where(col(AIAnalysisTask.task_id) == claim.task_id).values(status="pending"))
        db.commit()
    with pytest.raises(LostLease):
        reporter(2, "extract_features")
    reporter.close()
    with open_session() as db:
        kinds = list(
            db.exec(select(AIAnalysisTaskEvent.event_type).where(AIAnalysisTaskEvent.task_id == claim.task_id))
        )
    assert kinds.count("progress") == 1


def _drain(pubsub: Any, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every message until none came for ``quiet`` seconds (subscribe confirmations skipped)."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + quiet
    while time.monotonic() < deadline:
        got = pubsub.get_message(timeout=0.05)
        if got is not None:
            out.append(json.loads(got["data"]))
            deadline = time.monotonic() + quiet
    return out


def test_the_unit_of_work_rolls_back_a_stale_transition_and_publishes_nothing(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.tasks import events, unit_of_work
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.states import EventType

    claim = _claim(api, therapist, learner)
    pubsub = events.get_redis().pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(events.channel_name())
    try:
        with open_session() as db:
            task = db.get(AIAnalysisTask, claim.task_id)
            assert task is not None
            stale = unit_of_work.transition(db, task, EventType.PROGRESS, expect_attempt=claim.attempt + 1)
            assert stale is None
            event = unit_of_work.transition(
                db, task, EventType.PROGRESS, expect_attempt=claim.attempt, values={"progress": 20}
            )
            assert event is not None and event.event_id is not None
        published = _drain(pubsub)
        assert [m["event_id"] for m in published] == [event.event_id]  # the stale one published nothing
    finally:
        pubsub.close()
    assert _state(claim.task_id) == ("processing", claim.attempt, 0)
