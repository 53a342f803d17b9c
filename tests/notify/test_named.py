"""The therapist's analysis notification names the learner and the sentence, and says when the
attempt did not count: the in-app line (both languages, the API's ``text``/``texts``) and the
mail. Real database; the consumer's handler and the mail composer called in process on the event
the domain wrote (the end-to-end path with NATS and SMTP: test_notifications.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import select

from tests import verdicts
from tests.support import Api, recording

SENTENCE = "今天天氣很好，我們去公園散步。"


def _linked(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    therapist = api.register("therapist")
    learner = api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 200
    return therapist, learner


def _analysed(api: Api, learner: dict[str, Any], session: str, sentence_id: str, detail: dict[str, Any]) -> Any:
    """An attempt analysed by the runner; the analysis.succeeded event it wrote."""
    from vocalborn.analysis.types import AnalysisReport
    from vocalborn.db import open_session
    from vocalborn.events.consumer import Event
    from vocalborn.events.models import EventOutbox
    from vocalborn.tasks.worker import runner

    r = api.record(learner, session, sentence_id, recording(voice="Male1", fmt="mp3"), "try.mp3")
    assert r.status_code == 201, r.text
    task_id = api.submit(learner, r.json()["practice_record_id"]).json()["task_id"]
    claim = runner.claim_task(uuid.UUID(task_id), "test-worker/1")
    assert isinstance(claim, runner.Claim)
    report = AnalysisReport(50.0, 50.0, 50.0, 50.0, verdicts.verdict_detail(detail), analysis_model_version="t/1")
    assert runner._complete(claim, report) is runner.Outcome.SUCCEEDED
    with open_session() as db:
        rows = db.exec(select(EventOutbox).where(EventOutbox.event_type == "analysis.succeeded")).all()
        row = next(o for o in rows if o.subject.get("task_id") == task_id)
        return Event(
            id=str(row.event_id),
            type=row.event_type,
            schema_version=row.schema_version,
            occurred_at=row.occurred_at.isoformat(),
            subject={k: str(v) for k, v in row.subject.items()},
            nats_subject="test",
        )


def _mail(user_id: str, event_id: str) -> Any:
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.notify import consumer
    from vocalborn.notify.models import EMAIL, Notification

    with open_session() as db:
        row = db.exec(
            select(Notification).where(
                Notification.event_id == uuid.UUID(event_id),
                Notification.user_id == uuid.UUID(user_id),
                Notification.channel == EMAIL,
            )
        ).one()
        return consumer.compose(db, get_settings(), row)


def test_the_therapist_is_told_who_practised_which_sentence_and_whether_it_counted(api: Api) -> None:
    from vocalborn.notify import consumer

    therapist, learner = _linked(api)
    name = learner["user"]["name"]
    assert api.client.put(
        "/api/v1/me/notification-preferences", headers=therapist["headers"], json={"email": True}
    ).status_code in (200, 204)
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    good = {
        "alignment": {"sentence_match": 1.0},
        "timing_analysis": {"attempt_duration": 3.1, "reference_duration": 3.0},
    }
    short = {
        "alignment": {"sentence_match": 0.0},
        "timing_analysis": {"attempt_duration": 0.9, "reference_duration": 3.0, "attempt_speech_time": 0.5},
    }
    counted = _analysed(api, learner, session, sentence["sentence_id"], good)
    consumer.handle(counted)
    not_counted = _analysed(api, learner, session, sentence["sentence_id"], short)
    consumer.handle(not_counted)

    for lang, counted_line, short_line in (
        ("en", f"{name} finished an analysis of “{SENTENCE}”", f"{name} finished an analysis of “{SENTENCE}” (NOT counted: recording too short)"),
        ("zh-TW", f"{name} 完成了「{SENTENCE}」的分析", f"{name} 完成了「{SENTENCE}」的分析（不計入練習：錄音太短）"),
    ):  # fmt: skip
        listed = api.client.get(f"/api/v1/notifications?lang={lang}", headers=therapist["headers"]).json()
        by_event = {n["event_id"]: n for n in listed}
        assert by_event[counted.id]["text"] == counted_line
        assert by_event[not_counted.id]["text"] == short_line
        assert by_event[not_counted.id]["texts"][lang] == short_line
        assert by_event[not_counted.id]["subject"]["counted"] == "false"

    good_mail = _mail(therapist["user"]["user_id"], counted.id)
    assert good_mail is not None
    assert good_mail["Subject"] == f"{name} 完成了一次分析：「{SENTENCE}」"  # the therapist's language: zh-TW
    body = good_mail.get_content()
    assert name in body and SENTENCE in body and "不計入" not in body and "您" not in body
    short_mail = _mail(therapist["user"]["user_id"], not_counted.id)
    assert "⚠ 這次練習不計入：錄音太短" in short_mail.get_content()
    prefs = api.client.put("/api/v1/me/notification-preferences", headers=therapist["headers"], json={"language": "en"})
    assert prefs.status_code in (200, 204), prefs.text
    short_mail = _mail(therapist["user"]["user_id"], not_counted.id)
    assert short_mail["Subject"] == f"{name} finished an analysis: “{SENTENCE}”"
    assert "This attempt was NOT counted: recording too short" in short_mail.get_content()


def test_a_notification_without_the_names_keeps_the_general_line() -> None:
    from vocalborn.notify import texts

    subject = {"task_id": "t", "learner_id": "l"}
    assert texts.text("analysis.succeeded", subject, "en") == "A learner of yours finished an analysis"
    assert texts.text("analysis.succeeded", subject, "zh-TW") == "你的一位學員完成了一次分析"
    long = {"learner_name": "Ann", "sentence_text": "字" * 60, "counted": "true"}
    assert texts.text("analysis.succeeded", long, "en") == f"Ann finished an analysis of “{'字' * 39}…”"
