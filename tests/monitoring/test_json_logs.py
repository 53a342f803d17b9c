"""The request id of the submitting HTTP request reaches the worker's JSON log lines."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def json_worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess(
        f"jsonlog{uuid.uuid4().hex[:6]}", migrated.data_dir, env={"LOG_FORMAT": "json", "WORKER_METRICS_PORT": "0"}
    ).start()
    yield w
    w.stop()


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue  # Celery's start-up banner is printed, not logged
        if isinstance(parsed, dict):
            out.append(parsed)
    return out


def test_a_json_worker_logs_the_task_with_the_request_id_of_its_submit(
    api: Api, json_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    request_id = f"test-{uuid.uuid4().hex}"
    r = api.client.post(
        "/api/v1/tasks/analysis/submit",
        headers={**learner["headers"], "X-Request-ID": request_id},
        json={"practice_record_id": record_id, "parameters": {}},
    )
    assert r.status_code == 202, r.text
    assert r.headers["X-Request-ID"] == request_id
    task_id = r.json()["task_id"]
    assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)["status"] == "success"

    json_worker.stop()  # flush: every line of the run is in the file
    lines = [line for line in _json_lines(json_worker.log()) if line.get("task_id") == task_id]
    assert lines, json_worker.log()[-3000:]
    assert all(line.get("request_id") == request_id for line in lines), lines
    done = [line for line in lines if "succeeded" in line["message"]]
    assert len(done) == 1, lines
    assert done[0]["practice_record_id"] == record_id
    assert done[0]["attempt"] == 1
    assert {"time", "level", "logger", "message"} <= done[0].keys()


def test_an_unusable_request_id_is_replaced_not_stored(api: Api) -> None:
    for bad in ("x" * 65, "spaces are not allowed", ""):
        r = api.client.get("/health", headers={"X-Request-ID": bad})
        assert r.headers["X-Request-ID"] != bad
        assert len(r.headers["X-Request-ID"]) == 32
