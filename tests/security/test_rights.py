"""The learner's rights: export, erasure (nothing left in the database, storage or Redis), the
access log of others' reads, and the retention of raw recordings."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from sqlalchemy import text

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, recording
from vocalborn.auth.models import User
from vocalborn.auth.service import link_therapist
from vocalborn.celery_app import _beat_schedule, celery_app
from vocalborn.config import get_settings
from vocalborn.db import get_engine, open_session
from vocalborn.practice.models import PracticeRecord
from vocalborn.security.ratelimit import subject_of_email
from vocalborn.sqltypes import utcnow
from vocalborn.storage import get_storage
from vocalborn.tasks.worker import retention

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    w = WorkerProcess("rights", migrated.data_dir, env={"WORKER_METRICS_PORT": "0"}).start()
    yield w
    w.stop()


def _linked(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    therapist, learner = api.register("therapist"), api.register("learner")
    with open_session() as db:
        link_therapist(
            db,
            db.get(User, uuid.UUID(learner["user"]["user_id"])),
            db.get(User, uuid.UUID(therapist["user"]["user_id"])),
        )
    return therapist, learner


def _analysed(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> dict[str, Any]:
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    assert api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)["status"] == "success"
    return {**ready, "task_id": task_id}


def test_others_reads_are_in_the_learners_access_log_and_own_reads_are_not(api: Api, worker: WorkerProcess) -> None:
    therapist, learner = _linked(api)
    done = _analysed(api, therapist, learner)
    task_id, record_id = done["task_id"], done["record"]["practice_record_id"]
    for user in (learner, therapist):
        for path in (
            f"/api/v1/tasks/analysis/{task_id}/status",
            f"/api/v1/tasks/analysis/{task_id}/result",
            f"/api/v1/tasks/analysis/{task_id}/events",
            f"/api/v1/practice/records/{record_id}/audio",
            f"/api/v1/practice/sessions/{done['session']['practice_session_id']}",
        ):
            assert api.client.get(path, headers=user["headers"]).status_code == 200, path
    # the therapist polling again within a minute adds nothing
    api.client.get(f"/api/v1/tasks/analysis/{task_id}/status", headers=therapist["headers"])
    admin = api.admin()
    assert api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=admin["headers"]).status_code == 200
    listed = api.client.get("/api/v1/admin/tasks?limit=500", headers=admin["headers"])
    assert task_id in {t["task_id"] for t in listed.json()}

    log = api.client.get("/api/v1/me/access-log", headers=learner["headers"])
    assert log.status_code == 200
    entries = log.json()
    by_therapist = sorted(e["what"] for e in entries if e["reader_id"] == therapist["user"]["user_id"])
    assert by_therapist == ["record_audio", "session", "task_events", "task_result", "task_status"]
    assert all(
        e["reader_role"] == "therapist" and e["reader_name"] == "Therapist"
        for e in entries
        if e["what"] in by_therapist and e["reader_id"] == therapist["user"]["user_id"]
    )
    assert sorted(e["what"] for e in entries if e["reader_role"] == "admin") == ["admin_task_list", "task_result"]
    assert not any(e["reader_id"] == learner["user"]["user_id"] for e in entries)
    assert entries[0]["access_id"] > entries[-1]["access_id"]  # newest first
    # the therapist's own log shows nobody read the therapist's data
    assert api.client.get("/api/v1/me/access-log", headers=therapist["headers"]).json() == []


def test_the_export_holds_recordings_analyses_and_audio(api: Api, worker: WorkerProcess) -> None:
    therapist, learner = _linked(api)
    done = _analysed(api, therapist, learner)
    api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=therapist["headers"])
    r = api.client.get("/api/v1/me/export", headers=learner["headers"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["sections"]["recordings"] == 1 and manifest["sections"]["analyses"] == 1
    account = json.loads(zf.read("account.json"))[0]
    assert account["email"] == learner["email"] and "password_hash" not in account
    analysis = json.loads(zf.read("analyses.json"))[0]
    assert analysis["task_id"] == done["task_id"] and 0 <= analysis["result"]["overall_score"] <= 100
    assert [e["event_type"] for e in analysis["events"]][0] == "submitted"
    assert "worker_name" not in analysis and all("worker_name" not in e for e in analysis["events"])
    rec = json.loads(zf.read("recordings.json"))[0]
    assert zf.read(rec["audio_file"]) == recording(voice="Male1", fmt="mp3")
    assert [e["what"] for e in json.loads(zf.read("access_log.json"))] == ["task_result"]
    # nobody else's export: the therapist's holds none of the learner's recordings
    other = zipfile.ZipFile(io.BytesIO(api.client.get("/api/v1/me/export", headers=therapist["headers"]).content))
    assert json.loads(other.read("recordings.json")) == []


def _everything_about(db: Any, ids: dict[str, str]) -> list[str]:
    """Every table and text column that holds any of ``ids`` (a full scan; small test database)."""
    found = []

    with get_engine().connect() as conn:
        from sqlalchemy import inspect

        for table in inspect(conn).get_table_names():
            if table == "alembic_version":
                continue
            rows = conn.execute(text(f"SELECT * FROM {table}")).all()  # noqa: S608 - table names from the schema
            for row in rows:
                blob = " ".join(str(v).replace("-", "") for v in row)
                for name, value in ids.items():
                    if value.replace("-", "") in blob:
                        found.append(f"{table}: {name}")
    return found


def _redis_values_naming(client: redis.Redis, wanted: list[str]) -> list[str]:
    """The keys whose value contains one of ``wanted`` (every type, read as text)."""
    found = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            values: list[Any] = [client.get(key)]
        elif kind == "list":
            values = client.lrange(key, 0, -1)
        elif kind == "hash":
            values = [*client.hgetall(key).items()]
        elif kind == "set":
            values = list(client.smembers(key))
        elif kind == "zset":
            values = client.zrange(key, 0, -1)
        elif kind == "stream":
            values = client.xrange(key)
        else:
            values = []
        text = repr(values)
        found += [f"{key!r}: {w}" for w in wanted if w in text]
    return found


@pytest.mark.parametrize("who", ["self", "admin"])
def test_erasure_leaves_nothing_of_the_learner(
    api: Api, worker: WorkerProcess, services: ServicesUnderTest, who: str
) -> None:
    therapist, learner = _linked(api)
    done = _analysed(api, therapist, learner)
    second = api.record(
        learner, done["session"]["practice_session_id"], done["sentence"]["sentence_id"], recording(voice="Male1")
    )
    assert second.status_code == 201
    api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=therapist["headers"])  # an access entry
    # the therapist's review of the analysis and an assignment: the learner's data too
    review = api.client.put(
        f"/api/v1/tasks/analysis/{done['task_id']}/review",
        headers=therapist["headers"],
        json={"overall_score": 70, "comment": "slower at the comma"},
    )
    assert review.status_code in (200, 201), review.text
    assigned = api.client.post(
        f"/api/v1/learners/{learner['user']['user_id']}/assignments",
        headers=therapist["headers"],
        json={"sentence_id": done["sentence"]["sentence_id"]},
    )
    assert assigned.status_code in (200, 201), assigned.text
    # a failed login: a counter in Redis that names the (hashed) email
    api.client.post("/api/v1/auth/login", data={"username": learner["email"], "password": "wrong-password"})

    with open_session() as db:
        from sqlmodel import select

        mine = select(PracticeRecord).where(PracticeRecord.user_id == uuid.UUID(learner["user"]["user_id"]))
        keys = [r.audio_key for r in db.exec(mine)]
    assert len(keys) == 2 and all(get_storage().path(k).exists() for k in keys)

    if who == "self":
        r = api.client.delete("/api/v1/me", headers=learner["headers"])
    else:
        assert (
            api.client.delete(
                f"/api/v1/admin/users/{learner['user']['user_id']}", headers=therapist["headers"]
            ).status_code
            == 403
        )
        r = api.client.delete(f"/api/v1/admin/users/{learner['user']['user_id']}", headers=api.admin()["headers"])
    assert r.status_code == 200, r.text
    assert r.json() == {"erased": True, "analyses": 1, "recordings": 2, "sessions": 1}

    ids = {
        "user_id": learner["user"]["user_id"],
        "email": learner["email"],
        "task_id": done["task_id"],
        "record_id": done["record"]["practice_record_id"],
        "record_2": second.json()["practice_record_id"],
        "session_id": done["session"]["practice_session_id"],
    }
    # The one trace left: the unsent account.erased event (its id only), which the relay deletes
    # once it is published (docs/EVENTS.md).
    assert _everything_about(None, ids) == ["event_outbox: user_id"]
    with get_engine().connect() as conn:
        left = conn.execute(
            text("SELECT event_type, sent_at FROM event_outbox WHERE CAST(subject AS TEXT) LIKE :p"),
            {"p": f"%{ids['user_id']}%"},
        ).all()
    assert [tuple(r) for r in left] == [("account.erased", None)]
    assert not any(get_storage().path(k).exists() for k in keys)
    # Redis: no key names the learner, their email's hash or their tasks

    client = redis.Redis.from_url(services.redis_url)
    try:
        wanted = [ids["user_id"], ids["user_id"].replace("-", ""), subject_of_email(learner["email"]), ids["task_id"]]
        wanted += [ids["task_id"].replace("-", ""), learner["email"]]
        for value in wanted:
            assert list(client.scan_iter(match=f"*{value}*", count=1000)) == [], value
        # ... and no value holds them either (queues, hashes, sorted sets, streams)
        assert _redis_values_naming(client, wanted) == []
    finally:
        client.close()
    # the token no longer works, the account is gone
    assert api.client.get("/api/v1/auth/me", headers=learner["headers"]).status_code == 401
    assert (
        api.client.post(
            "/api/v1/auth/login", data={"username": learner["email"], "password": "correct-horse-1"}
        ).status_code
        == 401
    )
    # the therapist's sentence, reference and other learners are untouched
    assert (
        api.client.get(
            f"/api/v1/practice/sentences/{done['sentence']['sentence_id']}", headers=therapist["headers"]
        ).status_code
        == 200
    )


def test_a_therapist_with_sentences_is_not_erased_silently(api: Api) -> None:
    therapist = api.register("therapist")
    api.sentence(therapist, recording())
    r = api.client.delete("/api/v1/me", headers=therapist["headers"])
    assert r.status_code == 409 and "sentences" in r.json()["detail"]
    assert api.client.get("/api/v1/auth/me", headers=therapist["headers"]).status_code == 200


def test_retention_deletes_old_audio_and_keeps_the_scores(
    api: Api, worker: WorkerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    therapist, learner = _linked(api)
    done = _analysed(api, therapist, learner)
    fresh = api.record(
        learner, done["session"]["practice_session_id"], done["sentence"]["sentence_id"], recording(voice="Male1")
    )
    old_id = uuid.UUID(done["record"]["practice_record_id"])
    with open_session() as db:
        record = db.get(PracticeRecord, old_id)
        assert record is not None
        key = record.audio_key
        record.created_at = utcnow() - timedelta(days=31)
        db.add(record)
        db.commit()
    monkeypatch.setenv("RETENTION_RECORDINGS_DAYS", "30")
    get_settings.cache_clear()
    try:
        assert retention.purge_old_recordings() >= 1
        assert retention.purge_old_recordings() == 0  # once
    finally:
        monkeypatch.delenv("RETENTION_RECORDINGS_DAYS")
        get_settings.cache_clear()
    assert not get_storage().path(key).exists()
    rec = api.client.get(f"/api/v1/practice/records/{old_id}", headers=learner["headers"]).json()
    assert rec["audio_deleted_at"] is not None
    assert api.client.get(f"/api/v1/practice/records/{old_id}/audio", headers=learner["headers"]).status_code == 410
    r = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=learner["headers"])
    assert r.status_code == 200 and r.json()["overall_score"] is not None  # the scores stay
    # a fresh recording keeps its audio
    assert (
        api.client.get(
            f"/api/v1/practice/records/{fresh.json()['practice_record_id']}/audio", headers=learner["headers"]
        ).status_code
        == 200
    )


def test_worker_host_names_reach_admins_only(api: Api, worker: WorkerProcess) -> None:
    therapist, learner = _linked(api)
    task_id = _analysed(api, therapist, learner)["task_id"]
    admin = api.admin()

    def names(user: dict[str, Any]) -> set[Any]:
        seen = {api.status(user, task_id)["worker_name"]} | {e["worker_name"] for e in api.events(user, task_id)}
        path = f"/api/v1/tasks/ws/task/{task_id}?token={user['token']}"
        with api.client.websocket_connect(path) as sock:  # type: ignore[union-attr]
            while True:
                message = sock.receive_json()
                seen.add(message["worker_name"])
                if message.get("event_type") == "succeeded":
                    break
        return seen

    assert names(learner) == {None}
    assert names(therapist) == {None}
    assert any(isinstance(n, str) and n.startswith("rights@") for n in names(admin))


def test_beat_runs_the_recording_retention_job() -> None:
    from vocalborn.tasks.worker import tasks as _worker  # noqa: F401 - registers the tasks

    entry = _beat_schedule(get_settings())["purge-old-recordings"]
    assert entry["task"] == "vocalborn.maintenance.purge_old_recordings"
    assert entry["schedule"] == get_settings().cleanup_interval_seconds
    assert "vocalborn.maintenance.purge_old_recordings" in celery_app.tasks
