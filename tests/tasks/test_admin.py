"""Operators and learners act on tasks: cancel, retry, cleanup, stats, reaper. Real workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, recording, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def admin(api: Api) -> dict[str, Any]:
    """An admin made the only way admins are made: the CLI."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocalborn.cli",
            "users",
            "create",
            "--email",
            email,
            "--name",
            "Ops",
            "--role",
            "admin",
        ],
        env=dict(os.environ, VOCALBORN_PASSWORD="admin-password-1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "created admin" in done.stdout
    token = api.login(email, "admin-password-1")
    return {"email": email, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


def _results(task_id: str) -> int:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult

    with open_session() as db:
        return len(db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == uuid.UUID(task_id))).all())


def _kinds(api: Api, user: dict[str, Any], task_id: str) -> list[str]:
    return [e["event_type"] for e in api.events(user, task_id)]


# --- runs first: no worker is online yet -----------------------------------------------------------
def test_a_cancel_sent_while_no_worker_is_online_survives_until_a_worker_starts(
    api: Api, migrated: ServicesUnderTest, admin: dict[str, Any], therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    r = api.client.delete(f"/api/v1/admin/tasks/{task_id}", headers=admin["headers"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    worker = WorkerProcess("late", migrated.data_dir).start()
    try:
        wait_until(lambda: f"task {task_id} is already cancelled" in worker.log(), 30, 0.2, "the worker to skip it")
    finally:
        worker.stop()
    assert api.status(learner, task_id)["status"] == "cancelled"
    assert _kinds(api, learner, task_id) == ["submitted", "cancelled"]
    record = api.client.get(f"/api/v1/practice/records/{record_id}", headers=learner["headers"]).json()
    assert record["record_status"] == "RECORDED"


@pytest.fixture(scope="module")
def slow_worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess("slow", migrated.data_dir, concurrency=1, env={"ANALYSIS_STEP_DELAY_SECONDS": "0.6"}).start()
    yield w
    w.stop()


def test_cancelling_a_queued_task_means_it_never_starts(
    api: Api, slow_worker: WorkerProcess, admin: dict[str, Any], therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = api.ready_record(therapist, learner)
    busy = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    r = api.record(
        learner, ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"], recording(voice="Male1")
    )
    queued = api.submit(learner, r.json()["practice_record_id"]).json()["task_id"]
    api.wait_for(learner, busy, {"processing"}, timeout=30)
    assert api.status(learner, queued)["status"] == "pending"

    r = api.client.delete(f"/api/v1/admin/tasks/{queued}", headers=admin["headers"])
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert api.wait_for(learner, busy, {"success", "failure"}, timeout=60)["status"] == "success"
    wait_until(
        lambda: f"task {queued} is already cancelled" in slow_worker.log(), 30, 0.2, "the queued message to be skipped"
    )
    assert _kinds(api, learner, queued) == ["submitted", "cancelled"]
    assert _results(queued) == 0


def test_cancelling_a_running_task_stops_it_at_the_next_step(
    api: Api, slow_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    api.wait_for(learner, task_id, {"processing"}, timeout=30)
    r = api.client.delete(f"/api/v1/tasks/analysis/{task_id}", headers=learner["headers"])  # the learner's own cancel
    assert r.status_code == 200, r.text
    final = api.wait_for(learner, task_id, {"success", "failure", "cancelled"}, timeout=30)
    assert final["status"] == "cancelled"
    assert _results(task_id) == 0
    kinds = _kinds(api, learner, task_id)
    assert "cancel_requested" in kinds and kinds[-1] == "cancelled" and "succeeded" not in kinds
    record = api.client.get(f"/api/v1/practice/records/{record_id}", headers=learner["headers"]).json()
    assert record["record_status"] == "RECORDED"
    r = api.client.delete(f"/api/v1/tasks/analysis/{task_id}", headers=learner["headers"])
    assert r.status_code == 409 and "already cancelled" in r.json()["detail"]


def test_an_admin_retries_a_failed_task_and_both_attempts_are_in_the_history(
    api: Api, slow_worker: WorkerProcess, admin: dict[str, Any], therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.db import open_session
    from vocalborn.practice.models import PracticeRecord
    from vocalborn.storage import get_storage

    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    with open_session() as db:
        record = db.get(PracticeRecord, uuid.UUID(record_id))
        assert record is not None
        path = get_storage().path(record.audio_key)
    good = path.read_bytes()
    path.write_bytes(b"corrupted in storage" * 100)
    task_id = api.submit(learner, record_id).json()["task_id"]
    assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)["status"] == "failure"

    path.write_bytes(good)  # the operator restored the file from backup
    other = api.register("therapist")
    assert api.client.post(f"/api/v1/admin/tasks/{task_id}/retry", headers=other["headers"]).status_code == 403
    r = api.client.post(f"/api/v1/admin/tasks/{task_id}/retry", headers=admin["headers"])
    assert r.status_code == 200, r.text
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)
    assert final["status"] == "success" and final["attempt"] == 2 and final["error_message"] is None
    events = api.events(learner, task_id)
    kinds = [e["event_type"] for e in events]
    assert kinds.index("failed") < kinds.index("resubmitted") < kinds.index("succeeded")
    assert [e["attempt"] for e in events if e["event_type"] == "started"] == [1, 2]
    assert _results(task_id) == 1
    r = api.client.post(f"/api/v1/admin/tasks/{task_id}/retry", headers=admin["headers"])
    assert r.status_code == 409


def test_stats_count_what_the_database_holds(api: Api, slow_worker: WorkerProcess, admin: dict[str, Any]) -> None:
    from sqlalchemy import func

    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisTask

    r = api.client.get("/api/v1/admin/tasks/stats", headers=admin["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    with open_session() as db:
        rows = dict(db.exec(select(AIAnalysisTask.status, func.count()).group_by(AIAnalysisTask.status)).all())
    assert {k: v for k, v in body["counts"].items() if v} == rows
    assert body["workers"]["online"] >= 1 and any(n.startswith("slow@") for n in body["workers"]["nodes"])
    assert body["queue"]["length"] is not None and body["queue"]["length"] >= 0
    hour = body["windows"]["3600s"]
    assert hour["succeeded"] >= 1 and hour["processing_seconds"]["p50"] > 0
    assert hour["failure_rate"] is not None and 0 <= hour["failure_rate"] <= 1
    r = api.client.get("/api/v1/admin/tasks?status=cancelled", headers=admin["headers"])
    assert r.status_code == 200 and r.json() and all(t["status"] == "cancelled" for t in r.json())


def test_learners_and_therapists_get_403_on_every_admin_endpoint(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    some_id = uuid.uuid4()
    calls = [
        ("GET", "/api/v1/admin/tasks/stats"),
        ("GET", "/api/v1/admin/tasks"),
        ("DELETE", f"/api/v1/admin/tasks/{some_id}"),
        ("POST", f"/api/v1/admin/tasks/{some_id}/retry"),
        ("POST", "/api/v1/admin/tasks/cleanup"),
    ]
    for user in (learner, therapist):
        for method, path in calls:
            r = api.client.request(method, path, headers=user["headers"])
            assert r.status_code == 403, (user["email"], method, path, r.text)
            assert "admin" in r.json()["detail"]
    for method, path in calls:
        assert api.client.request(method, path).status_code == 401


def test_the_reaper_requeues_a_task_whose_worker_died_and_fails_one_that_keeps_dying(
    api: Api, slow_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.worker import maintenance

    ready = api.ready_record(therapist, learner)
    a = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    api.wait_for(learner, a, {"success"}, timeout=60)
    # Two tasks left "processing" by a worker that vanished: one with deliveries to spare, one without.
    long_ago = utcnow() - timedelta(seconds=get_settings().task_lease_seconds * 10)
    ids = []
    for deliveries in (1, get_settings().task_max_deliveries):
        r = api.record(
            learner, ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"], recording(voice="Male1")
        )
        record_id = r.json()["practice_record_id"]
        with open_session() as db:
            task = AIAnalysisTask(
                task_id=uuid.uuid4(),
                practice_record_id=uuid.UUID(record_id),
                user_id=uuid.UUID(learner["user"]["user_id"]),
                status="processing",
                attempt=deliveries,
                deliveries=deliveries,
                worker_name="ghost@nowhere/1",
                started_at=long_ago,
                heartbeat_at=long_ago,
                created_at=long_ago,
                updated_at=long_ago,
                task_params={},
            )
            task.celery_task_id = str(task.task_id)
            db.add(task)
            db.commit()
            ids.append(str(task.task_id))
    result = maintenance.reap_stalled_tasks()
    assert result["requeued"] >= 1 and result["failed"] >= 1
    healed = api.wait_for(api.admin(), ids[0], {"success", "failure"}, timeout=60)
    assert healed["status"] == "success" and healed["worker_name"].startswith("slow@")
    assert _kinds(api, learner, ids[0])[0] == "queued"
    dead = api.status(learner, ids[1])
    assert dead["status"] == "failure" and "deliveries" in dead["error_message"]


def test_cleanup_removes_only_what_the_policy_says(
    api: Api, admin: dict[str, Any], therapist: dict[str, Any], learner: dict[str, Any], services: ServicesUnderTest
) -> None:
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.storage import get_storage
    from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent

    ready = api.ready_record(therapist, learner)
    session_id, sentence_id = ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"]
    made: dict[str, str] = {}
    for label, status in (
        ("old_failed", "failure"),
        ("new_failed", "failure"),
        ("old_cancelled", "cancelled"),
        ("old_success", "success"),
    ):
        r = api.record(learner, session_id, sentence_id, recording(voice="Male1"))
        record_id = r.json()["practice_record_id"]
        with open_session() as db:
            task = AIAnalysisTask(
                task_id=uuid.uuid4(),
                practice_record_id=uuid.UUID(record_id),
                user_id=uuid.UUID(learner["user"]["user_id"]),
                status=status,
                task_params={},
            )
            task.celery_task_id = str(task.task_id)
            age = timedelta(days=400 if label.startswith("old") else 1)
            task.created_at = task.updated_at = task.completed_at = utcnow() - age
            db.add(task)
            db.flush()
            db.add(
                AIAnalysisTaskEvent(
                    task_id=task.task_id, event_type="submitted", status="pending", created_at=utcnow() - age
                )
            )
            from vocalborn.practice.models import PracticeRecord

            db.execute(
                update(PracticeRecord)
                .where(col(PracticeRecord.practice_record_id) == uuid.UUID(record_id))
                .values(ai_task_id=task.task_id, record_status="AI_FAILED" if status == "failure" else "RECORDED")
            )
            db.commit()
            made[label] = str(task.task_id)
    storage = get_storage()
    old_orphan = storage.save("recordings", b"left behind by a crashed upload", "wav")
    young_orphan = storage.save("recordings", b"an upload still in flight", "wav")
    past = time.time() - 3 * 86400
    os.utime(storage.path(old_orphan), (past, past))

    r = api.client.post("/api/v1/admin/tasks/cleanup", headers=admin["headers"])
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["tasks_deleted"] >= 2 and report["files_deleted"] >= 1 and report["events_deleted"] >= 1

    with open_session() as db:

        def exists(label: str) -> bool:
            return db.get(AIAnalysisTask, uuid.UUID(made[label])) is not None

        assert not exists("old_failed") and not exists("old_cancelled")
        assert exists("new_failed")  # inside the retention window
        assert exists("old_success")  # successful analyses stay (RETENTION_SUCCESS_DAYS=0)
        old_success_events = db.exec(
            select(AIAnalysisTaskEvent).where(AIAnalysisTaskEvent.task_id == uuid.UUID(made["old_success"]))
        ).all()
        assert old_success_events == []  # its event log aged out
    assert not storage.path(old_orphan).exists()
    assert storage.path(young_orphan).exists()
    assert storage.path(_record_key(ready["record"]["practice_record_id"])).exists()
    storage.delete(young_orphan)


def _record_key(record_id: str) -> str:
    from vocalborn.db import open_session
    from vocalborn.practice.models import PracticeRecord

    with open_session() as db:
        record = db.get(PracticeRecord, uuid.UUID(record_id))
        assert record is not None
        return record.audio_key
