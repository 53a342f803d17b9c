"""Acceptance 3 of issue 5: after a batch of analyses on a real prefork worker, the worker's and
the API's /metrics agree with the database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from tests.monitoring.conftest import Samples, parse_metrics, scrape, value
from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, wait_until
from vocalborn.auth.models import User
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.embedded import free_port
from vocalborn.monitoring import catalog
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks import service
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.submission import ordinary

pytestmark = pytest.mark.worker

ANALYZE = "vocalborn.analyze_audio"
SUBMIT_ROUTE = "/api/v1/tasks/analysis/submit"


@pytest.fixture(scope="module")
def metrics_worker(migrated: ServicesUnderTest) -> Iterator[tuple[WorkerProcess, str]]:
    port = free_port()
    # Two pool children, each replaced after two tasks: counts must survive children that exit.
    w = WorkerProcess(
        f"metrics{uuid.uuid4().hex[:6]}",
        migrated.data_dir,
        concurrency=2,
        env={"WORKER_METRICS_PORT": str(port), "CELERY_WORKER_MAX_TASKS_PER_CHILD": "2"},
    ).start()
    url = f"http://127.0.0.1:{port}/metrics"
    wait_until(lambda: _reachable(url), 30, 0.2, "the worker metrics endpoint")
    yield w, url
    w.stop()


def _reachable(url: str) -> bool:
    try:
        scrape(url)
        return True
    except Exception:
        return False


def _db_counts_for_worker(name: str) -> dict[str, int]:
    with open_session() as db:
        rows = db.execute(
            select(col(AIAnalysisTask.status), func.count())
            .where(col(AIAnalysisTask.worker_name).like(f"{name}@%"))
            .group_by(col(AIAnalysisTask.status))
        ).all()
    return {str(status): int(n) for status, n in rows}


def _db_counts() -> dict[str, int]:
    with open_session() as db:
        rows = db.execute(select(col(AIAnalysisTask.status), func.count()).group_by(col(AIAnalysisTask.status))).all()
    return {str(status): int(n) for status, n in rows}


def _processing_time_of_successes(name: str) -> float:
    with open_session() as db:
        total = db.execute(
            select(func.sum(col(AIAnalysisResult.processing_time_seconds)))
            .join(AIAnalysisTask, col(AIAnalysisTask.task_id) == col(AIAnalysisResult.task_id))
            .where(col(AIAnalysisTask.worker_name).like(f"{name}@%"))
        ).scalar_one()
    return float(total or 0.0)


def _corrupt_recording(record_id: str) -> None:
    with open_session() as db:
        record = db.get(PracticeRecord, uuid.UUID(record_id))
        assert record is not None
        get_storage().path(record.audio_key).write_bytes(b"\x00no longer audio" * 100)


def test_after_a_batch_the_worker_and_api_metrics_match_the_database(
    api: Api, metrics_worker: tuple[WorkerProcess, str], therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    worker, worker_url = metrics_worker
    api_before = parse_metrics(api.client.get("/metrics").text)

    records = [api.ready_record(therapist, learner)["record"]["practice_record_id"] for _ in range(5)]
    _corrupt_recording(records[-1])  # one analysis fails for good
    task_ids = []
    for record_id in records:
        r = api.submit(learner, record_id)
        assert r.status_code == 202, r.text
        task_ids.append(r.json()["task_id"])
    finals = [api.wait_for(learner, t, {"success", "failure"}, timeout=120)["status"] for t in task_ids]
    assert sorted(finals) == ["failure"] + ["success"] * 4

    # --- the worker's endpoint: what its pool children counted, added up ----------------------
    mine = _db_counts_for_worker(worker.name)
    assert mine.get("success", 0) >= 4 and mine.get("failure", 0) >= 1  # it ran our batch

    def settled() -> Samples | None:
        s = scrape(worker_url)
        return s if value(s, "celery_active_tasks") == 0 else None

    w: Samples = wait_until(settled, 30, 0.2, "the worker to be idle")
    succeeded = value(w, "celery_tasks_total", task_name=ANALYZE, status="success")
    failed = value(w, "celery_tasks_total", task_name=ANALYZE, status="failure")
    assert succeeded == mine.get("success", 0)
    assert failed == mine.get("failure", 0)
    assert value(w, "celery_task_errors_total", task_name=ANALYZE, error_type="permanent") == failed

    outcomes = sum(
        value(w, "celery_tasks_total", task_name=ANALYZE, status=s)
        for s in ("success", "failure", "retry", "cancelled", "skipped", "lost")
    )
    started = value(w, "celery_tasks_total", task_name=ANALYZE, status="started")
    assert started == outcomes  # idle: every run that started has ended, each counted once
    did_work = outcomes - value(w, "celery_tasks_total", task_name=ANALYZE, status="skipped")
    assert value(w, "celery_task_duration_seconds_count", task_name=ANALYZE) == did_work
    assert value(w, "celery_task_queue_wait_seconds_count", task_name=ANALYZE) == started
    # each run's wall time includes the processing time the runner stored with the result
    stored = _processing_time_of_successes(worker.name)
    assert value(w, "celery_task_duration_seconds_sum", task_name=ANALYZE) + 0.001 * did_work >= stored
    # the endpoint serves exactly the worker metrics of the catalog (docs/OPERATIONS.md)
    assert {name for (name, _labels) in w} == catalog.exposed_names("worker")
    hostnames = [dict(labels)["hostname"] for (name, labels) in w if name == "celery_worker_up"]
    assert len(hostnames) == 1 and hostnames[0].startswith(f"{worker.name}@")
    assert value(w, "celery_worker_up", hostname=hostnames[0]) == 1

    # --- the API's endpoint: database counts, queue, workers, HTTP ----------------------------
    def api_matches_database() -> Samples | None:
        before = _db_counts()
        s = parse_metrics(api.client.get("/metrics").text)
        after = _db_counts()
        return s if before == after else None  # nothing moved while we looked

    a: Samples = wait_until(api_matches_database, 30, 0.2, "a quiet moment to compare")
    db_counts = _db_counts()
    for status in ("pending", "processing", "retry", "success", "failure", "cancelled"):
        assert value(a, "vocalborn_tasks", status=status) == db_counts.get(status, 0), status

    assert ("celery_queue_size", frozenset({("queue_name", get_settings().task_queue)})) in a
    assert value(a, "vocalborn_workers_online") >= 1
    assert value(a, "vocalborn_dependency_up", dependency="database") == 1
    assert value(a, "vocalborn_dependency_up", dependency="broker") == 1
    assert value(a, "vocalborn_dependency_up", dependency="redis") == 1
    submits = {"method": "POST", "route": SUBMIT_ROUTE, "status": "202"}
    assert value(a, "http_requests_total", **submits) - value(api_before, "http_requests_total", **submits) == 5
    latency = {"method": "POST", "route": SUBMIT_ROUTE}
    grew = value(a, "http_request_duration_seconds_count", **latency) - value(
        api_before, "http_request_duration_seconds_count", **latency
    )
    assert grew == 5


def test_the_api_labels_requests_by_route_template_not_by_path(api: Api, learner: dict[str, Any]) -> None:
    for _ in range(3):
        missing = uuid.uuid4()
        api.client.get(f"/api/v1/tasks/analysis/{missing}/status", headers=learner["headers"])
    api.client.get(f"/no-such-page-{uuid.uuid4().hex}")
    a = parse_metrics(api.client.get("/metrics").text)
    routes = {dict(labels).get("route") for (name, labels) in a if name == "http_requests_total"}
    assert "/api/v1/tasks/analysis/{task_id}/status" in routes
    assert "unmatched" in routes
    assert not any(r and "no-such-page" in r for r in routes)
    assert not any(r and str(missing) in r for r in routes)


def test_a_stalled_task_shows_in_the_api_metrics(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task left processing by a dead worker counts as stalled until the reaper acts."""
    from datetime import timedelta

    from sqlalchemy import update

    before = value(parse_metrics(api.client.get("/metrics").text), "vocalborn_tasks_stalled")
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    monkeypatch.setattr(service, "send_task_message", lambda *a, **k: True)  # the row, not a worker run
    with open_session() as db:
        user = db.get(User, uuid.UUID(learner["user"]["user_id"]))
        assert user is not None
        task_id = ordinary.submit_analysis(db, user, uuid.UUID(record_id), {}).task.task_id
    # as a worker that died an hour ago leaves it: processing, silent since
    long_ago = utcnow() - timedelta(hours=1)
    this_task = update(AIAnalysisTask).where(col(AIAnalysisTask.task_id) == task_id)
    with open_session() as db:
        db.execute(
            this_task.values(
                status="processing", attempt=1, started_at=long_ago, heartbeat_at=long_ago, updated_at=long_ago
            )
        )
        db.commit()
    try:
        a = parse_metrics(api.client.get("/metrics").text)
        assert value(a, "vocalborn_tasks_stalled") == before + 1
        assert value(a, "vocalborn_oldest_processing_task_age_seconds") >= 3600
    finally:  # leave nothing for another module's reaper to find
        with open_session() as db:
            db.execute(this_task.values(status="failure", completed_at=utcnow(), heartbeat_at=None))
            db.commit()
