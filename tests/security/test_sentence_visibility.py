"""No sentence text crosses therapists (issue #23): every route that shows a sentence, or shows
it through another object (an assignment, an analysis, its result, events, reviews, a recording,
history, progress), applies the one visibility rule; an invisible sentence is a 404.

The scene: therapist C has a private sentence; learner L, linked to C, practised it (a finished
analysis with per-character results, and C's review); then L moved to therapist T. T, T's other
learner M and an admin try every route. L keeps their own history (their data); T never gets
C's text, neither by reading L's data nor by assigning C's sentence to a learner of theirs.

The routes that return sentence text are read from the OpenAPI document, so a new one that is
not walked here fails ``test_every_route_that_returns_sentence_text_is_walked``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.support import Api, recording
from vocalborn.db import open_session
from vocalborn.learning.models import TherapistReview
from vocalborn.main import app
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

# The routes walked below (operation ids); checked against the OpenAPI document.
WALKED = {
    "create_sentence",  # answers the author's own new sentence
    "share_sentence",
    "list_sentences",
    "get_sentence",
    "list_my_analyses",
    "get_learner_progress",
    "list_assignments",
    "add_assignment",
    "get_learner_goals",
    # issue #26
    "update_sentence",
    "get_learner_drills",
    "assign_drill",
}


def _link(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    r = api.client.post("/api/v1/links/invitations", headers=therapist["headers"], json={})
    assert r.status_code == 201, r.text
    r = api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": r.json()["code"]})
    assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def scene(api: Api) -> dict[str, Any]:
    c, t = api.register("therapist"), api.register("therapist")
    learner, other = api.register("learner"), api.register("learner")
    secret = f"私密句子{uuid.uuid4().hex[:6]}"
    _link(api, c, learner)
    _link(api, t, other)
    private = api.sentence(c, recording(), text=secret, shared=False)
    t_own = api.sentence(t, recording(), text="治療師T的句子", shared=False)
    sid = private["sentence_id"]
    # C assigns it while L is theirs; L records an attempt on it.
    r = api.client.post(
        f"/api/v1/learners/{learner['user']['user_id']}/assignments", headers=c["headers"], json={"sentence_id": sid}
    )
    assert r.status_code == 201, r.text
    session = api.session(learner)
    r = api.record(learner, session["practice_session_id"], sid, recording(voice="Male1"))
    assert r.status_code == 201, r.text
    record_id = r.json()["practice_record_id"]
    # A finished analysis with per-character results (the text, character by character), and
    # C's review of it: written as the worker and the review route would.
    with open_session() as db:
        record = db.get(PracticeRecord, uuid.UUID(record_id))
        assert record is not None
        now = utcnow()
        task = AIAnalysisTask(
            celery_task_id=uuid.uuid4().hex,
            practice_record_id=record.practice_record_id,
            user_id=record.user_id,
            status="success",
            progress=100,
            created_at=now - timedelta(seconds=5),
            updated_at=now,
            completed_at=now,
        )
        db.add(task)
        db.flush()
        chars = [{"index": i, "char": ch, "deviating": i == 0} for i, ch in enumerate(secret)]
        db.add(AIAnalysisResult(task_id=task.task_id, overall_score=80.0, detailed_analysis={"characters": chars}))
        db.add(
            TherapistReview(
                task_id=task.task_id,
                therapist_id=uuid.UUID(c["user"]["user_id"]),
                overall_score=75.0,
                characters=[{"index": 0, "char": secret[0], "deviating": True}],
                comment=f"about {secret}",
                updated_at=now,
            )
        )
        db.commit()
        task_id = str(task.task_id)
    # L moves to T.
    r = api.client.delete(f"/api/v1/links/{learner['user']['user_id']}", headers=learner["headers"])
    assert r.status_code == 204, r.text
    _link(api, t, learner)
    return {
        "c": c,
        "t": t,
        "learner": learner,
        "other": other,
        "admin": api.admin(),
        "secret": secret,
        "sid": sid,
        "t_own": t_own["sentence_id"],
        "session": session["practice_session_id"],
        "record": record_id,
        "task": task_id,
    }


def test_a_therapist_cannot_read_a_foreign_private_sentence_through_anything(api: Api, scene: dict[str, Any]) -> None:
    t, learner, secret = scene["t"], scene["learner"], scene["secret"]
    lid = learner["user"]["user_id"]
    seen: list[str] = []

    def get(path: str, expect: int, **params: Any) -> Any:
        r = api.client.get(path, headers=t["headers"], params=params)
        assert r.status_code == expect, (path, r.status_code, r.text)
        seen.append(r.text)
        return r.json() if r.headers.get("content-type", "").startswith("application/json") else None

    # The sentence itself, its reference voice, the list.
    get(f"/api/v1/practice/sentences/{scene['sid']}", 404)
    get(f"/api/v1/practice/sentences/{scene['sid']}/audio", 404)
    assert scene["sid"] not in {s["sentence_id"] for s in get("/api/v1/practice/sentences", 200, limit=100)}
    r = api.client.put(f"/api/v1/practice/sentences/{scene['sid']}/shared", headers=t["headers"], json={"shared": True})
    assert r.status_code == 404, r.text
    # Through the learner's analysis: status, result, events, reviews; the live socket too.
    for tail in ("status", "result", "events", "reviews"):
        get(f"/api/v1/tasks/analysis/{scene['task']}/{tail}", 404)
    r = api.client.put(
        f"/api/v1/tasks/analysis/{scene['task']}/review", headers=t["headers"], json={"overall_score": 10}
    )
    assert r.status_code == 404, r.text
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        api.client.websocket_connect(f"/api/v1/tasks/ws/task/{scene['task']}?token={t['token']}") as ws,
    ):
        ws.receive_json()
    assert refused.value.code != 1000
    # Through the recording and its session.
    get(f"/api/v1/practice/records/{scene['record']}", 404)
    get(f"/api/v1/practice/records/{scene['record']}/audio", 404)
    assert get(f"/api/v1/practice/sessions/{scene['session']}/records", 200) == []
    assert get(f"/api/v1/tasks/analysis/session/{scene['session']}/status", 200)["tasks"] == []
    # Through history (theirs, and the learner's), progress and the practice set.
    assert get("/api/v1/tasks/analysis", 200)["items"] == []
    assert get("/api/v1/tasks/analysis", 200, user_id=lid)["items"] == []
    assert get("/api/v1/tasks/analysis", 200, user_id=lid, sentence_id=scene["sid"])["items"] == []
    assert get(f"/api/v1/learners/{lid}/progress", 200)["sentences"] == []
    assert get(f"/api/v1/learners/{lid}/assignments", 200) == []
    assert get(f"/api/v1/learners/{lid}/goals", 200)["items"] == []  # the practice set's goals
    get("/api/v1/therapists/me/learners", 200)
    # Issue #26: editing or deleting it, the learner's drills (from progress) and report (CSV).
    for method in ("PATCH", "DELETE"):
        r = api.client.request(
            method, f"/api/v1/practice/sentences/{scene['sid']}", headers=t["headers"], json={"shared": True}
        )
        assert r.status_code == 404, (method, r.text)
    drills = get(f"/api/v1/learners/{lid}/drills", 200)
    assert drills["characters"] == [] and drills["items"] == []
    r = api.client.post(
        f"/api/v1/learners/{lid}/drills",
        headers=t["headers"],
        data={"text": f"{secret[0]}、{secret[1]}"},
        files={"reference_audio": ("r.wav", recording())},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "text"], r.text
    since = (utcnow() - timedelta(days=30)).date().isoformat()
    report = api.client.get(
        f"/api/v1/learners/{lid}/report", headers=t["headers"], params={"format": "csv", "from": since}
    )
    assert report.status_code == 200, report.text
    seen.append(report.text)
    for body in seen:
        assert secret not in body and secret[:4] not in body


def test_assigning_needs_a_sentence_the_actor_and_the_learner_may_see(api: Api, scene: dict[str, Any]) -> None:
    t, sid = scene["t"], scene["sid"]
    for who in (scene["other"], scene["learner"]):  # T's learners: 404, as if it did not exist
        r = api.client.post(
            f"/api/v1/learners/{who['user']['user_id']}/assignments", headers=t["headers"], json={"sentence_id": sid}
        )
        assert r.status_code == 404, r.text
        assert scene["secret"] not in r.text
    # C's assignment of it to L (from before the move) is not there for T to remove either.
    r = api.client.delete(
        f"/api/v1/learners/{scene['learner']['user']['user_id']}/assignments/{sid}", headers=t["headers"]
    )
    assert r.status_code == 404, r.text
    # C: the learner is no longer theirs.
    r = api.client.post(
        f"/api/v1/learners/{scene['learner']['user']['user_id']}/assignments",
        headers=scene["c"]["headers"],
        json={"sentence_id": sid},
    )
    assert r.status_code == 404, r.text
    # An admin sees it, but T's learner may not: a 422 naming the field, nothing assigned.
    lid = scene["other"]["user"]["user_id"]
    r = api.client.post(
        f"/api/v1/learners/{lid}/assignments", headers=scene["admin"]["headers"], json={"sentence_id": sid}
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "sentence_id"]
    r = api.client.get(f"/api/v1/learners/{lid}/assignments", headers=scene["other"]["headers"])
    assert r.status_code == 200 and r.json() == []
    # T's own sentence: assigned, and both see it.
    r = api.client.post(
        f"/api/v1/learners/{lid}/assignments", headers=t["headers"], json={"sentence_id": scene["t_own"]}
    )
    assert r.status_code == 201, r.text
    assert r.json()["sentence_text"] == "治療師T的句子"
    for who in (t, scene["other"]):
        r = api.client.get(f"/api/v1/learners/{lid}/assignments", headers=who["headers"])
        assert [a["sentence_id"] for a in r.json()] == [scene["t_own"]]


def test_the_learner_keeps_their_own_attempts_but_not_the_lost_assignment(api: Api, scene: dict[str, Any]) -> None:
    learner, secret = scene["learner"], scene["secret"]
    h = learner["headers"]
    # No longer visible to them as a sentence, nor as something to practise ...
    assert api.client.get(f"/api/v1/practice/sentences/{scene['sid']}", headers=h).status_code == 404
    r = api.client.get(f"/api/v1/learners/{learner['user']['user_id']}/assignments", headers=h)
    assert r.status_code == 200 and r.json() == []
    # ... but their own attempt, its result and its history are their data.
    r = api.client.get("/api/v1/tasks/analysis", headers=h)
    assert [i["sentence_text"] for i in r.json()["items"]] == [secret]
    r = api.client.get(f"/api/v1/learners/{learner['user']['user_id']}/progress", headers=h)
    assert [s["sentence_text"] for s in r.json()["sentences"]] == [secret]
    assert api.client.get(f"/api/v1/tasks/analysis/{scene['task']}/result", headers=h).status_code == 200
    assert api.client.get(f"/api/v1/practice/records/{scene['record']}", headers=h).status_code == 200
    # The admin reads everything (logged in the learner's access log).
    r = api.client.get(
        "/api/v1/tasks/analysis", headers=scene["admin"]["headers"], params={"user_id": learner["user"]["user_id"]}
    )
    assert [i["sentence_text"] for i in r.json()["items"]] == [secret]
    # C, the author, no longer reads L's data at all (not linked).
    r = api.client.get(f"/api/v1/tasks/analysis/{scene['task']}/result", headers=scene["c"]["headers"])
    assert r.status_code == 404


def _returns_sentence_text(schema: Any, components: dict[str, Any], seen: set[str]) -> bool:
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name in seen:
                return False
            seen.add(name)
            if name == "SentencePublic":
                return True
            return _returns_sentence_text(components.get(name, {}), components, seen)
        if "sentence_text" in schema.get("properties", {}):
            return True
        return any(_returns_sentence_text(v, components, seen) for v in schema.values())
    if isinstance(schema, list):
        return any(_returns_sentence_text(v, components, seen) for v in schema)
    return False


def test_every_route_that_returns_sentence_text_is_walked() -> None:
    doc = app.openapi()
    components = doc["components"]["schemas"]
    found = set()
    for path in doc["paths"].values():
        for op in path.values():
            for code, resp in op.get("responses", {}).items():
                if code.startswith("2") and _returns_sentence_text(resp, components, set()):
                    found.add(op["operationId"])
    assert found, "the check found nothing: the schema names changed"
    assert found <= WALKED, f"walk these in the tests above too: {sorted(found - WALKED)}"
