"""A run that hits the soft time limit fails once, classified, without retries (issue #11,
defect 4: it was retried as transient, three more runs of up to TASK_SOFT_TIME_LIMIT each)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess
from vocalborn.config import get_settings

pytestmark = pytest.mark.worker


def test_a_run_past_the_soft_time_limit_fails_permanently(
    api: Api,
    migrated: ServicesUnderTest,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A queue of this test's own: the suite's queue may hold earlier tests' unconsumed messages,
    # and each would take this slow worker its full soft limit.
    queue = f"soft_limit_{uuid.uuid4().hex[:8]}"
    slow = {
        "ANALYSIS_STEP_DELAY_SECONDS": "1.5",
        "TASK_SOFT_TIME_LIMIT": "2",
        "TASK_TIME_LIMIT": "20",
        "TASK_QUEUE": queue,
    }
    worker = WorkerProcess("soft-limit", migrated.data_dir, concurrency=1, env=slow).start()
    try:
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        monkeypatch.setenv("TASK_QUEUE", queue)  # read at publish time
        get_settings.cache_clear()
        try:
            task_id = api.submit(learner, record_id).json()["task_id"]
        finally:
            monkeypatch.undo()
            get_settings.cache_clear()
        final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=60)
    finally:
        worker.stop()
    assert final["status"] == "failure", final
    assert final["retry_count"] == 0 and final["attempt"] == 1, final
    assert "took longer than 2 s" in final["error_message"]
    kinds = [e["event_type"] for e in api.events(learner, task_id)]
    assert "retry" not in kinds and kinds[-1] == "failed", kinds
