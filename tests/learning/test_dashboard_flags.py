"""The dashboard's flag on real analyses: a learner whose scores fall, and one who stopped
practising (their analyses moved a week into the past, as the clock would)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, recording
from vocalborn.db import open_session
from vocalborn.tasks.models import AIAnalysisTask

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess("flags", migrated.data_dir, concurrency=2).start()
    yield w
    w.stop()


def _linked(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    therapist = api.register("therapist")
    learner = api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 200
    return therapist, learner


def _practise(api: Api, learner: dict[str, Any], sentence_id: str, audio: bytes) -> str:
    session = api.session(learner)
    rec = api.record(learner, session["practice_session_id"], sentence_id, audio)
    assert rec.status_code == 201, rec.text
    task_id = str(api.submit(learner, rec.json()["practice_record_id"]).json()["task_id"])
    assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=120)["status"] == "success"
    return task_id


def _row(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> dict[str, Any]:
    rows = api.client.get("/api/v1/therapists/me/learners", headers=therapist["headers"]).json()
    return next(r for r in rows if r["user_id"] == learner["user"]["user_id"])


def test_a_learner_whose_scores_fall_is_flagged(api: Api, worker: WorkerProcess) -> None:
    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    good = recording(voice="Male1", fmt="mp3")
    bad = recording("我明天要去台北看醫生，下午三點見面。", voice="Male1", fmt="mp3")  # another sentence said
    for audio in (good, good, bad, bad, bad):
        _practise(api, learner, sentence["sentence_id"], audio)
    history = api.client.get("/api/v1/tasks/analysis", headers=learner["headers"]).json()["items"]
    newest, older = [i["overall_score"] for i in history[:3]], [i["overall_score"] for i in history[3:]]
    row = _row(api, therapist, learner)
    falling = sum(older) / len(older) - sum(newest) / len(newest) >= 10
    assert falling, (newest, older)  # the premise: saying another sentence scores much lower
    assert row["flagged"] and row["flag_reasons"] == ["declining"], row
    assert row["attempts_this_week"] == 5


def test_a_learner_who_stopped_practising_is_flagged_inactive(api: Api, worker: WorkerProcess) -> None:
    from sqlalchemy import update

    therapist, learner = _linked(api)
    assert _row(api, therapist, learner)["flag_reasons"] == ["never_practised"]
    sentence = api.sentence(therapist, recording())
    task_id = _practise(api, learner, sentence["sentence_id"], recording(voice="Male1", fmt="mp3"))
    assert _row(api, therapist, learner)["flagged"] is False
    # a second learner who never practised comes first in the list: flagged learners lead
    idle = api.register("learner", email=f"zzz-{uuid.uuid4().hex[:6]}@example.com")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=idle["headers"], json={"code": code}).status_code == 200
    rows = api.client.get("/api/v1/therapists/me/learners", headers=therapist["headers"]).json()
    assert [r["user_id"] for r in rows] == [idle["user"]["user_id"], learner["user"]["user_id"]]
    assert [r["flagged"] for r in rows] == [True, False]
    with open_session() as db:
        task = db.get(AIAnalysisTask, uuid.UUID(task_id))
        assert task is not None
        db.execute(
            update(AIAnalysisTask)
            .where(AIAnalysisTask.task_id == task.task_id)  # type: ignore[arg-type]
            .values(created_at=task.created_at - timedelta(days=8))
        )
        db.commit()
    row = _row(api, therapist, learner)
    assert row["flag_reasons"] == ["inactive"] and row["attempts_this_week"] == 0, row
