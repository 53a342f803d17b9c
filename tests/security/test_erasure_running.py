"""Erasing a learner while their analysis runs: the worker notices, writes nothing back, and
nothing of the learner reappears."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import select

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, wait_until
from vocalborn.db import open_session
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def slow_worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess(
        "erasing", migrated.data_dir, env={"ANALYSIS_STEP_DELAY_SECONDS": "1", "WORKER_METRICS_PORT": "0"}
    ).start()
    yield w
    w.stop()


def test_erasure_during_an_analysis_leaves_nothing_behind(
    api: Api, slow_worker: WorkerProcess, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    wait_until(lambda: api.status(learner, task_id)["status"] == "processing", 60, 0.1, "the analysis to start")
    r = api.client.delete("/api/v1/me", headers=learner["headers"])
    assert r.status_code == 200 and r.json()["analyses"] == 1, r.text

    # the run notices at its next write and ends (Celery logs the task as done, "skipped")
    done = f"analyze_audio[{task_id}] succeeded"
    wait_until(lambda: done in slow_worker.log(), 30, 0.5, "the worker to end the run")
    ended = next(line for line in slow_worker.log().splitlines() if done in line)
    assert ended.endswith("'skipped'"), ended  # it wrote no outcome: the rows were gone
    tid = uuid.UUID(task_id)
    with open_session() as db:
        assert db.get(AIAnalysisTask, tid) is None
        assert db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == tid)).first() is None
        assert db.exec(select(AIAnalysisTaskEvent).where(AIAnalysisTaskEvent.task_id == tid)).first() is None
    assert "Traceback" not in slow_worker.log(), slow_worker.log()[-3000:]
