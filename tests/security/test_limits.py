"""Every abuse limit, counted in Redis and shared by two API processes: requests alternate
between them and the limit still holds at its number."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.security.conftest import Pair, address, login, register
from tests.support import recording
from vocalborn.security.ratelimit import Verdict, hit, hit_async

pytestmark = pytest.mark.worker

LIMITS = {
    "RATE_LIMIT_WINDOW_SECONDS": "120",
    "RATE_LIMIT_LOGIN_PER_ACCOUNT": "6",
    "RATE_LIMIT_LOGIN_PER_ADDRESS": "10",
    "LOGIN_LOCKOUT_FAILURES": "4",
    "LOGIN_LOCKOUT_SECONDS": "30",
    "RATE_LIMIT_REGISTER_PER_ADDRESS": "3",
    "RATE_LIMIT_UPLOADS_PER_USER": "4",
    "RATE_LIMIT_SUBMITS_PER_USER": "3",
    "MAX_ACTIVE_TASKS_PER_LEARNER": "2",
    "RATE_LIMIT_EXPORTS_PER_USER": "2",
}


@pytest.fixture(scope="module")
def pair(start_pair: Callable[[dict[str, str]], Pair]) -> Pair:
    return start_pair(LIMITS)


def email() -> str:
    return f"rl-{uuid.uuid4().hex[:10]}@example.com"


def assert_limited(r: Any, words: str, window: int = 120) -> None:
    assert r.status_code == 429, r.text
    assert words in r.json()["detail"], r.json()
    assert 1 <= int(r.headers["Retry-After"]) <= window + 1


def test_logins_per_account_are_limited_across_two_api_processes(pair: Pair) -> None:
    who, ip = email(), address("acct")
    assert register(pair.a, who, "right-password-1", headers=address("reg-acct")).status_code == 202
    for i in range(6):  # right passwords, alternating processes: the window counts attempts
        assert login(pair.alternate(i), who, "right-password-1", ip).status_code == 200, i
    assert_limited(login(pair.a, who, "right-password-1", ip), "too many logins for this account")
    assert_limited(login(pair.b, who, "right-password-1", address("other")), "too many logins for this account")


@pytest.mark.parametrize("known", [True, False])
def test_failed_logins_lock_the_email_on_both_processes_known_or_not(pair: Pair, known: bool) -> None:
    who, ip = email(), address(f"lock{known}")
    if known:
        assert register(pair.b, who, "right-password-1", headers=address("reg-lock")).status_code == 202
    for i in range(4):
        r = login(pair.alternate(i), who, "wrong-password", ip)
        assert r.status_code == 401 and r.json() == {"detail": "wrong email or password"}
    for api in pair.apis:  # now even the right password is refused, on either process
        r = login(api, who, "right-password-1", address("elsewhere"))
        assert_limited(r, "too many failed logins for this account")
        assert int(r.headers["Retry-After"]) <= 30


def test_logins_per_address_are_limited_across_two_api_processes(pair: Pair) -> None:
    ip = address("ip")
    for i in range(10):  # ten different (unknown) accounts from one address
        assert login(pair.alternate(i), email(), "whatever-1", ip).status_code == 401, i
    assert_limited(login(pair.b, email(), "whatever-1", ip), "too many logins from this address")
    assert login(pair.b, email(), "whatever-1", address("ip-other")).status_code == 401  # others are not


def test_registrations_per_address_are_limited_across_two_api_processes(pair: Pair) -> None:
    ip = address("register")
    for i in range(3):
        assert register(pair.alternate(i), email(), "a-password-1", headers=ip).status_code == 202
    assert_limited(
        register(pair.a, email(), "a-password-1", headers=ip), "too many registrations from this address", 3600
    )
    assert register(pair.b, email(), "a-password-1", headers=address("register-other")).status_code == 202


def _user(pair: Pair, role: str) -> dict[str, Any]:
    who = email()
    assert register(pair.a, who, "a-password-1", role=role, headers=address("u" + who)).status_code == 202
    token = login(pair.b, who, "a-password-1", address("l" + who)).json()["access_token"]
    return {"email": who, "token": token, "headers": {"Authorization": f"Bearer {token}"}}


def test_uploads_submits_and_waiting_analyses_are_limited_per_user(pair: Pair) -> None:
    therapist, learner = _user(pair, "therapist"), _user(pair, "learner")
    sentence = pair.a.sentence(therapist, recording())
    session = pair.b.session(learner)
    attempt = recording(voice="Male1", fmt="mp3")
    records = []
    for i in range(3):  # the learner's uploads: their own count, not the therapist's
        r = pair.alternate(i).record(learner, session["practice_session_id"], sentence["sentence_id"], attempt, "a.mp3")
        assert r.status_code == 201, r.text
        records.append(r.json()["practice_record_id"])
    # the therapist has made one upload (the sentence); three more, then the fifth is refused
    for i in range(3):
        pair.alternate(i).sentence(therapist, recording())
    r = pair.b.client.post(
        "/api/v1/practice/sentences",
        headers=therapist["headers"],
        data={"text": "x"},
        files={"reference_audio": ("r.wav", recording())},
    )
    assert_limited(r, "too many uploads")

    assert pair.a.submit(learner, records[0]).status_code == 202
    assert pair.b.submit(learner, records[1]).status_code == 202
    r = pair.a.submit(learner, records[2])
    assert r.status_code == 429 and r.json()["detail"].startswith("you already have 2 analyses waiting"), r.text
    assert r.headers["Retry-After"]
    # a fourth submit within the window: the per-user submit limit (3) answers first
    assert_limited(pair.b.submit(learner, records[0]), "too many analysis requests")

    # exports: two per hour, whichever process serves them
    for api in pair.apis:
        assert api.client.get("/api/v1/me/export", headers=learner["headers"]).status_code == 200
    assert_limited(pair.a.client.get("/api/v1/me/export", headers=learner["headers"]), "too many exports", 3600)

    for user in (learner, therapist):  # tidy: their pending tasks and files go with them
        r = pair.a.client.delete("/api/v1/me", headers=user["headers"])
        assert r.status_code in (200, 409), r.text


def test_the_window_slides_and_retry_after_says_when(migrated: object) -> None:
    import time

    name, subject = f"slide{uuid.uuid4().hex[:6]}", "someone"
    assert hit(name, subject, 2, 3).allowed
    time.sleep(1.5)
    assert hit(name, subject, 2, 3).allowed
    refused = hit(name, subject, 2, 3)
    assert not refused.allowed and refused.retry_after in (1, 2)  # the first leaves ~1.5 s from now
    time.sleep(1.7)
    assert hit(name, subject, 2, 3).allowed  # the first left; the second is still counted
    assert not hit(name, subject, 2, 3).allowed


def test_checks_asked_together_are_decided_one_by_one_in_one_call(migrated: object) -> None:
    """The async checks of a burst go to Redis in one script call; each is still decided as if
    alone, in the order asked: the first three of one subject pass, the rest are refused and
    not counted, and another subject in the same call has its own count."""
    from vocalborn.kit.coalesce import per_loop

    name = f"burst{uuid.uuid4().hex[:6]}"

    async def burst() -> tuple[list[Verdict], int]:
        asked = ["a"] * 8 + ["b"] * 2 + ["a"]
        verdicts = await asyncio.gather(*(hit_async(name, s, 3, 60) for s in asked))
        return list(verdicts), per_loop("ratelimit", lambda: None).largest

    verdicts, largest = asyncio.run(burst())
    assert largest > 1  # the first went alone (nothing waits), the others together
    a = verdicts[:8] + verdicts[10:]
    assert [v.allowed for v in a] == [True] * 3 + [False] * 6
    assert [v.count for v in a] == [1, 2, 3] + [4] * 6  # refusals are not counted
    assert all(55 <= v.retry_after <= 61 for v in a[3:])
    assert [(v.allowed, v.count) for v in verdicts[8:10]] == [(True, 1), (True, 2)]


def test_checks_survive_a_flushed_script_and_fail_open_together(migrated: object) -> None:
    """After Redis forgets its scripts (a restart) the checks load theirs again; a batch whose
    script fails (here a key of the wrong type) lets every one of its checks through, as an
    unreachable Redis does, rather than refusing anyone."""
    import redis

    from vocalborn.config import get_settings
    from vocalborn.security import ratelimit

    client = redis.Redis.from_url(get_settings().effective_redis_url)
    name = f"flush{uuid.uuid4().hex[:6]}"

    async def burst(subjects: list[str]) -> list[Verdict]:
        return list(await asyncio.gather(*(hit_async(name, s, 2, 60) for s in subjects)))

    assert [v.count for v in asyncio.run(burst(["a", "a"]))] == [1, 2]
    client.script_flush()
    again = asyncio.run(burst(["a", "b"]))
    assert [(v.allowed, v.count) for v in again] == [(False, 3), (True, 1)]  # counted as before the flush
    client.set(ratelimit._key(name, "wrong"), "not a sorted set")
    try:
        first, *together = asyncio.run(burst(["c", "d", "wrong"]))
    finally:
        client.delete(ratelimit._key(name, "wrong"))
    assert (first.allowed, first.count) == (True, 1)  # alone, before the others
    assert all((v.allowed, v.count) == (True, 0) for v in together)  # the failed batch: open, uncounted
