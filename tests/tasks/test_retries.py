"""Transient failures retry with backoff; permanent ones fail at once. A real worker process uses
the remote engine against a small AI service on loopback that we make misbehave on purpose."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess


class FlakyService:
    """An AI service that answers 503 (or 400) for the next N calls, then analyses for real."""

    def __init__(self) -> None:
        self.fail_next = 0
        self.fail_status = 503
        self.calls = 0
        self.app = FastAPI()

        @self.app.post("/analyze")
        async def analyze(
            reference: UploadFile = File(), attempt: UploadFile = File(), params: str = Form("{}")
        ) -> JSONResponse:
            import json

            from vocalborn.analysis.engine import analyze as run

            self.calls += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"detail": f"injected failure {self.fail_status}"}, status_code=self.fail_status)
            report = run(await reference.read(), await attempt.read(), json.loads(params))
            return JSONResponse(report.to_dict())


@pytest.fixture(scope="module")
def ai_service() -> Iterator[tuple[FlakyService, int]]:
    from vocalborn.embedded import free_port

    service = FlakyService()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield service, port
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def remote_worker(migrated: ServicesUnderTest, ai_service: tuple[FlakyService, int]) -> Iterator[WorkerProcess]:
    env = {"AI_ENGINE": "remote", "AI_SERVICE_URL": f"http://127.0.0.1:{ai_service[1]}", "AI_SERVICE_TIMEOUT": "20"}
    w = WorkerProcess("remote", migrated.data_dir, concurrency=1, env=env).start()
    yield w
    w.stop()


def test_transient_errors_retry_with_backoff_then_succeed(
    api: Api,
    ai_service: tuple[FlakyService, int],
    remote_worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    service, _ = ai_service
    service.fail_next, service.fail_status = 2, 503
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
    assert final["status"] == "success", final
    assert final["retry_count"] == 2
    events = api.events(learner, task_id)
    retries = [e for e in events if e["event_type"] == "retry"]
    assert [e["status"] for e in retries] == ["retry", "retry"]
    assert all("503" in e["message"] for e in retries)
    started = [e["attempt"] for e in events if e["event_type"] == "started"]
    assert started == [1, 2, 3]
    assert events[-1]["event_type"] == "succeeded"


def test_transient_errors_give_up_after_max_retries(
    api: Api,
    ai_service: tuple[FlakyService, int],
    remote_worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    service, _ = ai_service
    service.fail_next, service.fail_status = 4, 503  # the first run and all three retries fail
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
    assert final["status"] == "failure"
    assert final["retry_count"] == 3
    assert final["error_message"].startswith("gave up after 3 retries")
    kinds = [e["event_type"] for e in api.events(learner, task_id)]
    assert kinds.count("retry") == 3 and kinds.count("started") == 4 and kinds[-1] == "failed"
    service.fail_next = 0


def test_a_rejected_input_fails_at_once_without_retries(
    api: Api,
    ai_service: tuple[FlakyService, int],
    remote_worker: WorkerProcess,
    therapist: dict[str, Any],
    learner: dict[str, Any],
) -> None:
    service, _ = ai_service
    service.fail_next, service.fail_status = 1, 400
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)
    assert final["status"] == "failure" and final["retry_count"] == 0
    assert "injected failure 400" in final["error_message"]
    service.fail_next = 0
