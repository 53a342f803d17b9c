"""Submitting and reading tasks, with no worker running: validation, ownership, idempotency."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from tests.support import Api, recording
from vocalborn.db import open_session
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.worker.maintenance import reap_stalled_tasks


def test_resubmitting_an_active_record_returns_the_same_task(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    first = api.submit(learner, record_id)
    assert first.status_code == 202, first.text
    again = api.submit(learner, record_id)
    assert again.status_code == 200, again.text
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.json()["created"] is False
    assert [e["event_type"] for e in api.events(learner, first.json()["task_id"])] == ["submitted"]


def test_queue_position_counts_the_tasks_ahead(api: Api, therapist: dict[str, Any], learner: dict[str, Any]) -> None:
    ready = api.ready_record(therapist, learner)
    a = api.submit(learner, ready["record"]["practice_record_id"]).json()
    r = api.record(
        learner, ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"], recording(voice="Male1")
    )
    b = api.submit(learner, r.json()["practice_record_id"]).json()
    assert b["queue_position"] == a["queue_position"] + 1
    assert api.status(learner, a["task_id"])["queue_position"] == a["queue_position"]


def test_another_user_gets_404_for_task_record_result_and_session(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    ready = api.ready_record(therapist, learner)
    record_id = ready["record"]["practice_record_id"]
    session_id = ready["session"]["practice_session_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    other = api.register("learner")
    for path in (
        f"/api/v1/tasks/analysis/{task_id}/status",
        f"/api/v1/tasks/analysis/{task_id}/result",
        f"/api/v1/tasks/analysis/{task_id}/events",
        f"/api/v1/tasks/analysis/session/{session_id}/status",
        f"/api/v1/practice/records/{record_id}",
        f"/api/v1/practice/records/{record_id}/audio",
        f"/api/v1/practice/sessions/{session_id}",
    ):
        r = api.client.get(path, headers=other["headers"])
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert "not found" in r.json()["detail"]
    r = api.submit(other, record_id)
    assert r.status_code == 404
    r = api.record(other, session_id, ready["sentence"]["sentence_id"], recording())
    assert r.status_code == 404


def test_a_linked_therapist_may_read_but_an_unlinked_one_may_not(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.auth import service as auth_service
    from vocalborn.db import open_session

    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    assert api.client.get(f"/api/v1/tasks/analysis/{task_id}/status", headers=therapist["headers"]).status_code == 404
    with open_session() as db:
        lrn = auth_service.get_user_by_email(db, learner["email"])
        thr = auth_service.get_user_by_email(db, therapist["email"])
        assert lrn is not None and thr is not None
        auth_service.link_therapist(db, lrn, thr)
    assert api.client.get(f"/api/v1/tasks/analysis/{task_id}/status", headers=therapist["headers"]).status_code == 200


def test_a_corrupt_upload_gets_a_clear_4xx_and_stores_nothing(
    api: Api, services: Any, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)
    before = sorted(p.name for p in (services.data_dir / "storage").rglob("*") if p.is_file())
    good = recording(fmt="mp3")
    cases = {
        "garbage": b"this is not audio at all" * 50,
        "truncated mp3": good[:200],
        "empty": b"",
        "an image": b"\x89PNG\r\n\x1a\n" + b"\x00" * 500,
    }
    for name, data in cases.items():
        r = api.record(learner, session["practice_session_id"], sentence["sentence_id"], data, "fake.wav")
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        body = r.json()
        # 422: the validation-error shape (detail a list, message a sentence); 413/415: detail a sentence
        assert (body["message"] if r.status_code == 422 else body["detail"]).startswith("audio:"), (name, r.text)
    after = sorted(p.name for p in (services.data_dir / "storage").rglob("*") if p.is_file())
    assert after == before
    r = api.client.get(
        f"/api/v1/practice/sessions/{session['practice_session_id']}/records", headers=learner["headers"]
    )
    assert r.json() == []


def test_unsupported_format_too_short_and_too_large_are_refused(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.analysis.synth import synthesize
    from vocalborn.config import get_settings

    sentence = api.sentence(therapist, recording())
    session = api.session(learner)
    r = api.record(learner, session["practice_session_id"], sentence["sentence_id"], recording(fmt="flac"), "x.flac")
    assert r.status_code == 415 and "flac" in r.json()["detail"]
    short = synthesize("好", "zh", "Female1")[:2000]
    r = api.record(learner, session["practice_session_id"], sentence["sentence_id"], short, "short.wav")
    assert r.status_code in (415, 422) and "audio" in (r.json().get("message") or r.json()["detail"])
    limit = get_settings().max_audio_file_size
    big = b"\x00" * (limit + 10)
    r = api.record(learner, session["practice_session_id"], sentence["sentence_id"], big, "big.wav")
    assert r.status_code == 413, r.text


def test_bad_submit_bodies_get_422_with_a_readable_message(api: Api, learner: dict[str, Any]) -> None:
    r = api.client.post(
        "/api/v1/tasks/analysis/submit", headers=learner["headers"], json={"practice_record_id": "nope"}
    )
    assert r.status_code == 422 and "practice_record_id" in r.json()["message"]
    r = api.client.post(
        "/api/v1/tasks/analysis/submit",
        headers=learner["headers"],
        json={"practice_record_id": "00000000-0000-0000-0000-000000000000", "parameters": {"analysis_type": "quick"}},
    )
    assert r.status_code == 422 and "analysis_type" in r.json()["message"]
    r = api.client.post(
        "/api/v1/tasks/analysis/submit",
        headers=learner["headers"],
        json={"practice_record_id": "00000000-0000-0000-0000-000000000000"},
    )
    assert r.status_code == 404


def test_requests_without_a_valid_token_get_401(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        r = api.client.get("/api/v1/auth/me", headers=headers)
        assert r.status_code == 401 and r.json()["detail"]


def test_learners_cannot_create_sentences_and_nobody_registers_as_admin(api: Api, learner: dict[str, Any]) -> None:
    r = api.client.post(
        "/api/v1/practice/sentences",
        headers=learner["headers"],
        data={"text": "x"},
        files={"reference_audio": ("r.wav", recording())},
    )
    assert r.status_code == 403
    r = api.client.post(
        "/api/v1/auth/register",
        json={"email": "boss@example.com", "password": "long-enough-1", "name": "B", "role": "admin"},
    )
    assert r.status_code == 422


def test_registering_twice_with_one_email_changes_nothing_and_says_nothing(api: Api) -> None:
    user = api.register("learner")
    r = api.client.post(
        "/api/v1/auth/register", json={"email": user["email"].upper(), "password": "another-pass-1", "name": "X"}
    )
    assert r.status_code == 202  # the answer a new email gets (no account enumeration)
    # the first account is untouched: its password still works, the second one does not
    api.login(user["email"], "correct-horse-1")
    bad = api.client.post("/api/v1/auth/login", data={"username": user["email"], "password": "another-pass-1"})
    assert bad.status_code == 401


def test_an_oversized_upload_without_a_content_length_is_cut_off_at_the_limit(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    from vocalborn.config import get_settings

    limit = get_settings().max_audio_file_size
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)
    boundary = "vb-test-boundary"
    sent = 0

    def body() -> Any:  # chunked transfer encoding: no Content-Length to refuse up front
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="sentence_id"\r\n\r\n{sentence["sentence_id"]}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="big.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        chunk = b"\x00" * 1_048_576
        for _ in range(limit // len(chunk) + 4):
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    r = api.client.post(
        f"/api/v1/practice/sessions/{session['practice_session_id']}/records",
        headers={**learner["headers"], "Content-Type": f"multipart/form-data; boundary={boundary}"},
        content=body(),
    )
    assert r.status_code == 413, r.text
    assert "limit" in r.json()["detail"]
    assert (
        api.client.get(
            f"/api/v1/practice/sessions/{session['practice_session_id']}/records", headers=learner["headers"]
        ).json()
        == []
    )


def test_absurd_paging_values_are_refused_with_422_not_500(api: Api, learner: dict[str, Any]) -> None:
    r = api.client.get("/api/v1/practice/sessions?offset=9223372036854775808", headers=learner["headers"])
    assert r.status_code == 422 and "offset" in r.json()["message"]


def test_validation_errors_never_echo_the_input_and_explain_bad_json(api: Api) -> None:
    r = api.client.post("/api/v1/auth/register", json={"email": "x@example.com", "password": "pw-42", "name": "X"})
    assert r.status_code == 422 and "password" in r.json()["message"]
    assert "pw-42" not in r.text
    r = api.client.post(
        "/api/v1/auth/register", content=b'{"email": "x@example.com",', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["message"].startswith("the body is not valid JSON")


def test_a_reaped_tasks_events_name_no_worker_to_the_learner(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    """The reaper's messages named the stopped worker (host/pid), and learners read them (events,
    WebSocket, export): only admins may see host names (issue 12)."""
    task_id = api.submit(learner, api.ready_record(therapist, learner)["record"]["practice_record_id"]).json()[
        "task_id"
    ]
    long_ago = utcnow() - timedelta(hours=1)
    with open_session() as db:
        db.execute(
            update(AIAnalysisTask)
            .where(AIAnalysisTask.task_id == uuid.UUID(task_id))  # type: ignore[arg-type]
            .values(status="processing", attempt=1, worker_name="leaky-host/4242", started_at=long_ago,
                    heartbeat_at=long_ago, updated_at=long_ago)
        )  # fmt: skip
        db.commit()
    assert reap_stalled_tasks()["requeued"] >= 1
    events = api.events(learner, task_id)
    assert events[-1]["event_type"] == "queued", events
    assert "leaky-host" not in str(events)
    admin_view = api.client.get(f"/api/v1/tasks/analysis/{task_id}/events", headers=api.admin()["headers"]).json()
    assert any(e["worker_name"] == "leaky-host/4242" for e in admin_view)  # admins still see which
