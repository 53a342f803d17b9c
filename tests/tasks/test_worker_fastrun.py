"""The worker's one-statement claim and success (tasks/worker/fastrun.py) write exactly what the
ordinary path writes, take only the case they can decide alone, and leave every other case to
it; a connection the server closed is reported as "database unavailable" and replaced.

In-process runner calls against the real database (PostgreSQL only: elsewhere the fast path
never runs); no worker consumes this module's messages while the assertions run."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text, update
from sqlmodel import col

from tests.support import Api


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    from vocalborn.config import get_settings

    if not get_settings().effective_database_url.startswith("postgresql"):
        pytest.skip("the worker's fast path runs on PostgreSQL only")


def _submit(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> uuid.UUID:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    return uuid.UUID(api.submit(learner, record_id).json()["task_id"])


def _report() -> Any:
    from vocalborn.analysis.types import AnalysisReport

    return AnalysisReport(
        81.5,
        82.25,
        83.0,
        84.75,
        {"timing_analysis": {"note": "made by the test"}},
        suggestions="slower",
        completeness_score=62.5,
    )


def _written(task_id: uuid.UUID) -> dict[str, Any]:
    """What a run wrote, without ids and clock values."""
    from vocalborn.db import open_session

    with open_session() as db:
        task = db.execute(
            text(
                "SELECT status, attempt, deliveries, worker_name, progress, current_step, error_message,"
                " started_at IS NOT NULL, completed_at IS NOT NULL, heartbeat_at IS NOT NULL, next_attempt_at"
                " FROM ai_analysis_tasks WHERE task_id = :t"
            ),
            {"t": task_id},
        ).one()
        record = db.execute(
            text(
                "SELECT r.record_status, r.ai_task_id = t.task_id FROM practice_records r"
                " JOIN ai_analysis_tasks t ON t.practice_record_id = r.practice_record_id WHERE t.task_id = :t"
            ),
            {"t": task_id},
        ).one()
        events = db.execute(
            text(
                "SELECT event_type, status, progress, current_step, attempt, worker_name, message"
                " FROM ai_analysis_task_events WHERE task_id = :t ORDER BY event_id"
            ),
            {"t": task_id},
        ).all()
        results = db.execute(
            text(
                "SELECT overall_score, pronunciation_accuracy, fluency_score, rhythm_score, completeness_score,"
                " detailed_analysis,"
                " sentence_analyses IS NULL, jsonb_typeof(sentence_analyses), suggestions,"
                " improvement_areas IS NULL, jsonb_typeof(improvement_areas), analysis_model_version,"
                " processing_time_seconds IS NOT NULL FROM ai_analysis_results WHERE task_id = :t"
            ),
            {"t": task_id},
        ).all()
    return {"task": tuple(task), "record": tuple(record), "events": [tuple(e) for e in events], "results": results}


def _expected_claim(claim: Any) -> tuple[Any, ...]:
    from vocalborn.db import open_session
    from vocalborn.storage import get_storage

    with open_session() as db:
        reference, audio, sentence, params = db.execute(
            text(
                "SELECT s.reference_audio_key, r.audio_key, s.text, t.task_params FROM ai_analysis_tasks t"
                " JOIN practice_records r ON r.practice_record_id = t.practice_record_id"
                " JOIN sentences s ON s.sentence_id = r.sentence_id WHERE t.task_id = :t"
            ),
            {"t": claim.task_id},
        ).one()
    storage = get_storage()
    return 1, storage.path(reference), storage.path(audio), {**(params or {}), "text": sentence}


def _run(task_id: uuid.UUID) -> Any:
    from vocalborn.tasks.worker import runner

    claim = runner.claim_task(task_id, "test-worker/1")
    assert isinstance(claim, runner.Claim)
    assert runner._complete(claim, _report()) is runner.Outcome.SUCCEEDED
    return claim


def test_the_fast_claim_and_success_write_what_the_ordinary_path_writes(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vocalborn.practice.models import RecordStatus
    from vocalborn.tasks.worker import fastrun

    taken: list[str] = []
    real_claim, real_succeed = fastrun.claim, fastrun.succeed

    def spy_claim(*args: Any) -> Any:
        out = real_claim(*args)
        taken.append(f"claim:{out is not None}")
        return out

    def spy_succeed(*args: Any) -> Any:
        out = real_succeed(*args)
        taken.append(f"succeed:{out is not None}")
        return out

    monkeypatch.setattr(fastrun, "claim", spy_claim)
    monkeypatch.setattr(fastrun, "succeed", spy_succeed)
    fast_task = _submit(api, therapist, learner)
    fast_claim = _run(fast_task)
    assert taken == ["claim:True", "succeed:True"]

    monkeypatch.setattr(fastrun, "_database_url", lambda: None)  # the ordinary path only
    slow_task = _submit(api, therapist, learner)
    slow_claim = _run(slow_task)
    assert taken[2:] == ["claim:False", "succeed:False"]

    for claim in (fast_claim, slow_claim):
        assert (claim.attempt, claim.reference_path, claim.attempt_path, claim.params) == _expected_claim(claim)
    fast, slow = _written(fast_task), _written(slow_task)
    assert fast == slow
    assert [e[0] for e in fast["events"]] == ["submitted", "started", "succeeded"]
    assert fast["task"][0] == "success" and fast["record"] == (RecordStatus.AI_ANALYZED.value, True)
    assert len(fast["results"]) == 1
    # issue #22: the completeness in its column and in the engine's JSON stored
    assert fast["results"][0][4] == 62.5
    assert fast["results"][0][5] == {"timing_analysis": {"note": "made by the test"}, "completeness_score": 62.5}


def test_every_other_case_is_left_to_the_ordinary_path(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.worker import fastrun, runner
    from vocalborn.tasks.worker.progress import Cancelled

    def set_(task_id: uuid.UUID, **values: Any) -> None:
        with open_session() as db:
            db.execute(update(AIAnalysisTask).where(col(AIAnalysisTask.task_id) == task_id).values(**values))
            db.commit()

    cancelled = _submit(api, therapist, learner)
    set_(cancelled, cancel_requested_at=utcnow())
    assert fastrun.claim(cancelled, "test-worker/1") is None
    assert runner.claim_task(cancelled, "test-worker/1") is runner.Outcome.CANCELLED

    too_many = _submit(api, therapist, learner)
    set_(too_many, deliveries=99)
    assert fastrun.claim(too_many, "test-worker/1") is None
    assert runner.claim_task(too_many, "test-worker/1") is runner.Outcome.FAILED

    running = _submit(api, therapist, learner)
    claim = runner.claim_task(running, "test-worker/1")
    assert isinstance(claim, runner.Claim)
    assert fastrun.claim(running, "test-worker/2") is None  # a live lease: a duplicate delivery
    assert runner.claim_task(running, "test-worker/2") is runner.Outcome.SKIPPED

    set_(running, cancel_requested_at=utcnow())  # cancelled while it ran
    assert fastrun.succeed(claim, _report(), 0.1) is None
    with pytest.raises(Cancelled):
        runner._complete(claim, _report())

    moved_on = _submit(api, therapist, learner)
    old = runner.claim_task(moved_on, "test-worker/1")
    assert isinstance(old, runner.Claim)
    set_(moved_on, attempt=old.attempt + 1)  # the reaper and another worker took it over
    assert fastrun.succeed(old, _report(), 0.1) is None
    assert runner._complete(old, _report()) is runner.Outcome.SKIPPED
    assert _written(moved_on)["results"] == []


def test_a_result_already_stored_is_left_to_the_ordinary_path(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult
    from vocalborn.tasks.worker import fastrun, runner

    task_id = _submit(api, therapist, learner)
    claim = runner.claim_task(task_id, "test-worker/1")
    assert isinstance(claim, runner.Claim)
    with open_session() as db:  # an earlier delivery's result, its status write lost
        db.add(AIAnalysisResult(task_id=task_id, overall_score=1.0, detailed_analysis={"x": 1}))
        db.commit()
    assert fastrun.succeed(claim, _report(), 0.1) is None  # the unique result refused it, nothing written
    assert _written(task_id)["task"][0] == "processing"
    assert runner._complete(claim, _report()) is runner.Outcome.SKIPPED
    assert len(_written(task_id)["results"]) == 1


def test_a_connection_the_server_closed_counts_as_unavailable_and_is_replaced(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from sqlalchemy.exc import OperationalError

    from vocalborn.db import open_session
    from vocalborn.tasks.worker import fastrun, runner

    first = _submit(api, therapist, learner)
    assert isinstance(runner.claim_task(first, "test-worker/1"), runner.Claim)  # the connection exists
    backend = fastrun._connection.conn.info.backend_pid
    with open_session() as db:
        db.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend})
        db.commit()
    second = _submit(api, therapist, learner)
    with pytest.raises(OperationalError):
        fastrun.claim(second, "test-worker/1")
    claim = runner.with_db_retries(lambda: runner.claim_task(second, "test-worker/1"), "claim")
    assert isinstance(claim, runner.Claim)
    assert fastrun._connection.conn.info.backend_pid != backend
