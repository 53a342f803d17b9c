"""Issue #26: a therapist edits (text, shared) and deletes their own sentence; deleting keeps the
history (soft delete): the attempts, their results and the reference stay readable, while the
sentence leaves the lists, the learner's practice set and goals and takes no new recording. A new
sentence is private: a new therapist does not see another therapist's sentences.

In-process runner calls against the real database; no worker consumes this module's messages."""

from __future__ import annotations

from typing import Any

from tests.learning.test_counted import GOOD, _attempt, _linked, _report
from tests.support import Api, recording


def _new_private_sentence(api: Api, therapist: dict[str, Any], text: str = "今天天氣很好。") -> dict[str, Any]:
    r = api.client.post(  # no "shared" field: the default
        "/api/v1/practice/sentences",
        headers=therapist["headers"],
        data={"text": text},
        files={"reference_audio": ("ref.wav", recording())},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def _listed(api: Api, who: dict[str, Any]) -> set[str]:
    r = api.client.get("/api/v1/practice/sentences?limit=200", headers=who["headers"])
    assert r.status_code == 200, r.text
    return {s["sentence_id"] for s in r.json()}


def test_a_new_sentence_is_private_and_a_new_therapist_does_not_see_it(api: Api) -> None:
    author = api.register("therapist")
    sentence = _new_private_sentence(api, author)
    assert sentence["shared"] is False
    newcomer = api.register("therapist")
    assert sentence["sentence_id"] not in _listed(api, newcomer)
    assert sentence["sentence_id"] in _listed(api, author)


def test_only_the_author_edits_text_and_sharing(api: Api) -> None:
    author, other = api.register("therapist"), api.register("therapist")
    sid = _new_private_sentence(api, author)["sentence_id"]
    url = f"/api/v1/practice/sentences/{sid}"
    r = api.client.patch(url, headers=author["headers"], json={"text": " 今天天氣真好。 "})
    assert r.status_code == 200, r.text
    assert r.json()["text"] == "今天天氣真好。" and r.json()["updated_at"] is not None
    assert api.client.patch(url, headers=other["headers"], json={"shared": True}).status_code == 404  # unseen
    r = api.client.patch(url, headers=author["headers"], json={"shared": True})
    assert r.status_code == 200 and r.json()["shared"] is True
    assert sid in _listed(api, other)
    assert api.client.patch(url, headers=other["headers"], json={"text": "x"}).status_code == 403  # seen, not theirs
    assert api.client.delete(url, headers=other["headers"]).status_code == 403
    assert api.client.patch(url, headers=api.admin()["headers"], json={"text": "x"}).status_code == 403
    assert api.client.patch(url, headers=api.register("learner")["headers"], json={"text": "x"}).status_code == 403
    for body, field in (({}, "text"), ({"text": "   "}, "text"), ({"text": ""}, "text"), ({"colour": 1}, "colour")):
        bad = api.client.patch(url, headers=author["headers"], json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert field in bad.text
    assert api.client.get(url, headers=author["headers"]).json()["text"] == "今天天氣真好。"


def test_deleting_keeps_the_history_and_drops_the_assignment(api: Api) -> None:
    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sid = _new_private_sentence(api, therapist)["sentence_id"]
    r = api.client.post(
        f"/api/v1/learners/{uid}/assignments",
        headers=therapist["headers"],
        json={"sentence_id": sid, "target_attempts_per_week": 3},
    )
    assert r.status_code == 201, r.text
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sid, _report(66.0, GOOD))
    assert api.client.delete(f"/api/v1/practice/sentences/{sid}", headers=learner["headers"]).status_code == 403
    r = api.client.delete(f"/api/v1/practice/sentences/{sid}", headers=therapist["headers"])
    assert r.status_code == 204, r.text
    # gone from the lists, the practice set, the goals and the dose
    for who in (therapist, learner):
        assert sid not in _listed(api, who)
        listed = api.client.get(f"/api/v1/learners/{uid}/assignments", headers=who["headers"]).json()
        assert sid not in {a["sentence_id"] for a in listed}
        goals = api.client.get(f"/api/v1/learners/{uid}/goals", headers=who["headers"]).json()
        assert goals["items"] == [] and goals["dose_met_percent"] is None
    row = next(x for x in api.client.get("/api/v1/therapists/me/learners", headers=therapist["headers"]).json()
               if x["user_id"] == uid)  # fmt: skip
    assert row["dose_met_percent"] is None
    # the history stays readable: the record, the result, the history item, progress, the sentence itself
    for who in (therapist, learner):
        result = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=who["headers"])
        assert result.status_code == 200 and result.json()["overall_score"] == 66.0
        items = api.client.get(f"/api/v1/tasks/analysis?user_id={uid}", headers=who["headers"]).json()["items"]
        assert any(i["task_id"] == done["task_id"] and i["sentence_text"] == "今天天氣很好。" for i in items)
        progress = api.client.get(f"/api/v1/learners/{uid}/progress", headers=who["headers"]).json()
        assert [s["sentence_id"] for s in progress["sentences"]] == [sid]
        sentence = api.client.get(f"/api/v1/practice/sentences/{sid}", headers=who["headers"])
        assert sentence.status_code == 200 and sentence.json()["deleted_at"] is not None
        assert api.client.get(f"/api/v1/practice/sentences/{sid}/audio", headers=who["headers"]).status_code == 200
    record = api.client.get(f"/api/v1/practice/records/{done['record_id']}", headers=learner["headers"])
    assert record.status_code == 200
    # nothing new is made of it
    again = api.record(learner, session, sid, recording(), "again.wav")
    assert again.status_code == 404, again.text
    r = api.client.post(f"/api/v1/learners/{uid}/assignments", headers=therapist["headers"], json={"sentence_id": sid})
    assert r.status_code == 404, r.text
    assert api.client.delete(f"/api/v1/practice/sentences/{sid}", headers=therapist["headers"]).status_code == 404
    assert (
        api.client.patch(
            f"/api/v1/practice/sentences/{sid}", headers=therapist["headers"], json={"shared": True}
        ).status_code
        == 404
    )
