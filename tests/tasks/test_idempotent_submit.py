"""Submitting is safe to repeat: Idempotency-Key, an analysed record returns its analysis, and a
record keeps pointing at its latest successful analysis whatever later tasks do.

Regression tests for issue #11, defect 3 (a retried 202 duplicated work; resubmit + cancel showed
RECORDED; cleanup of that cancelled task unlinked the successful result). A real worker runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from tests.broker.scenarios import make_admin
from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess

pytestmark = pytest.mark.worker

SUBMIT = "/api/v1/tasks/analysis/submit"


@pytest.fixture(scope="module")
def worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess("idempotent", migrated.data_dir, concurrency=1).start()
    yield w
    w.stop()


def _record(api: Api, learner: dict[str, Any], record_id: str) -> dict[str, Any]:
    r = api.client.get(f"/api/v1/practice/records/{record_id}", headers=learner["headers"])
    assert r.status_code == 200, r.text
    return dict(r.json())


def _result_rows(record_id: str) -> int:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

    with open_session() as db:
        return len(
            db.exec(
                select(AIAnalysisResult.result_id)
                .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(AIAnalysisResult.task_id))
                .where(AIAnalysisTask.practice_record_id == uuid.UUID(record_id))
            ).all()
        )


def test_the_same_idempotency_key_and_body_return_the_same_task(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    headers = {**learner["headers"], "Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    body = {"practice_record_id": record_id, "parameters": {"language": "zh-TW"}}
    first = api.client.post(SUBMIT, headers=headers, json=body)
    assert first.status_code == 202, first.text
    again = api.client.post(SUBMIT, headers=headers, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == first.json()["task_id"] and again.json()["created"] is False

    other = api.client.post(SUBMIT, headers=headers, json={**body, "parameters": {"language": "en"}})
    assert other.status_code == 422, other.text
    assert other.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert "different request body" in other.json()["message"]


def test_an_expired_idempotency_key_may_name_a_new_submit(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask

    key = f"old-{uuid.uuid4().hex}"
    first_record = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    r = api.client.post(
        SUBMIT, headers={**learner["headers"], "Idempotency-Key": key}, json={"practice_record_id": first_record}
    )
    assert r.status_code == 202
    with open_session() as db:
        db.execute(
            update(AIAnalysisTask)
            .where(col(AIAnalysisTask.task_id) == uuid.UUID(r.json()["task_id"]))
            .values(created_at=utcnow() - timedelta(hours=25))
        )
        db.commit()
    second_record = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    r2 = api.client.post(
        SUBMIT, headers={**learner["headers"], "Idempotency-Key": key}, json={"practice_record_id": second_record}
    )
    assert r2.status_code == 202, r2.text
    assert r2.json()["task_id"] != r.json()["task_id"]


def test_an_analysed_record_returns_its_analysis_unless_reanalyse_and_keeps_it_whatever_follows(
    api: Api, worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    first = api.submit(learner, record_id)
    assert first.status_code == 202, first.text
    done_id = first.json()["task_id"]
    assert api.wait_for(learner, done_id, {"success", "failure"}, timeout=90)["status"] == "success"

    # a client that lost the 202 and submits again gets the analysis, not a second one
    again = api.submit(learner, record_id)
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == done_id and again.json()["created"] is False
    assert again.json()["status"] == "success"
    assert _result_rows(record_id) == 1

    # reanalyse starts a new one; the worker is stopped so it stays queued, then it is cancelled
    worker.stop()
    redo = api.client.post(
        SUBMIT, headers=learner["headers"], json={"practice_record_id": record_id, "reanalyse": True}
    )
    assert redo.status_code == 202, redo.text
    redo_id = redo.json()["task_id"]
    assert redo_id != done_id
    assert _record(api, learner, record_id)["record_status"] == "AI_QUEUED"
    r = api.client.delete(f"/api/v1/tasks/analysis/{redo_id}", headers=learner["headers"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    record = _record(api, learner, record_id)
    assert record["record_status"] == "AI_ANALYZED" and record["ai_task_id"] == done_id  # was RECORDED

    # the cancelled task ages out and is cleaned up: the record still points at its analysis
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask

    with open_session() as db:
        db.execute(
            update(AIAnalysisTask)
            .where(col(AIAnalysisTask.task_id) == uuid.UUID(redo_id))
            .values(completed_at=utcnow() - timedelta(days=400))
        )
        db.commit()
    admin = make_admin(api)
    assert api.client.post("/api/v1/admin/tasks/cleanup", headers=admin["headers"]).status_code == 200
    record = _record(api, learner, record_id)
    assert record["record_status"] == "AI_ANALYZED" and record["ai_task_id"] == done_id
    assert api.client.get(f"/api/v1/tasks/analysis/{done_id}/result", headers=learner["headers"]).status_code == 200
    assert _result_rows(record_id) == 1
