"""Every domain event of issue #25 lands in the outbox in the transaction of its change: on the
ordinary (ORM) paths and on PostgreSQL's one-statement paths (the batch submit, the worker's
claim and success) alike, with ids only; a refused change writes none.

In-process calls against the suite's real database; no worker consumes this module's messages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from tests.support import Api


def _outbox(**where: Any) -> list[dict[str, Any]]:
    """The outbox rows whose subject holds every given id, in outbox order."""
    from sqlmodel import col, select

    from vocalborn.db import open_session
    from vocalborn.events.models import EventOutbox

    with open_session() as db:
        rows = db.exec(select(EventOutbox).order_by(col(EventOutbox.seq))).all()
    wanted = {k: str(v) for k, v in where.items()}
    return [
        {
            "type": r.event_type,
            "version": r.schema_version,
            "key": r.ordering_key,
            "subject": r.subject,
            "event_id": r.event_id,
            "sent_at": r.sent_at,
        }
        for r in rows
        if all(r.subject.get(k) == v for k, v in wanted.items())
    ]


def _report() -> Any:
    from vocalborn.analysis.types import AnalysisReport

    return AnalysisReport(80.0, 81.0, 82.0, 83.0, {"timing_analysis": {}}, suggestions="ok", completeness_score=90.0)


def _run(task_id: uuid.UUID) -> None:
    from vocalborn.tasks.worker import runner

    claim = runner.claim_task(task_id, "test-worker/1")
    assert isinstance(claim, runner.Claim)
    assert runner._complete(claim, _report()) is runner.Outcome.SUCCEEDED


def _analysis_subject(task_id: str, learner: dict[str, Any], record_id: str) -> dict[str, str]:
    return {"task_id": task_id, "learner_id": learner["user"]["user_id"], "practice_record_id": record_id}


@pytest.mark.parametrize("path", ["fast", "ordinary"])
def test_an_analysis_writes_submitted_started_succeeded(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vocalborn.tasks.worker import fastrun

    is_pg = api is not None and _is_postgresql()
    if path == "ordinary":
        monkeypatch.setattr(fastrun, "_database_url", lambda: None)
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    headers = dict(learner["headers"])
    if path == "ordinary":  # an Idempotency-Key takes the ordinary submit
        headers["Idempotency-Key"] = uuid.uuid4().hex
    r = api.client.post(
        "/api/v1/tasks/analysis/submit", headers=headers, json={"practice_record_id": record_id, "parameters": {}}
    )
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    _run(uuid.UUID(task_id))
    rows = _outbox(task_id=task_id)
    assert [row["type"] for row in rows] == ["analysis.submitted", "analysis.started", "analysis.succeeded"]
    subject = _analysis_subject(task_id, learner, record_id)
    for row in rows:
        assert row["subject"] == subject
        assert row["version"] == 1
        assert str(row["key"]) == learner["user"]["user_id"]
        assert row["sent_at"] is None
    assert len({row["event_id"] for row in rows}) == 3
    if path == "fast" and is_pg:  # the one-statement paths really ran (their spies are the worker tests')
        assert _events_of(task_id) == ["submitted", "started", "succeeded"]


def _is_postgresql() -> bool:
    from vocalborn.config import get_settings

    return get_settings().effective_database_url.startswith("postgresql")


def _events_of(task_id: str) -> list[str]:
    from vocalborn.db import open_session

    with open_session() as db:
        return list(
            db.execute(
                text("SELECT event_type FROM ai_analysis_task_events WHERE task_id = :t ORDER BY event_id"),
                {"t": uuid.UUID(task_id)},
            ).scalars()
        )


def test_the_fast_paths_write_the_outbox_in_their_own_statement(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch submit and the worker's claim and success write their outbox rows themselves:
    with the ORM's outbox writer made to fail, they still do."""
    if not _is_postgresql():
        pytest.skip("the one-statement paths run on PostgreSQL only")
    from vocalborn.events import outbox

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the ordinary path's outbox writer was used")

    monkeypatch.setattr(outbox, "add", refuse)
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    r = api.submit(learner, record_id)
    assert r.status_code == 202, r.text
    task_id = r.json()["task_id"]
    _run(uuid.UUID(task_id))
    assert [row["type"] for row in _outbox(task_id=task_id)] == [
        "analysis.submitted",
        "analysis.started",
        "analysis.succeeded",
    ]


def test_cancel_and_a_refused_transition(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    from vocalborn.db import open_session
    from vocalborn.tasks import unit_of_work
    from vocalborn.tasks.models import AIAnalysisTask
    from vocalborn.tasks.states import EventType

    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    r = api.client.delete(f"/api/v1/tasks/analysis/{task_id}", headers=learner["headers"])
    assert r.status_code == 200, r.text
    assert [row["type"] for row in _outbox(task_id=task_id)] == ["analysis.submitted", "analysis.cancelled"]
    # A worker's start fenced on an attempt the task no longer has: refused, rolled back, no event.
    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        assert task is not None
        db.expunge(task)
        task.status = "pending"  # what a worker that read it earlier believes (not written)
        assert unit_of_work.transition(db, task, EventType.STARTED, expect_attempt=task.attempt) is None
    assert [row["type"] for row in _outbox(task_id=task_id)] == ["analysis.submitted", "analysis.cancelled"]


def test_links_assignments_reviews_and_erasure(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    lid, tid = learner["user"]["user_id"], therapist["user"]["user_id"]
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    r = api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code})
    assert r.status_code == 200, r.text
    ready = api.ready_record(therapist, learner)
    sentence_id = ready["sentence"]["sentence_id"]
    r = api.client.post(
        f"/api/v1/learners/{lid}/assignments", headers=therapist["headers"], json={"sentence_id": sentence_id}
    )
    assert r.status_code in (200, 201), r.text
    again = api.client.post(
        f"/api/v1/learners/{lid}/assignments", headers=therapist["headers"], json={"sentence_id": sentence_id}
    )
    assert again.status_code in (200, 201), again.text  # assigned already: no second event
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    _run(uuid.UUID(task_id))
    for comment in ("Slow down.", "Better now."):  # a create and an edit: two saves, two events
        r = api.client.put(
            f"/api/v1/tasks/analysis/{task_id}/review",
            headers=therapist["headers"],
            json={"overall_score": 80, "comment": comment},
        )
        assert r.status_code in (200, 201), r.text
    r = api.client.delete(f"/api/v1/links/{lid}", headers=therapist["headers"])
    assert r.status_code in (200, 204), r.text

    mine = _outbox(learner_id=lid)
    assert [row["type"] for row in mine] == [
        "link.created",
        "assignment.created",
        "analysis.submitted",
        "analysis.started",
        "analysis.succeeded",
        "review.saved",
        "review.saved",
        "link.ended",
    ]
    assert mine[0]["subject"] == {"learner_id": lid, "therapist_id": tid}
    assert mine[1]["subject"] == {
        "assignment_id": r_assignment_id(lid, sentence_id),
        "learner_id": lid,
        "sentence_id": sentence_id,
        "assigned_by": tid,
    }
    review = mine[5]["subject"]
    assert review["task_id"] == task_id and review["therapist_id"] == tid and review["learner_id"] == lid
    assert mine[6]["subject"] == review  # the same review, edited
    assert mine[7]["subject"] == {"learner_id": lid, "therapist_id": tid}
    for row in mine:  # ids only: every value is a UUID
        assert all(uuid.UUID(v) for v in row["subject"].values())

    r = api.client.delete("/api/v1/me", headers=learner["headers"])
    assert r.status_code in (200, 202, 204), r.text
    erased = _outbox(user_id=lid)
    assert [row["type"] for row in erased] == ["account.erased"]
    assert str(erased[0]["key"]) == lid


def r_assignment_id(learner_id: str, sentence_id: str) -> str:
    from vocalborn.db import open_session

    with open_session() as db:
        return str(
            db.execute(
                text("SELECT assignment_id FROM sentence_assignments WHERE learner_id = :l AND sentence_id = :s"),
                {"l": uuid.UUID(learner_id), "s": uuid.UUID(sentence_id)},
            ).scalar_one()
        )


@pytest.mark.postgresql
def test_a_transaction_that_adds_rows_notifies_the_relay_once_at_commit_and_never_on_rollback(
    migrated: Any,
) -> None:
    """The relay's wake-up call (events/outbox.py): one NOTIFY per committed transaction that
    added outbox rows, however many; none for a rolled-back one or one that added none."""
    import psycopg

    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.events import outbox

    url = get_settings().effective_database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url, autocommit=True) as listener:
        listener.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")

        def heard() -> int:
            return sum(1 for _ in listener.notifies(timeout=0.5))

        def add(db: Any) -> None:
            outbox.add(db, "link.created", learner_id=uuid.uuid4(), therapist_id=uuid.uuid4())

        assert heard() == 0
        with open_session() as db:
            add(db)
            add(db)
            db.flush()
            add(db)
            assert heard() == 0  # nothing before COMMIT
            db.commit()
        assert heard() == 1
        with open_session() as db:
            add(db)
            db.flush()
            db.rollback()
            db.execute(text("SELECT 1"))
            db.commit()  # a later transaction of the same session that added nothing
        assert heard() == 0
