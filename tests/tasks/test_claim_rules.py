"""Each claim rule of the table (tasks/worker/claim.py CLAIM_RULES) on both paths: the ordinary
decision (``decide_claim``) answers with the rule's action, the one-statement claim
(``fastrun.claim``) declines the same delivery, and without the rule's SQL half it would have
started the task (so dropping a rule's SQL fails here)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.services import ServicesUnderTest
from tests.support import Api
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import TaskStatus
from vocalborn.tasks.worker import claim, fastrun

pytestmark = pytest.mark.postgresql

WORKER = "test-node/1"


def _finished(task: AIAnalysisTask) -> None:
    task.status = TaskStatus.SUCCESS.value
    task.completed_at = utcnow()


def _cancel_requested(task: AIAnalysisTask) -> None:
    task.cancel_requested_at = utcnow()


def _live_lease(task: AIAnalysisTask) -> None:
    task.status = TaskStatus.PROCESSING.value
    task.heartbeat_at = utcnow()
    task.worker_name = "another-node/7"
    task.attempt = 1


def _not_due(task: AIAnalysisTask) -> None:
    task.status = TaskStatus.RETRY.value
    task.next_attempt_at = utcnow() + timedelta(minutes=10)


def _too_many_deliveries(task: AIAnalysisTask) -> None:
    task.deliveries = get_settings().task_max_deliveries


# One scenario per rule: the change to a fresh pending task that only that rule stops, and the
# ordinary decision's action.
SCENARIOS: dict[str, tuple[Callable[[AIAnalysisTask], None], claim.Action]] = {
    "finished": (_finished, claim.Action.SKIP),
    "cancel_requested": (_cancel_requested, claim.Action.CANCEL),
    "live_lease": (_live_lease, claim.Action.SKIP),
    "not_due": (_not_due, claim.Action.SKIP),
    "too_many_deliveries": (_too_many_deliveries, claim.Action.FAIL),
}


def _attempt(task_id: uuid.UUID) -> int:
    with open_session() as db:
        task = db.get(AIAnalysisTask, task_id)
        assert task is not None
        return task.attempt


@pytest.mark.parametrize("rule", claim.CLAIM_RULES, ids=[r.name for r in claim.CLAIM_RULES])
def test_each_claim_rule_holds_on_both_paths(
    rule: claim.ClaimRule,
    api: Api,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    migrated: ServicesUnderTest,
) -> None:
    assert rule.name in SCENARIOS, f"claim rule {rule.name!r} has no scenario: add one to SCENARIOS"
    change, action = SCENARIOS[rule.name]
    ready = api.ready_record(therapist, learner)
    submitted = api.submit(learner, ready["record"]["practice_record_id"])
    assert submitted.status_code == 202, submitted.text
    task_id = uuid.UUID(submitted.json()["task_id"])
    with open_session() as db:
        task = db.get(AIAnalysisTask, task_id)
        assert task is not None
        change(task)
        db.add(task)
        db.commit()
        db.refresh(task)
        decision = claim.decide_claim(task, utcnow(), WORKER, get_settings())
    assert decision.action is action, decision
    before = _attempt(task_id)

    assert fastrun.claim(task_id, WORKER) is None  # declined: nothing written
    assert _attempt(task_id) == before

    without = tuple(r for r in claim.CLAIM_RULES if r is not rule)
    started = fastrun.claim(task_id, WORKER, sql=fastrun.claim_sql(without))
    assert started is not None, f"without {rule.name}'s SQL the fast claim still declined: the scenario tests nothing"
    assert _attempt(task_id) == before + 1


def test_the_fast_claim_is_built_from_every_rule() -> None:
    for rule in claim.CLAIM_RULES:
        assert rule.sql in fastrun.CLAIM_SQL, rule.name
