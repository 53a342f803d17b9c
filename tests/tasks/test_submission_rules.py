"""Each submission rule of the table (tasks/submission/rules.py), on both paths: the ordinary path
answers with the rule's error (or the existing task), the fast statement declines the same submit,
and without the rule's SQL half the fast statement would have written it (so the scenario tests
that rule, and dropping the SQL half of a rule fails here)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlmodel import select

from tests.services import ServicesUnderTest
from tests.support import Api, recording
from vocalborn.auth.models import User
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.errors import Conflict, NotFound, TooManyActive
from vocalborn.kit.fastdb import close_pool
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import TaskStatus
from vocalborn.tasks.submission import fastpath, ordinary, rules

pytestmark = pytest.mark.postgresql


@dataclass
class Case:
    user_id: uuid.UUID
    record_id: uuid.UUID
    # what the ordinary path answers: an error class, or "existing" (the task it returns)
    answer: type[Exception] | uuid.UUID


def _task_of(api: Api, learner: dict[str, Any], record_id: str) -> uuid.UUID:
    r = api.submit(learner, record_id)
    assert r.status_code == 202, r.text
    return uuid.UUID(r.json()["task_id"])


def _another_record(api: Api, learner: dict[str, Any], ready: dict[str, Any]) -> str:
    r = api.record(
        learner,
        ready["session"]["practice_session_id"],
        ready["sentence"]["sentence_id"],
        recording(voice="Male1"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["practice_record_id"])


def _own_record(api: Api, therapist: dict[str, Any], learner: dict[str, Any], mp: pytest.MonkeyPatch) -> Case:
    ready = api.ready_record(therapist, learner)
    stranger = uuid.UUID(api.register("learner")["user"]["user_id"])
    return Case(stranger, uuid.UUID(ready["record"]["practice_record_id"]), NotFound)


def _no_existing_task(api: Api, therapist: dict[str, Any], learner: dict[str, Any], mp: pytest.MonkeyPatch) -> Case:
    ready = api.ready_record(therapist, learner)
    record_id = ready["record"]["practice_record_id"]
    task_id = _task_of(api, learner, record_id)
    with open_session() as db:  # a successful analysis (an active one would meet the unique index too)
        task = db.get(AIAnalysisTask, task_id)
        assert task is not None
        task.status = TaskStatus.SUCCESS.value
        task.completed_at = utcnow()
        db.add(task)
        db.commit()
    return Case(uuid.UUID(learner["user"]["user_id"]), uuid.UUID(record_id), task_id)


def _audio_kept(api: Api, therapist: dict[str, Any], learner: dict[str, Any], mp: pytest.MonkeyPatch) -> Case:
    ready = api.ready_record(therapist, learner)
    record_id = uuid.UUID(ready["record"]["practice_record_id"])
    with open_session() as db:
        record = db.get(PracticeRecord, record_id)
        assert record is not None
        record.audio_deleted_at = utcnow()
        db.add(record)
        db.commit()
    return Case(uuid.UUID(learner["user"]["user_id"]), record_id, Conflict)


def _under_active_limit(api: Api, therapist: dict[str, Any], learner: dict[str, Any], mp: pytest.MonkeyPatch) -> Case:
    ready = api.ready_record(therapist, learner)
    second = _another_record(api, learner, ready)
    _task_of(api, learner, ready["record"]["practice_record_id"])  # one active task
    mp.setattr(get_settings(), "max_active_tasks_per_learner", 1)
    return Case(uuid.UUID(learner["user"]["user_id"]), uuid.UUID(second), TooManyActive)


# One scenario per rule of the table: a submit that only that rule stops.
SCENARIOS: dict[str, Callable[[Api, dict[str, Any], dict[str, Any], pytest.MonkeyPatch], Case]] = {
    "own_record": _own_record,
    "no_existing_task": _no_existing_task,
    "audio_kept": _audio_kept,
    "under_active_limit": _under_active_limit,
}


def _fast(case: Case, table: tuple[rules.Rule, ...]) -> fastpath.Submitted | None:
    async def go() -> fastpath.Submitted | None:
        try:
            return await fastpath.submit(
                case.user_id,
                case.record_id,
                {"analysis_type": "full"},
                reanalyse=False,
                request_id=None,
                sql=fastpath.submit_sql(table),
            )
        finally:
            await close_pool()  # the pool belongs to this event loop

    return asyncio.run(go())


def _tasks_of(record_id: uuid.UUID) -> set[uuid.UUID]:
    with open_session() as db:
        return set(db.exec(select(AIAnalysisTask.task_id).where(AIAnalysisTask.practice_record_id == record_id)))


@pytest.mark.parametrize("rule", rules.RULES, ids=[r.name for r in rules.RULES])
def test_each_submission_rule_holds_on_both_paths(
    rule: rules.Rule,
    api: Api,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    migrated: ServicesUnderTest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scenario = SCENARIOS.get(rule.name)
    assert scenario is not None, f"rule {rule.name!r} has no scenario: add one to SCENARIOS"
    case = scenario(api, therapist, learner, monkeypatch)
    before = _tasks_of(case.record_id)

    # the ordinary path: the rule's answer
    with open_session() as db:
        user = db.get(User, case.user_id)
        assert user is not None
        if isinstance(case.answer, uuid.UUID):
            outcome = ordinary.submit_analysis(db, user, case.record_id, {"analysis_type": "full"})
            assert not outcome.created and outcome.task.task_id == case.answer
        else:
            with pytest.raises(case.answer):
                ordinary.submit_analysis(db, user, case.record_id, {"analysis_type": "full"})
    assert _tasks_of(case.record_id) == before

    # the fast statement declines it, writing nothing
    assert _fast(case, rules.RULES) is None
    assert _tasks_of(case.record_id) == before

    # ... and it is this rule's SQL half that declines it
    without = tuple(r for r in rules.RULES if r is not rule)
    done = _fast(case, without)
    assert done is not None, f"without {rule.name}'s SQL the fast path still declined: the scenario tests nothing"
    assert _tasks_of(case.record_id) == before | {done.task_id}


def test_the_fast_statement_is_built_from_every_rule() -> None:
    for rule in rules.RULES:
        assert rule.sql in fastpath.SUBMIT_SQL, rule.name
