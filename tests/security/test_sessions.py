"""Sessions (issue #23): short access tokens, rotating refresh tokens kept server-side, logout,
password change, listing and ending one's sessions; a reused refresh token ends its session;
erasure and role changes end sessions at once; a token living longer than allowed is refused.

In-process (the suite's database) for the rules, and two real API processes for "at once on
every process"."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
from sqlmodel import select

from tests import seeding
from tests.security.conftest import Pair
from tests.support import Api
from vocalborn.auth import service, sessions
from vocalborn.auth.models import AuthSession, Role, User
from vocalborn.auth.security import ALGORITHM, _secret
from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeSession
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask

PASSWORD = "correct-horse-1"


def _login(api: Api, email: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
    return api.client.post("/api/v1/auth/login", data={"username": email, "password": password, **extra})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _me(api: Api, token: str) -> httpx.Response:
    return api.client.get("/api/v1/auth/me", headers=_bearer(token))


def _refresh(api: Api, token: str) -> httpx.Response:
    api.client.cookies.clear()  # the body's token only
    return api.client.post("/api/v1/auth/refresh", json={"refresh_token": token})


def _task_of(user_id: str) -> str:
    """A pending analysis of the user (its status is answered by the hot route)."""
    with open_session() as db:
        session = PracticeSession(user_id=uuid.UUID(user_id))
        db.add(session)
        db.flush()
        sentence = seeding.sentence(db, "句子", uuid.UUID(user_id))
        record = seeding.record(db, session, sentence.sentence_id, uuid.UUID(user_id))
        now = utcnow()
        task = AIAnalysisTask(
            celery_task_id=uuid.uuid4().hex,
            practice_record_id=record.practice_record_id,
            user_id=uuid.UUID(user_id),
            status="pending",
            created_at=now,
            updated_at=now,
        )
        db.add(task)
        db.commit()
        return str(task.task_id)


def test_login_answers_a_short_access_token_a_refresh_token_and_an_httponly_cookie(api: Api) -> None:
    user = api.register()
    r = _login(api, user["email"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().access_token_expire_minutes * 60 == 900
    assert body["refresh_token"] and body["access_token"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 900 and uuid.UUID(claims["sid"])
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"vb_refresh={body['refresh_token']};")
    for part in ("HttpOnly", "Path=/api/v1/auth", "SameSite=strict"):
        assert part.lower() in cookie.lower(), cookie
    assert r.headers["cache-control"] == "no-store"


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_whole_session(api: Api) -> None:
    user = api.register()
    first = _login(api, user["email"]).json()
    second = _refresh(api, first["refresh_token"])
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"] and pair["access_token"] != first["access_token"]
    assert _me(api, pair["access_token"]).status_code == 200
    third = _refresh(api, pair["refresh_token"]).json()  # rotates again: fine
    # The first refresh token comes back (copied): refused, and the whole session ends.
    reused = _refresh(api, first["refresh_token"])
    assert reused.status_code == 401 and "used already" in reused.json()["detail"]
    assert _refresh(api, third["refresh_token"]).status_code == 401
    for token in (first["access_token"], pair["access_token"], third["access_token"]):
        r = _me(api, token)
        assert r.status_code == 401 and "ended" in r.json()["detail"]
    # Another login is a new session, unaffected.
    assert _me(api, _login(api, user["email"]).json()["access_token"]).status_code == 200
    assert _refresh(api, "not-a-token").status_code == 401
    api.client.cookies.clear()
    r = api.client.post("/api/v1/auth/refresh", json={})
    assert r.status_code == 401 and "no refresh token" in r.json()["detail"]


def test_the_page_refreshes_with_the_cookie_alone(api: Api) -> None:
    user = api.register()
    api.client.cookies.clear()
    _login(api, user["email"])  # sets the cookie in the client's jar
    r = api.client.post("/api/v1/auth/refresh")
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    assert api.client.cookies.get("vb_refresh") == r.json()["refresh_token"]  # rotated in the jar too
    assert _me(api, access).status_code == 200
    r = api.client.post("/api/v1/auth/logout")  # the cookie alone ends the session
    assert r.status_code == 204
    assert "vb_refresh" not in api.client.cookies
    assert _me(api, access).status_code == 401


def test_logout_refuses_the_old_access_token_at_once_on_every_route_and_the_refresh_token(api: Api) -> None:
    user = api.register()
    pair = _login(api, user["email"]).json()
    task = _task_of(user["user"]["user_id"])
    status_url = f"/api/v1/tasks/analysis/{task}/status"
    for _ in range(2):  # the second answered by the hot route, from memory
        assert api.client.get(status_url, headers=_bearer(pair["access_token"])).status_code == 200
    assert api.client.get("/api/v1/tasks/analysis", headers=_bearer(pair["access_token"])).status_code == 200
    api.client.cookies.clear()
    assert api.client.post("/api/v1/auth/logout", headers=_bearer(pair["access_token"])).status_code == 204
    for path in ("/api/v1/auth/me", status_url, "/api/v1/tasks/analysis", "/api/v1/practice/sessions"):
        r = api.client.get(path, headers=_bearer(pair["access_token"]))
        assert r.status_code == 401, (path, r.text)
    r = api.client.post(
        "/api/v1/tasks/analysis/submit",
        headers=_bearer(pair["access_token"]),
        json={"practice_record_id": str(uuid.uuid4())},
    )
    assert r.status_code == 401, r.text
    assert _refresh(api, pair["refresh_token"]).status_code == 401
    # The other session of the same user is untouched.
    assert _me(api, user["token"]).status_code == 200
    assert api.client.post("/api/v1/auth/logout").status_code == 401  # nothing to end
    # an access token that expired (the page idle for a while): the cookie still ends the session
    api.client.cookies.clear()
    other = _login(api, user["email"]).json()  # sets the cookie
    expired = jwt.encode(
        {**jwt.decode(other["access_token"], options={"verify_signature": False}), "exp": int(time.time()) - 5},
        _secret(),
        algorithm=ALGORITHM,
    )
    assert api.client.post("/api/v1/auth/logout", headers=_bearer(expired)).status_code == 204
    assert _refresh(api, other["refresh_token"]).status_code == 401


def test_changing_the_password_ends_the_other_sessions(api: Api) -> None:
    user = api.register()
    here, there = _login(api, user["email"]).json(), _login(api, user["email"]).json()
    url, h = "/api/v1/auth/password", _bearer(here["access_token"])
    r = api.client.post(
        url, headers=h, json={"current_password": "wrong-password-9", "new_password": "n3w-Pass-phrase!"}
    )
    assert r.status_code == 403 and "current_password" in r.json()["detail"]
    r = api.client.post(url, headers=h, json={"current_password": PASSWORD, "new_password": "n3w-Pass-phrase!"})
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "changed", "sessions_ended": 2}  # `there` and register()'s own
    assert _me(api, here["access_token"]).status_code == 200
    assert _me(api, there["access_token"]).status_code == 401
    assert _me(api, user["token"]).status_code == 401
    assert _refresh(api, there["refresh_token"]).status_code == 401
    assert _refresh(api, here["refresh_token"]).status_code == 200
    assert _login(api, user["email"]).status_code == 401
    assert _login(api, user["email"], "n3w-Pass-phrase!").status_code == 200
    r = api.client.post(url, json={"current_password": PASSWORD, "new_password": "n3w-Pass-phrase!"})
    assert r.status_code == 401


def test_list_and_end_ones_own_sessions(api: Api) -> None:
    user, other = api.register(), api.register()
    here = _login(api, user["email"]).json()
    h = _bearer(here["access_token"])
    listed = api.client.get("/api/v1/auth/sessions", headers=h)
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert len(rows) == 2 and [r["current"] for r in rows].count(True) == 1
    mine = next(r for r in rows if r["current"])
    assert mine["session_id"] == jwt.decode(here["access_token"], options={"verify_signature": False})["sid"]
    theirs = api.client.get("/api/v1/auth/sessions", headers=other["headers"]).json()[0]["session_id"]
    assert api.client.delete(f"/api/v1/auth/sessions/{theirs}", headers=h).status_code == 404
    assert _me(api, other["token"]).status_code == 200
    older = next(r for r in rows if not r["current"])["session_id"]
    assert api.client.delete(f"/api/v1/auth/sessions/{older}", headers=h).status_code == 204
    assert _me(api, user["token"]).status_code == 401
    assert api.client.delete(f"/api/v1/auth/sessions/{older}", headers=h).status_code == 404
    assert [r["session_id"] for r in api.client.get("/api/v1/auth/sessions", headers=h).json()] == [mine["session_id"]]


def test_erasure_and_a_role_change_end_sessions_at_once(api: Api) -> None:
    gone = api.register()
    assert api.client.delete("/api/v1/me", headers=gone["headers"]).status_code == 200
    assert _me(api, gone["token"]).status_code == 401
    with open_session() as db:
        left = db.exec(select(AuthSession).where(AuthSession.user_id == uuid.UUID(gone["user"]["user_id"])))
        assert list(left) == []
    moved = api.register("therapist")
    pair = _login(api, moved["email"]).json()
    with open_session() as db:
        user = db.get(User, uuid.UUID(moved["user"]["user_id"]))
        assert user is not None
        assert service.change_role(db, user, Role.LEARNER) == 2
    assert _me(api, moved["token"]).status_code == 401
    assert _refresh(api, pair["refresh_token"]).status_code == 401
    r = _me(api, _login(api, moved["email"]).json()["access_token"])
    assert r.json()["role"] == "learner"


def test_tokens_signed_by_our_key_but_living_too_long_or_without_a_session_are_refused(api: Api) -> None:
    user = api.register()
    now = int(time.time())
    claims = jwt.decode(user["token"], options={"verify_signature": False})
    ten_years = {**claims, "iat": now, "exp": now + 10 * 365 * 86400}
    other_session = {**claims, "sid": str(uuid.uuid4())}
    for forged in (ten_years, other_session):
        r = _me(api, jwt.encode(forged, _secret(), algorithm=ALGORITHM))
        assert r.status_code == 401, r.text


def test_a_session_unused_for_refresh_token_days_ends(api: Api) -> None:
    user = api.register()
    pair = _login(api, user["email"]).json()
    sid = uuid.UUID(jwt.decode(pair["access_token"], options={"verify_signature": False})["sid"])
    with open_session() as db:
        row = db.get(AuthSession, sid)
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.add(row)
        db.commit()
    assert _refresh(api, pair["refresh_token"]).status_code == 401
    assert _me(api, pair["access_token"]).status_code == 401


@pytest.fixture(scope="module")
def pair(start_pair: Any) -> Pair:
    return start_pair({})  # type: ignore[no-any-return]


@pytest.mark.worker  # starts two API processes
def test_logout_on_one_api_process_is_refused_at_once_by_the_other(pair: Pair) -> None:
    user = pair.a.register()
    tokens = pair.a.client.post("/api/v1/auth/login", data={"username": user["email"], "password": PASSWORD}).json()
    assert _me(pair.b, tokens["access_token"]).status_code == 200
    assert pair.a.client.post("/api/v1/auth/logout", headers=_bearer(tokens["access_token"])).status_code == 204
    assert _me(pair.b, tokens["access_token"]).status_code == 401
    r = pair.b.client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


@pytest.mark.worker  # uses the two API processes
def test_the_cli_client_refreshes_a_refused_access_token_once(pair: Pair) -> None:
    from vocalborn.cli.client import _ApiClient

    user = pair.a.register()
    client = _ApiClient(str(pair.a.client.base_url))  # type: ignore[union-attr]
    handle = client.login(user["email"], PASSWORD, "you")
    client._sessions[handle][0] = "expired.or.refused"  # as if its 15 minutes were over
    assert client.call("GET", "/api/v1/auth/me", handle)["email"] == user["email"]
    assert client.current(handle) not in (handle, "expired.or.refused")
    client._sessions[handle] = ["expired.or.refused", "a-used-up-refresh-token"]
    with pytest.raises(Exception, match="401"):
        client.call("GET", "/api/v1/auth/me", handle)


def test_the_hot_routes_trust_a_checked_session_only_for_a_few_seconds() -> None:
    sid = uuid.uuid4()
    assert not sessions.recently_checked(sid)
    sessions._remember(sid)
    assert sessions.recently_checked(sid)
    sessions._checked[sid] -= sessions.RECHECK_SECONDS  # as if checked that long ago
    assert not sessions.recently_checked(sid)
    sessions._remember(sid)
    sessions.forget(sid)
    assert not sessions.recently_checked(sid)


def test_vocalborn_users_set_role_ends_the_sessions(api: Api) -> None:
    import os
    import subprocess
    import sys

    user = api.register("therapist")
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "users", "set-role", user["email"], "learner"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "is now learner; 1 session(s) ended" in done.stdout
    assert _me(api, user["token"]).status_code == 401
    bad = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "users", "set-role", "nobody@example.com", "admin"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1 and "no account" in bad.stderr
