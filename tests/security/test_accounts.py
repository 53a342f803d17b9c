"""No account enumeration, and the role rules: invitation-only therapists, sentences that
belong to their therapist, worker host names for admins only."""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.security.conftest import Pair, address, login, register
from tests.support import Api, recording
from vocalborn.auth.models import User
from vocalborn.auth.service import link_therapist
from vocalborn.db import open_session
from vocalborn.security.models import TherapistInvitation
from vocalborn.sqltypes import utcnow


def email(tag: str = "acc") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


# --- enumeration (in-process API, open registration) ------------------------------------------------
def test_registration_answers_a_taken_email_exactly_as_a_new_one(api: Api) -> None:
    taken = api.register("learner")
    new = api.client.post("/api/v1/auth/register", json={"email": email(), "password": "pw-long-enough-1", "name": "A"})
    again = api.client.post(
        "/api/v1/auth/register",
        json={"email": taken["email"], "password": "pw-long-enough-2", "name": "B", "role": "therapist"},
    )
    assert new.status_code == again.status_code == 202
    assert (
        new.json()
        == again.json()
        == {
            "status": "accepted",
            "message": "if this email was not registered yet, the account now exists; log in with it",
        }
    )
    # the taken account is untouched: same role, same name, old password
    me = api.client.get("/api/v1/auth/me", headers=taken["headers"]).json()
    assert me["role"] == "learner" and me["name"] == "Learner"
    api.login(taken["email"], "correct-horse-1")


def test_failed_logins_are_identical_and_take_the_same_time(api: Api) -> None:
    known = api.register("learner")
    unknown = email("nobody")
    answers, times = {}, {"known": [], "unknown": []}
    for _ in range(5):
        for kind, who in (("known", known["email"]), ("unknown", unknown)):
            started = time.perf_counter()
            r = api.client.post("/api/v1/auth/login", data={"username": who, "password": "wrong-password"})
            times[kind].append(time.perf_counter() - started)
            answers[kind] = (r.status_code, r.json(), r.headers.get("www-authenticate"))
    assert answers["known"] == answers["unknown"] == (401, {"detail": "wrong email or password"}, "Bearer")
    # both spend one Argon2 verification; medians within a factor of 1.6 (a shared, busy machine)
    ratio = statistics.median(times["known"]) / statistics.median(times["unknown"])
    assert 1 / 1.6 < ratio < 1.6, times


# --- roles: invitation-only therapists (an API process with closed registration) -------------------------
@pytest.fixture(scope="module")
def closed(start_pair: Callable[[dict[str, str]], Pair]) -> Pair:
    return start_pair({"OPEN_THERAPIST_REGISTRATION": "false"})


def _admin(api: Api) -> dict[str, Any]:
    return api.admin()


@pytest.mark.worker
def test_closed_registration_makes_learners_and_therapists_only_by_invitation(closed: Pair) -> None:
    api = closed.a
    r = register(api, email(), "pw-long-enough-1", role="therapist", headers=address("t1"))
    assert r.status_code == 403 and "invitation code" in r.json()["detail"]

    learner_email = email("l")
    assert register(api, learner_email, "pw-long-enough-1", headers=address("t2")).status_code == 202
    learner = {"Authorization": f"Bearer {login(api, learner_email, 'pw-long-enough-1').json()['access_token']}"}
    assert closed.b.client.post("/api/v1/admin/therapist-invitations", headers=learner).status_code == 403

    admin = _admin(api)
    made = closed.b.client.post(
        "/api/v1/admin/therapist-invitations", headers=admin["headers"], json={"expires_in_hours": 1, "note": "Dr. Wu"}
    )
    assert made.status_code == 201, made.text
    code = made.json()["code"]
    assert (
        register(
            api, email(), "pw-long-enough-1", role="therapist", invitation_code="not-a-real-code", headers=address("t3")
        ).status_code
        == 403
    )

    therapist_email = email("t")
    r = register(
        closed.b, therapist_email, "pw-long-enough-1", role="therapist", invitation_code=code, headers=address("t4")
    )
    assert r.status_code == 202
    token = login(api, therapist_email, "pw-long-enough-1").json()["access_token"]
    me = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["role"] == "therapist"
    # single use: the same code again is refused, on either process
    for a in closed.apis:
        r = register(a, email(), "pw-long-enough-1", role="therapist", invitation_code=code, headers=address("t5"))
        assert r.status_code == 403 and "unknown, used or expired" in r.json()["detail"]


@pytest.mark.worker
def test_an_expired_invitation_is_refused(closed: Pair) -> None:
    from sqlmodel import select

    admin = _admin(closed.a)
    made = closed.a.client.post("/api/v1/admin/therapist-invitations", headers=admin["headers"])
    assert made.status_code == 201
    with open_session() as db:
        inv = db.exec(
            select(TherapistInvitation).where(
                TherapistInvitation.invitation_id == uuid.UUID(made.json()["invitation_id"])
            )
        ).one()
        assert inv.code_sha256 != made.json()["code"]  # only a digest is stored
        inv.expires_at = utcnow()
        db.add(inv)
        db.commit()
    r = register(
        closed.a,
        email(),
        "pw-long-enough-1",
        role="therapist",
        invitation_code=made.json()["code"],
        headers=address("t6"),
    )
    assert r.status_code == 403


# --- sentences belong to their therapist ---------------------------------------------------------------
def test_learners_see_their_therapists_sentences_and_shared_ones_only(api: Api) -> None:
    mine, other = api.register("therapist"), api.register("therapist")
    learner, stranger = api.register("learner"), api.register("learner")
    with open_session() as db:
        link_therapist(
            db, db.get(User, uuid.UUID(learner["user"]["user_id"])), db.get(User, uuid.UUID(mine["user"]["user_id"]))
        )
    own = api.sentence(mine, recording(), text="我的句子", shared=False)
    foreign = api.sentence(other, recording(), text="別人的句子", shared=False)
    public = api.sentence(other, recording(), text="共享句子", shared=True)

    def visible(user: dict[str, Any]) -> set[str]:
        r = api.client.get("/api/v1/practice/sentences?limit=200", headers=user["headers"])
        assert r.status_code == 200
        return {s["sentence_id"] for s in r.json()} & {
            own["sentence_id"],
            foreign["sentence_id"],
            public["sentence_id"],
        }

    assert visible(learner) == {own["sentence_id"], public["sentence_id"]}
    assert visible(stranger) == {public["sentence_id"]}
    assert visible(mine) == {own["sentence_id"], public["sentence_id"]}
    assert visible(api.admin()) == {own["sentence_id"], foreign["sentence_id"], public["sentence_id"]}
    # neither the sentence, nor its reference voice, nor a recording of it, for who may not see it
    for path in (
        f"/api/v1/practice/sentences/{foreign['sentence_id']}",
        f"/api/v1/practice/sentences/{foreign['sentence_id']}/audio",
    ):
        assert api.client.get(path, headers=learner["headers"]).status_code == 404
    session = api.session(learner)
    r = api.record(learner, session["practice_session_id"], foreign["sentence_id"], recording(voice="Male1"))
    assert r.status_code == 404
    assert (
        api.client.get(f"/api/v1/practice/sentences/{own['sentence_id']}/audio", headers=learner["headers"]).status_code
        == 200
    )

    # sharing: the author or an admin; another therapist may not
    share = f"/api/v1/practice/sentences/{own['sentence_id']}/shared"
    assert (
        api.client.put(share, json={"shared": True}, headers=other["headers"]).status_code == 404
    )  # not visible to them
    public_share = f"/api/v1/practice/sentences/{public['sentence_id']}/shared"
    assert api.client.put(public_share, json={"shared": False}, headers=mine["headers"]).status_code == 403
    assert api.client.put(share, json={"shared": True}, headers=learner["headers"]).status_code == 403  # a learner
    r = api.client.put(share, json={"shared": True}, headers=mine["headers"])
    assert r.status_code == 200 and r.json()["shared"] is True
    assert visible(stranger) == {own["sentence_id"], public["sentence_id"]}
    r = api.client.put(
        f"/api/v1/practice/sentences/{foreign['sentence_id']}/shared",
        json={"shared": True},
        headers=api.admin()["headers"],
    )
    assert r.status_code == 200
    assert visible(stranger) == {own["sentence_id"], foreign["sentence_id"], public["sentence_id"]}
