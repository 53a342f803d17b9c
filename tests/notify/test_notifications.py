"""The notifications consumer end to end: a real nats-server, the relay, the suite's database, a
real `vocalborn consume notifications` process and a real SMTP server on loopback.

A therapist gets one in-app notification (pushed live to an open socket) and one mail when a
linked learner's analysis succeeds; a learner gets one when a review is saved; quiet hours hold
both; kinds turned off send nothing; a consumer that dies right after the SMTP server accepted a
mail (before recording it) sends it again with the same Message-ID and the outbox keeps one; a
consumer SIGKILLed mid-batch loses nothing and duplicates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from tests.events.support import NatsServer, RelayThread
from tests.notify.support import MailServer, consumer_process, wait_mail
from tests.support import wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def stack(api: Any, migrated: Any, tmp_path: Path) -> Any:
    nats = NatsServer(tmp_path / "nats").start()
    mail = MailServer(tmp_path / "mail").start()
    relay = RelayThread(nats.url).start()
    try:
        yield {"nats": nats, "mail": mail, "relay": relay, "env": migrated.env, "tmp": tmp_path}
    finally:
        relay.stop()
        mail.stop()
        nats.stop()


def _link(learner: dict[str, Any], therapist: dict[str, Any]) -> None:
    from vocalborn.auth.models import User
    from vocalborn.db import open_session

    with open_session() as db:
        lu = db.get(User, uuid.UUID(learner["user"]["user_id"]))
        assert lu is not None
        lu.therapist_id = uuid.UUID(therapist["user"]["user_id"])
        db.add(lu)
        db.commit()


def _event(event_type: str, **ids: uuid.UUID) -> str:
    """The event as the domain writes it: in the outbox, in a committed transaction."""
    from vocalborn.db import open_session
    from vocalborn.events import outbox

    with open_session() as db:
        row = outbox.add(db, event_type, **ids)
        db.commit()
        return str(row.event_id)


def _succeeded(learner: dict[str, Any]) -> tuple[str, uuid.UUID]:
    task = uuid.uuid4()
    uid = uuid.UUID(learner["user"]["user_id"])
    return _event("analysis.succeeded", task_id=task, learner_id=uid, practice_record_id=uuid.uuid4()), task


def _rows(event_id: str) -> list[Any]:
    from vocalborn.db import open_session
    from vocalborn.notify.models import Notification

    with open_session() as db:
        return list(db.exec(select(Notification).where(Notification.event_id == uuid.UUID(event_id))))


def test_therapist_and_learner_notified_once_live_and_by_mail(api: Any, stack: Any) -> None:
    therapist, learner = api.register("therapist"), api.register("learner")
    _link(learner, therapist)
    consumer = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        with api.client.websocket_connect(f"/api/v1/notifications/ws?token={therapist['token']}") as ws:
            time.sleep(0.5)  # the socket's subscription
            event_id, task = _succeeded(learner)
            pushed = ws.receive_json()
            while pushed["type"] != "notification":
                pushed = ws.receive_json()
            assert pushed["notification"]["type"] == "analysis.succeeded"
            assert pushed["notification"]["subject"]["task_id"] == str(task)
        listed = api.client.get("/api/v1/notifications", headers=therapist["headers"]).json()
        assert [n["type"] for n in listed] == ["analysis.succeeded"]
        note = listed[0]
        assert note["subject"]["learner_id"] == learner["user"]["user_id"] and note["read_at"] is None
        assert set(note) >= {"id", "type", "created_at", "read_at", "subject"}
        count = api.client.get("/api/v1/notifications/unread-count", headers=therapist["headers"]).json()
        assert count == {"unread": 1}
        kept = wait_mail(stack["mail"], therapist["email"], 2)  # the verification mail, and this one
        assert len(kept) == 2 and "你的學員完成了一次分析" in [k.subject for k in kept]  # no sentence known

        r = api.client.post(f"/api/v1/notifications/{note['id']}/read", headers=therapist["headers"])
        assert r.status_code == 200 and r.json()["read_at"] is not None
        assert api.client.get("/api/v1/notifications/unread-count", headers=therapist["headers"]).json()["unread"] == 0
        # not someone else's
        other = api.client.post(f"/api/v1/notifications/{note['id']}/read", headers=learner["headers"])
        assert other.status_code == 404
        bad = api.client.post("/api/v1/notifications/not-a-uuid/read", headers=learner["headers"])
        assert bad.status_code == 422

        review_event = _event(
            "review.saved",
            review_id=uuid.uuid4(),
            task_id=task,
            learner_id=uuid.UUID(learner["user"]["user_id"]),
            therapist_id=uuid.UUID(therapist["user"]["user_id"]),
        )
        wait_until(
            lambda: api.client.get("/api/v1/notifications", headers=learner["headers"]).json(), 30, what="the review"
        )
        got = api.client.get("/api/v1/notifications", headers=learner["headers"]).json()
        assert [n["type"] for n in got] == ["review.saved"] and got[0]["event_id"] == review_event
        wait_mail(stack["mail"], learner["email"], 2)  # the verification mail and the review's
        time.sleep(1.5)  # nothing more comes
        assert len(_rows(event_id)) == 2 and len(_rows(review_event)) == 2  # in-app and email, once each
        assert len(stack["mail"].raw_to(therapist["email"])) == 2  # verification + the analysis
        health = subprocess.run(
            [sys.executable, "-m", "vocalborn.healthcheck", "consumers", "notifications"],
            env={**os.environ, **stack["env"]},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0 and "notifications" in health.stdout, health.stderr
    finally:
        consumer.stop()


def test_quiet_hours_hold_and_kinds_turned_off(api: Any, stack: Any) -> None:
    from vocalborn.db import open_session
    from vocalborn.notify.models import Notification

    therapist, learner = api.register("therapist"), api.register("learner")
    _link(learner, therapist)
    now = time.gmtime()
    start = f"{(now.tm_hour - 1) % 24:02d}:00"
    end = f"{(now.tm_hour + 2) % 24:02d}:00"
    r = api.client.put(
        "/api/v1/me/notification-preferences",
        headers=therapist["headers"],
        json={"quiet_hours": {"start": start, "end": end}, "timezone": "UTC"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["quiet_hours"] == {"start": start, "end": end}
    consumer = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        held, _ = _succeeded(learner)
        wait_until(lambda: len(_rows(held)) == 2, 30, what="the held rows")
        time.sleep(1.0)
        assert api.client.get("/api/v1/notifications", headers=therapist["headers"]).json() == []
        assert len(stack["mail"].kept(therapist["email"])) == 1  # the verification mail only
        rows = _rows(held)
        assert all(row.available_at.hour == (now.tm_hour + 2) % 24 for row in rows)
        # The window ends (the clock is moved by moving the rows' release time): both go.
        with open_session() as db:
            for row in db.exec(select(Notification).where(Notification.event_id == uuid.UUID(held))):
                row.available_at = row.available_at - timedelta(hours=4)
                db.add(row)
            db.commit()
        wait_mail(stack["mail"], therapist["email"], 2)
        listed = api.client.get("/api/v1/notifications", headers=therapist["headers"]).json()
        assert [n["event_id"] for n in listed] == [held]

        # Kinds off: nothing at all for the next one.
        r = api.client.put("/api/v1/me/notification-preferences", headers=therapist["headers"], json={"kinds": []})
        assert r.status_code == 200 and r.json()["kinds"] == []
        muted, _ = _succeeded(learner)
        probe = _event(
            "review.saved",
            review_id=uuid.uuid4(),
            task_id=uuid.uuid4(),
            learner_id=uuid.UUID(learner["user"]["user_id"]),
            therapist_id=uuid.UUID(therapist["user"]["user_id"]),
        )
        wait_until(lambda: len(_rows(probe)) == 2, 30, what="a later event handled")
        assert _rows(muted) == []
        # Email off: in-app only.
        api.client.put(
            "/api/v1/me/notification-preferences",
            headers=therapist["headers"],
            json={"kinds": ["analysis.succeeded"], "email": False, "quiet_hours": None},
        )
        in_app_only, _ = _succeeded(learner)
        wait_until(lambda: len(_rows(in_app_only)) == 1, 30, what="the in-app row")
        assert _rows(in_app_only)[0].channel == "in_app"
    finally:
        consumer.stop()


def test_preferences_validation(api: Any) -> None:
    user = api.register("learner")
    got = api.client.get("/api/v1/me/notification-preferences", headers=user["headers"])
    assert got.status_code == 200
    assert got.json() == {
        "kinds": ["analysis.succeeded", "review.saved"],
        "email": True,
        "quiet_hours": None,
        "timezone": "Asia/Taipei",
        "reminder_hour": None,
        "daily_digest": False,
        "language": "zh-TW",
    }
    bad = [
        {"timezone": "Mars/Olympus"},
        {"quiet_hours": {"start": "25:00", "end": "07:00"}},
        {"quiet_hours": {"start": "22:00", "end": "22:00"}},
        {"quiet_hours": {"start": "22:00"}},
        {"reminder_hour": 24},
        {"reminder_hour": -1},
        {"kinds": ["spam"]},
        {"language": "fr"},
        {"unknown_field": 1},
    ]
    for body in bad:
        r = api.client.put("/api/v1/me/notification-preferences", headers=user["headers"], json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["message"], r.json()
    ok = {"reminder_hour": 19, "timezone": "Europe/Berlin", "daily_digest": True, "language": "en"}
    r = api.client.put("/api/v1/me/notification-preferences", headers=user["headers"], json=ok)
    assert r.status_code == 200 and {k: r.json()[k] for k in ok} == ok
    again = api.client.get("/api/v1/me/notification-preferences", headers=user["headers"]).json()
    assert {k: again[k] for k in ok} == ok and again["kinds"] == ["analysis.succeeded", "review.saved"]
    assert api.client.get("/api/v1/me/notification-preferences").status_code == 401


def test_crash_after_the_smtp_server_accepted_sends_the_mail_once(api: Any, stack: Any) -> None:
    therapist, learner = api.register("therapist"), api.register("learner")
    _link(learner, therapist)
    # Let the verification mails of these accounts go first (a clean consumer).
    first = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        wait_mail(stack["mail"], therapist["email"])
    finally:
        first.stop()
    crashing = consumer_process(
        stack["tmp"],
        stack["env"],
        stack["nats"].url,
        stack["mail"].port,
        VOCALBORN_FAULT_EXIT_AFTER_SEND="1",
        NOTIFY_SEND_LEASE_SECONDS="1",
    )
    event_id, _ = _succeeded(learner)
    try:
        assert crashing.proc is not None
        crashing.proc.wait(60)  # it sent the mail, then died before recording it
        assert crashing.proc.returncode == 137
    finally:
        crashing.stop()
    mail_row = next(r for r in _rows(event_id) if r.channel == "email")
    assert mail_row.status == "sending" and mail_row.sent_at is None
    assert len(stack["mail"].raw_to(therapist["email"])) == 2  # verification + this one, once so far
    second = consumer_process(
        stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port, NOTIFY_SEND_LEASE_SECONDS="1"
    )
    try:
        wait_until(
            lambda: next(r for r in _rows(event_id) if r.channel == "email").status == "done", 30, what="the re-send"
        )
    finally:
        second.stop()
    raw = stack["mail"].raw_to(therapist["email"])
    ids = [str(m["Message-ID"]) for m in raw]
    assert len(raw) == 3 and ids[1] == ids[2], "sent again, with the same Message-ID"
    assert len(stack["mail"].kept(therapist["email"])) == 2, "the mail outbox keeps it once"
    assert len([r for r in _rows(event_id) if r.channel == "in_app"]) == 1


def test_consumer_sigkilled_mid_batch_loses_and_duplicates_nothing(api: Any, stack: Any) -> None:
    from vocalborn.db import open_session
    from vocalborn.notify.models import Notification

    therapist = api.register("therapist")
    learners = [api.register("learner") for _ in range(10)]
    per_learner = 20
    events: list[str] = []
    for _ in range(per_learner):
        for learner in learners:
            events.append(
                _event(
                    "review.saved",
                    review_id=uuid.uuid4(),
                    task_id=uuid.uuid4(),
                    learner_id=uuid.UUID(learner["user"]["user_id"]),
                    therapist_id=uuid.UUID(therapist["user"]["user_id"]),
                )
            )
    ids = [uuid.UUID(e) for e in events]

    def rows() -> list[Any]:
        with open_session() as db:
            return list(db.exec(select(Notification).where(col(Notification.event_id).in_(ids))))

    kills = 0
    for _ in range(2):
        proc = consumer_process(
            stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port, CONSUMER_BATCH_SIZE="50"
        )
        assert proc.proc is not None
        target = len(rows()) + 60
        wait_until(lambda t=target: len(rows()) >= t, 60, 0.02, "the consumer under way")
        os.kill(proc.proc.pid, signal.SIGKILL)
        proc.proc.wait(10)
        proc.stop(1)
        kills += 1
    done = len(rows())
    assert done < 2 * len(events), "killed too late: everything was done already"
    last = consumer_process(stack["tmp"], stack["env"], stack["nats"].url, stack["mail"].port)
    try:
        wait_until(lambda: len(rows()) == 2 * len(events), 90, what="every notification")
        wait_until(lambda: all(r.status == "done" for r in rows()), 90, what="every mail sent and every push made")
        time.sleep(1.0)
    finally:
        last.stop()
    got = rows()
    assert len(got) == 2 * len(events) == len({(r.event_id, r.user_id, r.channel) for r in got})
    for learner in learners:
        kept = [k for k in stack["mail"].kept(learner["email"]) if "驗證" not in k.subject and "確認" not in k.subject]
        assert len(kept) == per_learner, (learner["email"], len(kept))
        raw = [m for m in stack["mail"].raw_to(learner["email"]) if "確認" not in str(m["Subject"])]
        # A re-send can only come from a kill between the SMTP server's answer and the record.
        assert per_learner <= len(raw) <= per_learner + kills
