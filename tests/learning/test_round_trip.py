"""The practice product's API round trip, with every endpoint's authorization rules: the owner,
another learner, the linked and an unlinked therapist, an admin and nobody. Runs on the suite's
database (PostgreSQL) and on the embedded default (SQLite), each with a real worker."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.learning.conftest import Stack
from tests.services import ServicesUnderTest
from tests.support import api_process, recording
from vocalborn.embedded import free_port

SCORES = ("overall_score", "pronunciation_accuracy", "fluency_score", "rhythm_score")
NOBODY: dict[str, Any] = {"headers": {}}

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    api = stack.api
    w: dict[str, Any] = {
        "api": api,
        "therapist": api.register("therapist"),
        "stranger_therapist": api.register("therapist"),
        "learner": api.register("learner"),
        "other": api.register("learner"),
        "admin": stack.admin(),
        "nobody": NOBODY,
    }
    c = api.client
    # the therapist invites, the learner accepts
    r = c.post("/api/v1/links/invitations", headers=w["therapist"]["headers"], json={"expires_in_hours": 24})
    assert r.status_code == 201, r.text
    w["invitation"] = r.json()
    r = c.post("/api/v1/links/accept", headers=w["learner"]["headers"], json={"code": w["invitation"]["code"].lower()})
    assert r.status_code == 200, r.text
    assert r.json()["therapist"]["user_id"] == w["therapist"]["user"]["user_id"]

    sentence = api.sentence(w["therapist"], recording())
    w["sentence"] = sentence
    session = api.session(w["learner"])
    w["tasks"] = []
    for _ in range(3):
        rec = api.record(
            w["learner"], session["practice_session_id"], sentence["sentence_id"], recording(voice="Male1", fmt="mp3")
        )
        assert rec.status_code == 201, rec.text
        sub = api.submit(w["learner"], rec.json()["practice_record_id"])
        assert sub.status_code == 202, sub.text
        task_id = sub.json()["task_id"]
        assert api.wait_for(w["learner"], task_id, {"success", "failure"}, timeout=120)["status"] == "success"
        w["tasks"].append(task_id)
    # the other learner practises too: never visible to our therapist
    other_session = api.session(w["other"])
    rec = api.record(
        w["other"], other_session["practice_session_id"], sentence["sentence_id"], recording(voice="Male1", fmt="mp3")
    )
    w["other_task"] = api.submit(w["other"], rec.json()["practice_record_id"]).json()["task_id"]
    api.wait_for(w["other"], w["other_task"], {"success", "failure"}, timeout=120)
    return w


def get(w: dict[str, Any], who: str, path: str, **params: Any) -> Any:
    return w["api"].client.get(path, headers=w[who]["headers"], params=params)


def test_history_is_scoped_to_the_caller(world: dict[str, Any]) -> None:
    w = world
    mine = get(w, "learner", "/api/v1/tasks/analysis")
    assert mine.status_code == 200, mine.text
    items = mine.json()["items"]
    assert [i["task_id"] for i in items] == list(reversed(w["tasks"]))  # newest first
    assert all(i["status"] == "success" and all(0 <= i[s] <= 100 for s in SCORES) for i in items)
    assert items[0]["sentence_text"] == w["sentence"]["text"]

    # the linked therapist sees their learner's, not the other learner's
    theirs = get(w, "therapist", "/api/v1/tasks/analysis").json()["items"]
    assert {i["task_id"] for i in theirs} == set(w["tasks"])
    assert get(w, "therapist", "/api/v1/tasks/analysis", user_id=w["learner"]["user"]["user_id"]).status_code == 200
    assert get(w, "therapist", "/api/v1/tasks/analysis", user_id=w["other"]["user"]["user_id"]).status_code == 404
    # an unlinked therapist sees nothing; another learner only their own
    assert get(w, "stranger_therapist", "/api/v1/tasks/analysis").json()["items"] == []
    other = get(w, "other", "/api/v1/tasks/analysis").json()["items"]
    assert [i["task_id"] for i in other] == [w["other_task"]]
    assert get(w, "other", "/api/v1/tasks/analysis", user_id=w["learner"]["user"]["user_id"]).status_code == 404
    # an admin sees everyone's
    everyone = {i["task_id"] for i in get(w, "admin", "/api/v1/tasks/analysis", limit=100).json()["items"]}
    assert set(w["tasks"]) | {w["other_task"]} <= everyone
    assert get(w, "nobody", "/api/v1/tasks/analysis").status_code == 401


def test_history_pages_with_a_cursor_and_filters(world: dict[str, Any]) -> None:
    w = world
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = get(w, "learner", "/api/v1/tasks/analysis", **params).json()
        seen += [i["task_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(w["tasks"]))
    sid = w["sentence"]["sentence_id"]
    assert len(get(w, "learner", "/api/v1/tasks/analysis", sentence_id=sid).json()["items"]) == 3
    assert get(w, "learner", "/api/v1/tasks/analysis", status="failure").json()["items"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert get(w, "learner", "/api/v1/tasks/analysis", since=future).json()["items"] == []
    assert get(w, "learner", "/api/v1/tasks/analysis", cursor="not-a-cursor").status_code == 422
    assert get(w, "learner", "/api/v1/tasks/analysis", since="2026-12-01T00:00:00").status_code == 422  # no zone
    assert get(w, "learner", "/api/v1/tasks/analysis", since="0001-01-01T00:00:00+14:00").status_code == 422
    assert get(w, "learner", "/api/v1/tasks/analysis", status="bogus").status_code == 422
    assert get(w, "learner", "/api/v1/tasks/analysis", limit=10_000).status_code == 422


def test_progress_has_the_series_and_a_trend_for_the_right_people(world: dict[str, Any]) -> None:
    w = world
    path = f"/api/v1/learners/{w['learner']['user']['user_id']}/progress"
    r = get(w, "learner", path)
    assert r.status_code == 200, r.text
    (s,) = r.json()["sentences"]
    assert s["sentence_id"] == w["sentence"]["sentence_id"] and s["attempts"] == 3
    assert [p["task_id"] for p in s["points"]] == w["tasks"]  # oldest first: a time series
    for field in SCORES:
        values = [p[field] for p in s["points"]]
        assert s["trend"][field]["first"] == pytest.approx(values[0], abs=0.01)
        assert s["trend"][field]["last_n_mean"] == pytest.approx(sum(values) / 3, abs=0.01)
    for who in ("therapist", "admin"):
        assert get(w, who, path).status_code == 200
    for who in ("other", "stranger_therapist"):
        assert get(w, who, path).status_code == 404
    assert get(w, "nobody", path).status_code == 401
    assert get(w, "learner", path, sentence_id=w["sentence"]["sentence_id"]).json()["sentences"]
    assert get(w, "learner", path, since=(datetime.now(UTC) + timedelta(hours=1)).isoformat()).json()["sentences"] == []


def test_the_dashboard_lists_linked_learners_with_their_numbers(world: dict[str, Any]) -> None:
    w = world
    r = get(w, "therapist", "/api/v1/therapists/me/learners")
    assert r.status_code == 200, r.text
    (row,) = r.json()
    assert row["user_id"] == w["learner"]["user"]["user_id"]
    assert row["attempts_this_week"] == 3
    history = get(w, "learner", "/api/v1/tasks/analysis").json()["items"]
    assert row["mean_overall_last_10"] == pytest.approx(sum(i["overall_score"] for i in history) / 3, abs=0.01)
    assert row["flagged"] is False and row["flag_reasons"] == []
    assert get(w, "stranger_therapist", "/api/v1/therapists/me/learners").json() == []
    for who in ("learner", "admin"):
        assert get(w, who, "/api/v1/therapists/me/learners").status_code == 403
    assert get(w, "nobody", "/api/v1/therapists/me/learners").status_code == 401


def test_reviews_are_the_linked_therapists_own_and_keep_their_history(world: dict[str, Any]) -> None:
    w = world
    c = w["api"].client
    task = w["tasks"][-1]
    path = f"/api/v1/tasks/analysis/{task}/review"
    body = {
        "overall_score": 70,
        "fluency_score": 65.5,
        "comment": "慢一點",
        "characters": [{"index": 0, "char": "今", "deviating": True, "note": "tone"}],
    }
    for who, code in (("learner", 403), ("admin", 403), ("other", 404), ("stranger_therapist", 404), ("nobody", 401)):
        assert c.put(path, headers=w[who]["headers"], json=body).status_code == code, who
    r = c.put(path, headers=w["therapist"]["headers"], json=body)
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1 and r.json()["overall_score"] == 70
    r = c.put(path, headers=w["therapist"]["headers"], json={**body, "overall_score": 75, "comment": "better"})
    assert r.status_code == 200 and r.json()["version"] == 2
    # bad input: out of range, nothing at all, an unknown field
    for bad in ({"overall_score": 101}, {}, {"overall_score": 50, "stars": 5}, {"rhythm_score": -1}):
        assert c.put(path, headers=w["therapist"]["headers"], json=bad).status_code == 422, bad

    # the learner sees it beside the engine's scores; history on request
    got = get(w, "learner", path, history="true")
    assert got.status_code == 200, got.text
    data = got.json()
    assert data["engine"]["overall_score"] is not None
    (review,) = data["reviews"]
    assert review["overall_score"] == 75 and review["comment"] == "better"
    assert [h["version"] for h in review["history"]] == [1, 2]
    assert review["history"][0]["comment"] == "慢一點"
    for who in ("therapist", "admin"):
        assert get(w, who, path).status_code == 200
    for who in ("other", "stranger_therapist"):
        assert get(w, who, path).status_code == 404
    assert get(w, "nobody", path).status_code == 401
    # and in the history list
    latest = get(w, "learner", "/api/v1/tasks/analysis", limit=1).json()["items"][0]
    assert latest["review"]["overall_score"] == 75

    # the admin's export: engine next to therapist, with the recording's id
    r = get(w, "admin", "/api/v1/reviews/export", format="csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    row = next(x for x in rows if x["task_id"] == task)
    assert float(row["therapist_overall_score"]) == 75
    assert float(row["engine_overall_score"]) == pytest.approx(data["engine"]["overall_score"], abs=0.01)
    assert row["practice_record_id"] and row["therapist_deviating_characters"] == "今"
    assert row["engine_fallback"] == "False"  # the engine named in analysis_model_version scored it
    # ... and the learner sees that an admin read their scores (docs/SECURITY.md)
    log = get(w, "learner", "/api/v1/me/access-log").json()
    assert any(e["what"] == "reviews_export" and e["reader_role"] == "admin" for e in log), log
    for who, code in (("learner", 403), ("therapist", 403), ("nobody", 401)):
        assert get(w, who, "/api/v1/reviews/export").status_code == code
    assert get(w, "admin", "/api/v1/reviews/export", format="xlsx").status_code == 422


def test_practice_sets_are_managed_by_the_linked_therapist(world: dict[str, Any]) -> None:
    w = world
    c = w["api"].client
    lid = w["learner"]["user"]["user_id"]
    path = f"/api/v1/learners/{lid}/assignments"
    sid = w["sentence"]["sentence_id"]
    for who, code in (("learner", 403), ("other", 404), ("stranger_therapist", 404), ("nobody", 401)):
        assert c.post(path, headers=w[who]["headers"], json={"sentence_id": sid}).status_code == code, who
    r = c.post(path, headers=w["therapist"]["headers"], json={"sentence_id": sid})
    assert r.status_code == 201, r.text
    assert c.post(path, headers=w["therapist"]["headers"], json={"sentence_id": sid}).status_code == 200
    bogus = "00000000-0000-0000-0000-000000000000"
    assert c.post(path, headers=w["therapist"]["headers"], json={"sentence_id": bogus}).status_code == 404

    (a,) = get(w, "learner", path).json()
    scores = [i["overall_score"] for i in get(w, "learner", "/api/v1/tasks/analysis").json()["items"]]
    assert a["attempts"] == 3 and a["best_overall"] == max(scores) and a["last_overall"] == scores[0]
    for who in ("therapist", "admin"):
        assert get(w, who, path).status_code == 200
    for who in ("other", "stranger_therapist"):
        assert get(w, who, path).status_code == 404
    assert get(w, "nobody", path).status_code == 401

    for who, code in (("learner", 403), ("other", 404), ("stranger_therapist", 404), ("nobody", 401)):
        assert c.delete(f"{path}/{sid}", headers=w[who]["headers"]).status_code == code, who
    assert c.delete(f"{path}/{sid}", headers=w["therapist"]["headers"]).status_code == 204
    assert get(w, "learner", path).json() == []
    assert c.delete(f"{path}/{sid}", headers=w["therapist"]["headers"]).status_code == 404


def test_invitations_are_single_use_expiring_and_for_therapists(world: dict[str, Any]) -> None:
    w = world
    c = w["api"].client
    for who, code in (("learner", 403), ("admin", 403), ("nobody", 401)):
        assert c.post("/api/v1/links/invitations", headers=w[who]["headers"]).status_code == code, who
    # the code of the fixture was used up
    r = c.post("/api/v1/links/accept", headers=w["other"]["headers"], json={"code": w["invitation"]["code"]})
    assert r.status_code == 410, r.text
    assert c.post("/api/v1/links/accept", headers=w["other"]["headers"], json={"code": "NOSUCHCODE"}).status_code == 404
    # a learner linked to one therapist cannot silently switch
    fresh = c.post("/api/v1/links/invitations", headers=w["stranger_therapist"]["headers"]).json()
    listed = get(w, "stranger_therapist", "/api/v1/links/invitations").json()
    # listed without its code: it is stored hashed and shown once, when made
    assert [i["code"] for i in listed if i["invitation_id"] == fresh["invitation_id"]] == [None]
    r = c.post("/api/v1/links/accept", headers=w["learner"]["headers"], json={"code": fresh["code"]})
    assert r.status_code == 409, r.text
    # therapists do not accept invitations
    r = c.post("/api/v1/links/accept", headers=w["therapist"]["headers"], json={"code": fresh["code"]})
    assert r.status_code == 403
    assert (
        get(w, "learner", "/api/v1/links/therapist").json()["therapist"]["user_id"] == w["therapist"]["user"]["user_id"]
    )


def test_errors_speak_the_callers_language(world: dict[str, Any]) -> None:
    w = world
    c = w["api"].client
    path = "/api/v1/links/accept"
    en = c.post(path, headers=w["other"]["headers"], json={"code": "NOSUCHCODE"})
    assert en.json()["detail"] == "invitation code not found"
    zh = c.post(
        path,
        headers={**w["other"]["headers"], "Accept-Language": "zh-TW,zh;q=0.9,en;q=0.5"},
        json={"code": "NOSUCHCODE"},
    )
    assert zh.json()["detail"] == "找不到這個邀請碼"
    zh = c.post(path + "?lang=zh-TW", headers=w["other"]["headers"], json={"code": "NOSUCHCODE"})
    assert zh.json()["detail"] == "找不到這個邀請碼"
    # lang wins over the header, and an untranslated message stays English
    en = c.post(
        path + "?lang=en", headers={**w["other"]["headers"], "Accept-Language": "zh-TW"}, json={"code": "NOSUCHCODE"}
    )
    assert en.json()["detail"] == "invitation code not found"
    r = c.get(
        "/api/v1/tasks/analysis/00000000-0000-0000-0000-000000000000/status?lang=zh-TW", headers=w["other"]["headers"]
    )
    assert r.status_code == 404 and r.json()["detail"] == "找不到這個分析"


def test_unlinking_from_either_side_ends_the_therapists_access(world: dict[str, Any], stack: Stack) -> None:
    w = world
    c = w["api"].client
    api = w["api"]
    therapist = w["therapist"]
    lid = w["learner"]["user"]["user_id"]
    progress = f"/api/v1/learners/{lid}/progress"
    # someone else cannot unlink them
    for who in ("other", "stranger_therapist"):
        assert c.delete(f"/api/v1/links/{lid}", headers=w[who]["headers"]).status_code == 404, who
    # the therapist unlinks
    assert c.delete(f"/api/v1/links/{lid}", headers=therapist["headers"]).status_code == 204
    assert get(w, "therapist", progress).status_code == 404
    assert get(w, "therapist", "/api/v1/therapists/me/learners").json() == []
    # linked again with a new code, then the learner unlinks
    code = c.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert c.post("/api/v1/links/accept", headers=w["learner"]["headers"], json={"code": code}).status_code == 200
    assert get(w, "therapist", progress).status_code == 200
    assert c.delete(f"/api/v1/links/{lid}", headers=w["learner"]["headers"]).status_code == 204
    assert get(w, "therapist", progress).status_code == 404
    assert c.delete(f"/api/v1/links/{lid}", headers=w["learner"]["headers"]).status_code == 404
    assert c.delete(f"/api/v1/links/{lid}", headers=NOBODY["headers"]).status_code == 401
    # relink for any later test
    code = c.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert c.post("/api/v1/links/accept", headers=w["learner"]["headers"], json={"code": code}).status_code == 200
    assert (
        api.client.get("/api/v1/auth/me", headers=w["learner"]["headers"]).json()["therapist_id"]
        == therapist["user"]["user_id"]
    )
    assert stack.kind in ("postgresql", "sqlite", "custom")


def test_the_cli_reads_the_same_history_and_progress(
    world: dict[str, Any], stack: Stack, migrated: ServicesUnderTest
) -> None:
    import json
    import os
    import subprocess
    import sys

    proc = None
    url = stack.url
    if url is None:  # the in-process stack: the CLI needs an API process on the same database
        port = free_port()
        proc = api_process(port, migrated.data_dir)
        url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, VOCALBORN_URL=url, VOCALBORN_EMAIL=world["learner"]["email"])
    env["VOCALBORN_PASSWORD"] = "correct-horse-1"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "vocalborn.cli", "history", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    try:
        done = cli()
        assert done.returncode == 0, done.stderr
        rows = [line for line in done.stdout.splitlines()[1:] if world["sentence"]["text"] in line]
        assert len(rows) == 3 and all("success" in r for r in rows), done.stdout
        done = cli("--progress")
        assert done.returncode == 0 and "attempts 3" in done.stdout, done.stdout + done.stderr
        done = cli("--json")
        assert {i["task_id"] for i in json.loads(done.stdout)["items"]} == set(world["tasks"])
        other = world["other"]["user"]["user_id"]
        done = cli("--learner", other, "--lang", "zh-TW")
        assert done.returncode == 5 and "找不到這位學習者" in done.stderr, done.stderr
    finally:
        if proc is not None:
            proc.stop()


def test_every_new_endpoint_is_documented_with_its_errors(world: dict[str, Any]) -> None:
    schema = world["api"].client.get("/openapi.json").json()
    expected = {
        ("/api/v1/tasks/analysis", "get"): {"200", "401", "404", "422"},
        ("/api/v1/learners/{user_id}/progress", "get"): {"200", "401", "404"},
        ("/api/v1/therapists/me/learners", "get"): {"200", "401", "403"},
        ("/api/v1/links/invitations", "post"): {"201", "401", "403"},
        ("/api/v1/links/accept", "post"): {"200", "401", "403", "404", "409", "410", "429"},
        ("/api/v1/links/{learner_id}", "delete"): {"204", "401", "404"},
        ("/api/v1/tasks/analysis/{task_id}/review", "put"): {"200", "201", "401", "403", "404", "422"},
        ("/api/v1/tasks/analysis/{task_id}/review", "get"): {"200", "401", "404"},
        ("/api/v1/reviews/export", "get"): {"200", "401", "403"},
        ("/api/v1/learners/{user_id}/assignments", "get"): {"200", "401", "404"},
        ("/api/v1/learners/{user_id}/assignments", "post"): {"200", "201", "401", "403", "404"},
        ("/api/v1/learners/{user_id}/assignments/{sentence_id}", "delete"): {"204", "401", "403", "404"},
    }
    for (path, method), codes in expected.items():
        op = schema["paths"][path][method]
        assert codes <= set(op["responses"]), (path, method, set(op["responses"]))
        ok = op["responses"].get("200") or op["responses"].get("201")
        if ok and path != "/api/v1/reviews/export":
            assert "$ref" in str(ok["content"]["application/json"]["schema"]), (path, method)
