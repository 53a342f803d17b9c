"""A run that hits the soft time limit fails once, classified, without retries (issue #11,
defect 4: it was retried as transient, three more runs of up to TASK_SOFT_TIME_LIMIT each)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess
from vocalborn.db import open_session
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.worker.registry import online_workers

# In the whole suite this test has seen its task end as a success, run by some other consumer
# (not understood yet); alone it is reliable, also with both cores loaded. .ci/run runs it so.
pytestmark = [pytest.mark.worker, pytest.mark.isolated]


def test_a_run_past_the_soft_time_limit_fails_permanently(
    api: Api, migrated: ServicesUnderTest, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    # Earlier tests leave messages in the suite's queue that no worker consumed; each would cost
    # this slow worker its full soft limit. Their tasks are over (their tests ended): end them, so
    # their messages are skipped at once.
    with open_session() as db:
        db.execute(
            update(AIAnalysisTask)
            .where(col(AIAnalysisTask.status).in_(["pending", "retry"]))
            .values(status="cancelled", completed_at=utcnow())
        )
        db.commit()
    slow = {"ANALYSIS_STEP_DELAY_SECONDS": "1.5", "TASK_SOFT_TIME_LIMIT": "2", "TASK_TIME_LIMIT": "20"}
    worker = WorkerProcess("soft-limit", migrated.data_dir, concurrency=1, env=slow).start()
    try:
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        task_id = api.submit(learner, record_id).json()["task_id"]
        final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=120)
    finally:
        worker.stop()
    with open_session() as db:
        row = db.get(AIAnalysisTask, uuid.UUID(task_id))
        ran_by = row.worker_name if row is not None else None
    # If another consumer took the task, say which one (the mystery noted above).
    assert final["status"] == "failure", (final, f"run by {ran_by}; online: {online_workers()}")
    assert ran_by is not None and ran_by.startswith("soft-limit@"), ran_by
    assert final["retry_count"] == 0 and final["attempt"] == 1, final
    assert "took longer than 2 s" in final["error_message"]
    kinds = [e["event_type"] for e in api.events(learner, task_id)]
    assert "retry" not in kinds and kinds[-1] == "failed", kinds
