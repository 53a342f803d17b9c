"""The one-statement submit and status (tasks/submission/fastpath.py) write and answer exactly what the
ordinary path does; they are an optimisation, never a second set of rules."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from sqlmodel import select

from tests.services import ServicesUnderTest
from tests.support import Api, recording
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.kit.fastdb import close_pool
from vocalborn.practice.models import PracticeRecord, RecordStatus
from vocalborn.tasks.models import AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.submission import fastpath

# What may differ between two tasks written by the two paths: ids, times and the key itself.
_OWN = {"task_id", "celery_task_id", "practice_record_id", "created_at", "updated_at", "request_id"}
_OWN |= {"idempotency_key", "request_fingerprint"}


def _rows(task_id: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        assert task is not None
        events = db.exec(select(AIAnalysisTaskEvent).where(AIAnalysisTaskEvent.task_id == task.task_id)).all()
        record = db.get(PracticeRecord, task.practice_record_id)
        assert record is not None and record.ai_task_id == task.task_id
        return (
            {k: v for k, v in task.model_dump().items() if k not in _OWN},
            [
                {k: v for k, v in e.model_dump().items() if k not in ("event_id", "task_id", "created_at")}
                for e in events
            ],
            record.record_status,
        )


async def _fast_submit(user_id: uuid.UUID, record_id: uuid.UUID) -> fastpath.Submitted | None:
    try:
        return await fastpath.submit(user_id, record_id, {"analysis_type": "full"}, reanalyse=False, request_id="r1")
    finally:
        await close_pool()  # the pool belongs to this event loop


def test_both_paths_write_the_same_task_event_and_record(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], migrated: ServicesUnderTest
) -> None:
    ready = api.ready_record(therapist, learner)
    session, sentence = ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"]
    fast = api.submit(learner, ready["record"]["practice_record_id"])
    other = api.record(learner, session, sentence, recording(voice="Male1")).json()["practice_record_id"]
    # An Idempotency-Key sends a submit down the ordinary path.
    slow = api.client.post(
        "/api/v1/tasks/analysis/submit",
        json={"practice_record_id": other},
        headers={**learner["headers"], "Idempotency-Key": uuid.uuid4().hex},
    )
    assert fast.status_code == slow.status_code == 202, (fast.text, slow.text)
    assert set(fast.json()) == set(slow.json())
    assert _rows(fast.json()["task_id"]) == _rows(slow.json()["task_id"])
    fast_status = api.status(learner, fast.json()["task_id"])
    slow_status = api.status(learner, slow.json()["task_id"])
    assert set(fast_status) == set(slow_status)
    assert slow_status["queue_position"] == fast_status["queue_position"] + 1
    assert fast_status["worker_name"] is None and fast_status["status"] == "pending"


def test_the_fast_path_answers_only_what_it_can_decide(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], migrated: ServicesUnderTest
) -> None:
    ready = api.ready_record(therapist, learner)
    record_id = uuid.UUID(ready["record"]["practice_record_id"])
    user_id = uuid.UUID(learner["user"]["user_id"])
    stranger = uuid.UUID(api.register("learner")["user"]["user_id"])
    if migrated.database_kind == "sqlite":  # the embedded default: always the ordinary path
        assert asyncio.run(_fast_submit(user_id, record_id)) is None
        pytest.skip("the rest needs PostgreSQL: the fast path only runs there")
    assert asyncio.run(_fast_submit(stranger, record_id)) is None  # not the owner
    assert asyncio.run(_fast_submit(uuid.uuid4(), record_id)) is None  # no such user
    done = asyncio.run(_fast_submit(user_id, record_id))
    assert done is not None and done.record_id == record_id
    assert asyncio.run(_fast_submit(user_id, record_id)) is None  # now it has an active task
    # the API then answers with that task, through the ordinary path
    again = api.submit(learner, str(record_id))
    assert again.status_code == 200 and again.json()["task_id"] == str(done.task_id), again.text


def test_a_stale_waiting_count_answers_at_once_and_is_counted_again_in_the_background() -> None:
    """A submit never waits for the queue to be counted, once there is a count: it gets the last
    count plus this process's submits since, and one count runs in the background."""

    class GatedCount(fastpath.WaitingCount):
        """The count (one SQL statement on the real pool elsewhere) held until the gate opens."""

        def __init__(self) -> None:
            super().__init__(ttl=0.0)  # every count is stale at once
            self.counts = 0
            self.gate = asyncio.Event()

        async def read(self) -> int:
            self.counts += 1
            await self.gate.wait()
            self.set(100 * self.counts)
            return 100 * self.counts

    async def scenario() -> None:
        waiting = GatedCount()
        waiting.gate.set()
        assert await waiting.position() == 100  # the first count: waited for
        waiting.gate.clear()
        waiting.added()
        assert await waiting.position() == 101  # stale: the last count and the submit since, at once
        assert await waiting.position() == 101
        await asyncio.sleep(0.01)  # the background count starts (and waits at the gate)
        assert await waiting.position() == 101
        assert waiting.counts == 2  # one count in the background, not one per submit
        waiting.gate.set()
        counting = waiting.reading
        assert counting is not None
        await counting
        assert await waiting.position() == 200  # the background count's
        waiting.usable = 0.0  # a count too old to use (after a quiet spell): the submit waits
        assert await waiting.position() == 300
        assert waiting.counts == 3

    asyncio.run(scenario())


@pytest.mark.postgresql
def test_one_batch_statement_writes_what_each_submit_alone_would(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], migrated: ServicesUnderTest
) -> None:
    """A batch is one statement: a record twice in it gets one task, and a learner's limit counts
    the batch's earlier submits; what the statement leaves, the ordinary path decides."""
    from datetime import timedelta

    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.submission import batch as submit_batch

    ready = api.ready_record(therapist, learner)
    session, sentence = ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"]
    records = [uuid.UUID(ready["record"]["practice_record_id"])]
    for _ in range(2):
        r = api.record(learner, session, sentence, recording(voice="Male1"))
        records.append(uuid.UUID(r.json()["practice_record_id"]))
    user = uuid.UUID(learner["user"]["user_id"])
    stranger = uuid.UUID(therapist["user"]["user_id"])
    start = utcnow()
    plan = [(user, records[0]), (user, records[0]), (stranger, records[1]), (user, records[1]), (user, records[2])]
    rows = [
        submit_batch.Row(
            who,
            rid,
            uuid.uuid4(),
            '{"analysis_type": "full"}',
            f"b{k}" if k else None,
            start + timedelta(microseconds=k),
            False,
        )
        for k, (who, rid) in enumerate(plan)
    ]
    params = fastpath._batch_params(rows)
    params["limit"] = 3  # the learner's third submit of the batch (the second of records[0]) counts
    assert params["nth"] == [0, 1, 0, 2, 3]

    async def run() -> dict[uuid.UUID, submit_batch.Written]:
        try:
            return await submit_batch._execute(fastpath.SUBMIT_SQL, params)
        finally:
            await close_pool()

    written = asyncio.run(run())
    # 0: written; 1: the same record, one active task (the unique index); 2: not the stranger's
    # record; 3: written, the learner's third of the batch, under the limit of 3; 4: would be the
    # fourth: left to the ordinary path
    assert set(written) == {rows[0].task_id, rows[3].task_id}
    assert all(w.audio_seconds is not None and w.audio_seconds > 0 for w in written.values())
    with open_session() as db:
        for k in (0, 3):
            task = db.get(AIAnalysisTask, rows[k].task_id)
            assert task is not None and task.status == "pending" and task.request_id == (f"b{k}" if k else None)
            assert task.created_at == rows[k].now and task.task_params == {"analysis_type": "full"}
            record = db.get(PracticeRecord, rows[k].record_id)
            assert (
                record is not None
                and record.ai_task_id == task.task_id
                and record.record_status == RecordStatus.AI_QUEUED
            )
            events = db.exec(select(AIAnalysisTaskEvent).where(AIAnalysisTaskEvent.task_id == task.task_id)).all()
            assert [e.event_type for e in events] == ["submitted"]
        for k in (1, 2, 4):
            assert db.get(AIAnalysisTask, rows[k].task_id) is None
    # records[2] was left without a task: submitted now, with two active, it is decided alone
    limit = get_settings().max_active_tasks_per_learner
    late = api.submit(learner, str(records[2]))
    assert late.status_code == (202 if limit <= 0 or limit > 2 else 429), late.text


def test_a_stale_capacity_answers_at_once_and_is_read_again_in_the_background(
    migrated: ServicesUnderTest, monkeypatch: Any
) -> None:
    """The workers' capacity (for the ETA) is read again after ``CAPACITY_TTL``: in the
    background, one read at a time, the requests meanwhile answered with the last one; only a
    capacity too old to use (the first, or after a quiet spell) is waited for."""
    import time

    from vocalborn.tasks.api import task_status
    from vocalborn.tasks.worker import estimates

    reads: list[float] = []
    real = task_status._capacity

    def counted() -> estimates.Capacity:
        reads.append(time.monotonic())
        time.sleep(0.05)  # a read that takes a while: requests meanwhile must not wait for it
        return real()

    monkeypatch.setattr(task_status, "_capacity", counted)
    stale = estimates.Capacity(mean_seconds=7.0, slots=3, at=time.monotonic() - estimates.CAPACITY_TTL - 1)

    async def scenario() -> None:
        estimates._capacity_cache["c"] = stale
        answers = [await task_status.current_capacity() for _ in range(5)]
        assert all(a is stale for a in answers)  # at once, the last one
        assert len(reads) <= 1  # one read, in the background
        reading = task_status.CAPACITY.reading
        assert reading is not None
        fresh = await reading
        assert len(reads) == 1 and fresh is not stale and fresh.at > stale.at
        assert await task_status.current_capacity() is fresh  # cached now, no read
        old = estimates.Capacity(mean_seconds=7.0, slots=3, at=time.monotonic() - task_status.CAPACITY_USABLE - 1)
        estimates._capacity_cache["c"] = old
        waited = await task_status.current_capacity()  # too old to use: waited for
        assert waited is not old and len(reads) == 2

    try:
        asyncio.run(scenario())
    finally:
        estimates._capacity_cache.clear()
