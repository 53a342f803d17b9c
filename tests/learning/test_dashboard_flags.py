"""The dashboard's flag on real analyses: attempts that do not count, and a learner who stopped
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


def _cut(wav: bytes, seconds: float) -> bytes:
    """The first ``seconds`` of a WAV recording (an accidental tap on record)."""
    import io
    import wave

    with wave.open(io.BytesIO(wav)) as src:
        params = src.getparams()
        frames = src.readframes(int(params.framerate * seconds))
    out = io.BytesIO()
    with wave.open(out, "wb") as dst:
        dst.setparams(params)
        dst.writeframes(frames)
    return out.getvalue()


def test_wrong_sentences_and_a_short_attempt_do_not_count_nor_flag(api: Api, worker: WorkerProcess) -> None:
    """Issue #26: real recordings of another sentence and a 0.9 s one are kept, marked not counted
    with the reason, and change no mean, week count or flag (before, they made the learner
    "declining" with 0/0/0/0 "successes")."""
    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    good = recording(voice="Male1", fmt="mp3")
    bad = recording("我明天要去台北看醫生，下午三點見面。", voice="Male1", fmt="mp3")  # another sentence said
    short = _cut(recording(voice="Male1"), 0.9)
    tasks = [_practise(api, learner, sentence["sentence_id"], audio) for audio in (good, good, bad, bad, short)]
    history = api.client.get("/api/v1/tasks/analysis", headers=learner["headers"]).json()["items"]
    by_task = {i["task_id"]: i for i in history}
    assert [by_task[t]["counted"] for t in tasks] == [True, True, False, False, False]
    assert [by_task[t]["not_counted_reason"] for t in tasks[2:]] == ["wrong_sentence", "wrong_sentence", "too_short"]
    counted = [by_task[t]["overall_score"] for t in tasks[:2]]
    row = _row(api, therapist, learner)
    assert row["flagged"] is False and row["flag_reasons"] == [], row
    assert row["attempts_this_week"] == 2
    assert row["mean_overall_last_10"] == pytest.approx(sum(counted) / 2, abs=0.01)
    progress = api.client.get(
        f"/api/v1/learners/{learner['user']['user_id']}/progress", headers=therapist["headers"]
    ).json()
    assert [(s["attempts"], s["not_counted_attempts"]) for s in progress["sentences"]] == [(2, 3)]


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
