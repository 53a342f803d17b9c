"""Issue 23, the smaller findings, one regression test each: link codes stored hashed and their
accepting rate-limited; a therapist invitation not used up by a taken email; blank and NUL
sentence texts refused; no-store / nosniff / Content-Disposition; the page's CSP connects to its
own host only; README names the invitation field the API returns."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlmodel import select

from tests.support import Api, recording
from vocalborn.db import open_session
from vocalborn.learning.models import LinkInvitation
from vocalborn.practice.models import Sentence
from vocalborn.security.models import TherapistInvitation

ROOT = Path(__file__).resolve().parents[2]


def email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


# --- link invitation codes ----------------------------------------------------------------------
def test_link_codes_are_stored_hashed_shown_once_and_still_accepted(api: Api) -> None:
    therapist, learner = api.register("therapist"), api.register("learner")
    made = api.client.post("/api/v1/links/invitations", headers=therapist["headers"], json={"expires_in_hours": 2})
    assert made.status_code == 201, made.text
    code, invitation_id = made.json()["code"], made.json()["invitation_id"]
    assert re.fullmatch(r"[A-Z2-9]{10}", code)
    with open_session() as db:
        row = db.get(LinkInvitation, uuid.UUID(invitation_id))
        assert row is not None
        stored = " ".join(str(v) for v in row.model_dump().values())
    assert code not in stored and code.lower() not in stored and len(row.code_sha256) == 64
    assert row.code_sha256 != hashlib.sha256(code.encode()).hexdigest()  # keyed, not a bare hash
    # the listing cannot show it again
    listed = api.client.get("/api/v1/links/invitations", headers=therapist["headers"]).json()
    assert [i["code"] for i in listed if i["invitation_id"] == invitation_id] == [None]
    # typed as a person would: lower case, with a dash
    typed = f"{code[:5].lower()}-{code[5:]}"
    r = api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": typed})
    assert r.status_code == 200, r.text
    assert r.json()["therapist"]["user_id"] == therapist["user"]["user_id"]


def test_accepting_codes_is_rate_limited_per_learner(api: Api) -> None:
    learner = api.register("learner")
    answers = [
        api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": f"WRONG{i:05d}"})
        for i in range(11)
    ]
    assert [a.status_code for a in answers[:10]] == [404] * 10
    assert answers[10].status_code == 429, answers[10].text
    assert "too many invitation codes tried" in answers[10].json()["detail"] and answers[10].headers["Retry-After"]
    # a right code from the same learner is refused too until the window moves: guessing is what it limits
    therapist = api.register("therapist")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 429


def test_the_migration_hashes_the_open_codes_of_an_existing_install(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    secret = "s" + uuid.uuid4().hex * 2
    env = dict(os.environ, DATABASE_URL=url, DATA_DIR=str(tmp_path), SECRET_KEY=secret)

    def alembic(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr

    alembic("upgrade", "0007")
    engine = create_engine(url)
    therapist, invitation = uuid.uuid4().hex, uuid.uuid4().hex
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (user_id, email, name, role, password_hash, created_at) "
                "VALUES (:id, 't@example.com', 'T', 'therapist', 'x', '2026-12-01 00:00:00')"
            ),
            {"id": therapist},
        )
        conn.execute(
            text(
                "INSERT INTO link_invitations (invitation_id, code, therapist_id, created_at, expires_at) "
                "VALUES (:id, 'ABCDE23456', :t, '2026-12-01 00:00:00', '2099-01-01 00:00:00')"
            ),
            {"id": invitation, "t": therapist},
        )
    alembic("upgrade", "head")
    with engine.connect() as conn:
        columns = [row[1] for row in conn.execute(text("PRAGMA table_info(link_invitations)"))]
        (digest,) = conn.execute(text("SELECT code_sha256 FROM link_invitations")).one()
    engine.dispose()
    assert "code" not in columns and "code_sha256" in columns
    key = hmac.new(secret.encode(), b"vocalborn link invitation", hashlib.sha256).digest()
    assert digest == hmac.new(key, b"ABCDE23456", hashlib.sha256).hexdigest()
    # what the application computes for that code, under that SECRET_KEY
    from vocalborn.config import Settings

    done = subprocess.run(
        [sys.executable, "-c", "from vocalborn.learning.links import code_digest; print(code_digest('abcde-23456'))"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == digest, done.stderr
    assert Settings(secret_key=secret, _env_file=None).effective_secret_key() == secret


# --- therapist invitations ------------------------------------------------------------------------
def test_a_therapist_invitation_is_not_used_up_by_a_registration_with_a_taken_email(api: Api) -> None:
    taken = api.register("learner")
    made = api.client.post("/api/v1/admin/therapist-invitations", headers=api.admin()["headers"], json={})
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    body = {"email": taken["email"], "password": "pw-long-other-1", "name": "X", "role": "therapist"}
    r = api.client.post("/api/v1/auth/register", json={**body, "invitation_code": code})
    assert r.status_code == 202  # the same answer as for a new email
    with open_session() as db:
        row = db.get(TherapistInvitation, uuid.UUID(made.json()["invitation_id"]))
        assert row is not None and row.used_at is None and row.used_by is None
    # the code still makes a therapist, once
    new = email("invited")
    r = api.client.post("/api/v1/auth/register", json={**body, "email": new, "invitation_code": code})
    assert r.status_code == 202
    me = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {api.login(new, 'pw-long-other-1')}"})
    assert me.json()["role"] == "therapist"
    again = api.client.post("/api/v1/auth/register", json={**body, "email": email("late"), "invitation_code": code})
    assert again.status_code == 403
    # the taken account is untouched
    assert api.client.get("/api/v1/auth/me", headers=taken["headers"]).json()["role"] == "learner"


# --- sentence text --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sentence", "words"),
    [
        ("   ", "the sentence text is empty (only whitespace)"),
        ("\t\n \u3000", "the sentence text is empty (only whitespace)"),
        ("今天\x00天氣很好", "the sentence text contains a NUL character"),
        ("今天\x07天氣很好", "the sentence text contains a control character"),
    ],
)
def test_blank_and_nul_sentence_texts_are_refused_with_a_clear_422(api: Api, sentence: str, words: str) -> None:
    therapist = api.register("therapist")
    r = api.client.post(
        "/api/v1/practice/sentences",
        headers=therapist["headers"],
        data={"text": sentence},
        files={"reference_audio": ("ref.wav", recording())},
    )
    assert r.status_code == 422, r.text
    assert r.json()["message"] == words and r.json()["detail"][0]["loc"] == ["body", "text"], r.json()
    with open_session() as db:  # nothing half-made
        author = uuid.UUID(therapist["user"]["user_id"])
        assert db.exec(select(Sentence).where(Sentence.created_by == author)).first() is None


def test_a_sentence_with_surrounding_whitespace_and_newlines_is_kept_trimmed(api: Api) -> None:
    therapist = api.register("therapist")
    made = api.sentence(therapist, recording(), text="  今天天氣很好\n")
    assert made["text"] == "今天天氣很好"


# --- headers --------------------------------------------------------------------------------------
def _private(r: Any) -> None:
    assert r.headers["cache-control"] == "no-store", (r.request.url, dict(r.headers))
    assert r.headers["x-content-type-options"] == "nosniff", (r.request.url, dict(r.headers))


def test_api_answers_are_not_stored_and_not_sniffed_and_audio_is_a_download(api: Api) -> None:
    therapist, learner = api.register("therapist"), api.register("learner")
    ready = api.ready_record(therapist, learner)
    record_id, sentence_id = ready["record"]["practice_record_id"], ready["sentence"]["sentence_id"]
    for r in (
        api.client.get("/api/v1/auth/me", headers=learner["headers"]),
        api.client.get("/api/v1/practice/sentences", headers=learner["headers"]),
        api.client.get("/api/v1/auth/me"),  # a 401
        api.client.get(f"/api/v1/practice/records/{uuid.uuid4()}", headers=learner["headers"]),  # a 404
    ):
        _private(r)
    audio = {
        f"/api/v1/practice/records/{record_id}/audio": f'attachment; filename="recording-{record_id}.mp3"',
        f"/api/v1/practice/sentences/{sentence_id}/audio": f'attachment; filename="reference-{sentence_id}.wav"',
    }
    for url, disposition in audio.items():
        r = api.client.get(url, headers=learner["headers"])
        assert r.status_code == 200 and r.headers["content-type"].startswith("audio/"), r.text
        _private(r)
        assert r.headers["content-disposition"] == disposition


# --- the page's CSP ---------------------------------------------------------------------------------
def _connect_src(policy: str) -> list[str]:
    (directive,) = [d.strip() for d in policy.split(";") if d.strip().startswith("connect-src")]
    return directive.split()[1:]


def test_the_page_connects_to_its_own_host_only(api: Api) -> None:
    r = api.client.get("/", headers={"Host": "vb.example.org:8443"})
    assert _connect_src(r.headers["content-security-policy"]) == [
        "'self'",
        "ws://vb.example.org:8443",
        "wss://vb.example.org:8443",
    ]
    assert "ws:" not in r.headers["content-security-policy"].split()
    r = api.client.get("/", headers={"Host": "[::1]:8000"})
    assert _connect_src(r.headers["content-security-policy"]) == ["'self'", "ws://[::1]:8000", "wss://[::1]:8000"]
    # a Host that is no host name gets nothing but 'self' (nothing of it is echoed into the policy)
    r = api.client.get("/", headers={"Host": "evil.example; script-src *"})
    assert _connect_src(r.headers["content-security-policy"]) == ["'self'"]
    assert "evil" not in r.headers["content-security-policy"]


# --- README and the API agree on the invitation field -----------------------------------------------
def test_readme_names_the_fields_the_api_uses_for_therapist_invitations(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]
    assert "code" in schema["InvitationCreated"]["properties"]
    assert "invitation_code" in schema["RegisterRequest"]["properties"]
    readme = (ROOT / "README.md").read_text()
    sentence = re.search(r"single-use code from `POST /api/v1/admin/therapist-invitations`[^.]*\.", readme)
    assert sentence, "README lost its sentence on therapist invitations"
    assert "(its field `code`)" in sentence.group(0) and "`invitation_code`" in sentence.group(0), sentence.group(0)
