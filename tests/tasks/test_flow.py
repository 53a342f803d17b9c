"""The whole loop on real PostgreSQL, Redis and Celery worker processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from tests.services import ServicesUnderTest
from tests.support import SENTENCE, Api, WorkerProcess, recording, wait_until

pytestmark = pytest.mark.worker

# The plan's JSON field names (API 設計, 查詢任務狀態 / 獲取分析結果).
PLAN_STATUS_FIELDS = {
    "task_id",
    "status",
    "progress",
    "current_step",
    "total_steps",
    "started_at",
    "estimated_remaining_time",
    "worker_name",
}
PLAN_RESULT_FIELDS = {
    "task_id",
    "result_id",
    "overall_score",
    "pronunciation_accuracy",
    "fluency_score",
    "rhythm_score",
    "detailed_analysis",
    "suggestions",
    "improvement_areas",
    "processing_time_seconds",
    "completed_at",
}
PLAN_SUBMIT_FIELDS = {"task_id", "celery_task_id", "status", "estimated_completion_time", "queue_position"}


@pytest.fixture(scope="module")
def worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess("flow", migrated.data_dir, concurrency=2).start()
    yield w
    w.stop()


def test_a_submitted_recording_is_analysed_and_scored(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = api.ready_record(therapist, learner)
    record_id = ready["record"]["practice_record_id"]

    r = api.submit(learner, record_id, include_suggestions=True)
    assert r.status_code == 202, r.text
    submitted = r.json()
    assert submitted.keys() >= PLAN_SUBMIT_FIELDS
    assert submitted["status"] == "pending"
    assert submitted["celery_task_id"] == submitted["task_id"]
    assert submitted["queue_position"] >= 1
    task_id = submitted["task_id"]

    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
    assert final["status"] == "success", final
    assert final.keys() >= PLAN_STATUS_FIELDS
    assert final["progress"] == 100 and final["total_steps"] == 5
    assert final["worker_name"] is None  # a learner never sees worker host names
    assert api.status(api.admin(), task_id)["worker_name"].startswith("flow@")

    r = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"])
    assert r.status_code == 200, r.text
    result = r.json()
    assert result.keys() >= PLAN_RESULT_FIELDS
    for score in ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score"):
        assert 0 <= result[score] <= 100
    assert result["detailed_analysis"], "detailed_analysis must not be empty"
    assert result["processing_time_seconds"] > 0
    # The worker passes the sentence's text: every character is judged (issue #9).
    assert result["detailed_analysis"]["text"] == SENTENCE
    assert "".join(c["char"] for c in result["detailed_analysis"]["characters"]) == SENTENCE
    assert set(result["detailed_analysis"]["localized"]) == {"zh-TW", "en"}

    record = api.client.get(f"/api/v1/practice/records/{record_id}", headers=learner["headers"]).json()
    assert record["record_status"] == "AI_ANALYZED"
    assert record["ai_task_id"] == task_id

    events = api.events(learner, task_id)
    kinds = [e["event_type"] for e in events]
    assert kinds[0] == "submitted" and kinds[1] == "started" and kinds[-1] == "succeeded"
    assert set(kinds[2:-1]) <= {"progress"}
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    assert events[0]["attempt"] == 0 and all(e["attempt"] == 1 for e in events[1:])
    assert [e["status"] for e in events][-1] == "success"


def test_the_session_status_lists_its_tasks(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    api.wait_for(learner, task_id, {"success"}, timeout=90)
    session_id = ready["session"]["practice_session_id"]
    r = api.client.get(f"/api/v1/tasks/analysis/session/{session_id}/status", headers=learner["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["counts"] == {"success": 1}
    assert [t["task_id"] for t in body["tasks"]] == [task_id]


def test_an_undecodable_file_that_slipped_through_fails_without_retries(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.practice.models import PracticeRecord
    from vocalborn.storage import get_storage

    ready = api.ready_record(therapist, learner)
    record_id = ready["record"]["practice_record_id"]
    with open_session() as db:  # the stored file rots after validation
        import uuid

        record = db.get(PracticeRecord, uuid.UUID(record_id))
        assert record is not None
        get_storage().path(record.audio_key).write_bytes(b"\x00not audio any more" * 100)

    task_id = api.submit(learner, record_id).json()["task_id"]
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)
    assert final["status"] == "failure"
    assert final["retry_count"] == 0
    assert final["error_message"]
    events = api.events(learner, task_id)
    kinds = [e["event_type"] for e in events]
    # it failed while loading the audio (step 1), on its first and only attempt
    assert kinds[:2] == ["submitted", "started"] and kinds[-1] == "failed"
    assert set(kinds[2:-1]) <= {"progress"} and "retry" not in kinds
    assert {e["attempt"] for e in events[1:]} == {1}
    record = api.client.get(f"/api/v1/practice/records/{record_id}", headers=learner["headers"]).json()
    assert record["record_status"] == "AI_FAILED"
    # operators see it as a failure too (Celery's own state, hence Flower), without a traceback
    wait_until(lambda: f"[{task_id}] raised expected: AnalysisFailed" in worker.log(), 10, 0.2, "the failure log line")
    r = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"])
    assert r.status_code == 409 and r.json()["detail"].startswith("no result: the analysis failed")


def test_a_missing_reference_fails_at_once_with_a_clear_message(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    import uuid

    from vocalborn.db import open_session
    from vocalborn.practice.models import Sentence
    from vocalborn.storage import get_storage

    ready = api.ready_record(therapist, learner)
    with open_session() as db:
        sentence = db.get(Sentence, uuid.UUID(ready["sentence"]["sentence_id"]))
        assert sentence is not None
        get_storage().delete(sentence.reference_audio_key)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)
    assert final["status"] == "failure" and final["retry_count"] == 0
    assert "reference recording" in final["error_message"]


def test_a_duplicate_delivery_writes_nothing_twice(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """Redelivery is expected: a message for a finished task is acknowledged and skipped."""
    import uuid

    from vocalborn.db import open_session
    from vocalborn.tasks import service
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent

    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    api.wait_for(learner, task_id, {"success"}, timeout=60)
    before = len(api.events(learner, task_id))
    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        assert task is not None
        assert service.send_task_message(task)  # the same message, again

    def worker_saw_it() -> bool:
        return f"task {task_id} is already success" in worker.log()

    from tests.support import wait_until

    wait_until(worker_saw_it, 30, 0.2, "the worker to skip the duplicate")
    with open_session() as db:
        results = db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == uuid.UUID(task_id))).all()
        assert len(results) == 1
        events = db.exec(select(AIAnalysisTaskEvent).where(AIAnalysisTaskEvent.task_id == uuid.UUID(task_id))).all()
        assert len(events) == before


def test_recordings_in_browser_and_phone_formats_are_analysed(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    sentence = api.sentence(therapist, recording(fmt="m4a"), filename="ref.m4a")
    session = api.session(learner)
    tasks = []
    for fmt in ("webm", "ogg", "aac"):
        r = api.record(
            learner,
            session["practice_session_id"],
            sentence["sentence_id"],
            recording(voice="Male1", fmt=fmt),
            f"try.{fmt}",
        )
        assert r.status_code == 201, r.text
        assert r.json()["audio_format"] == fmt
        tasks.append(api.submit(learner, r.json()["practice_record_id"]).json()["task_id"])
    for task_id in tasks:
        assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)["status"] == "success"
