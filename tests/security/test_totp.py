"""The second factor (issue #23): TOTP per RFC 6238 (checked against the RFC's own test vectors),
enrolment and recovery codes, login with it, replay and lockout, and admins in production."""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.support import Api
from vocalborn.auth import totp
from vocalborn.auth.models import Role, User
from vocalborn.config import get_settings
from vocalborn.db import open_session

PASSWORD = "correct-horse-1"
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of RFC 6238's SHA-1 seed "12345678901234567890"


@pytest.mark.parametrize(
    ("at", "code"),
    [
        (59, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
    ],
)
def test_the_codes_are_rfc_6238s(at: int, code: str) -> None:
    assert totp.hotp(RFC_SECRET, totp.step_at(at), digits=8) == code
    assert totp.code_at(RFC_SECRET, at) == code[-6:]


def test_a_code_is_accepted_one_step_off_and_not_further() -> None:
    secret = totp.new_secret()
    now = 1_800_000_000.0
    assert totp.matching_step(secret, totp.code_at(secret, now), now) == totp.step_at(now)
    assert totp.matching_step(secret, totp.code_at(secret, now - 30), now) == totp.step_at(now) - 1
    assert totp.matching_step(secret, totp.code_at(secret, now - 90), now) is None
    assert totp.matching_step(secret, "12a456", now) is None
    url = urlparse(totp.otpauth_url(secret, "dr.lin@example.com"))
    assert (url.scheme, url.netloc, url.path) == ("otpauth", "totp", "/VocalBorn%3Adr.lin%40example.com")
    assert parse_qs(url.query) == {
        "secret": [secret],
        "issuer": ["VocalBorn"],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


def _login(api: Api, email: str, code: str | None = None) -> httpx.Response:
    data = {"username": email, "password": PASSWORD}
    if code is not None:
        data["totp_code"] = code
    return api.client.post("/api/v1/auth/login", data=data)


def _enrol(api: Api, user: dict[str, Any]) -> tuple[str, list[str]]:
    r = api.client.post("/api/v1/auth/totp/setup", headers=user["headers"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["otpauth_url"].startswith("otpauth://totp/") and f"secret={body['secret']}" in body["otpauth_url"]
    assert body["qr_svg"].startswith("<svg") and "</svg>" in body["qr_svg"]
    secret = body["secret"]
    r = api.client.post("/api/v1/auth/totp/confirm", headers=user["headers"], json={"code": "000000"})
    if totp.code_at(secret, time.time()) != "000000":
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "code"], r.text
    r = api.client.post(
        "/api/v1/auth/totp/confirm", headers=user["headers"], json={"code": totp.code_at(secret, time.time())}
    )
    assert r.status_code == 200, r.text
    codes = r.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


def test_enrolment_then_every_login_needs_the_code(api: Api) -> None:
    therapist = api.register("therapist")
    other = _login(api, therapist["email"]).json()  # another session: ends when TOTP is turned on
    secret, codes = _enrol(api, therapist)
    assert api.client.get("/api/v1/auth/me", headers=therapist["headers"]).json()["totp_enabled"] is True
    assert (
        api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other['access_token']}"}).status_code
        == 401
    )
    again = api.client.post("/api/v1/auth/totp/setup", headers=therapist["headers"])
    assert again.status_code == 409  # on already: the secret is not replaced
    r = _login(api, therapist["email"])
    assert r.status_code == 401 and "authenticator code" in r.json()["detail"]
    assert (
        _login(
            api, therapist["email"], "123456" if totp.code_at(secret, time.time()) != "123456" else "654321"
        ).status_code
        == 401
    )
    # the code used at confirmation cannot be replayed; the next step's code works once
    next_code = totp.code_at(secret, time.time() + 30)
    assert _login(api, therapist["email"], next_code).status_code == 200
    assert _login(api, therapist["email"], next_code).status_code == 401
    # a recovery code stands in once (any case, with or without dashes)
    assert _login(api, therapist["email"], codes[0].upper().replace("-", "")).status_code == 200
    assert _login(api, therapist["email"], codes[0]).status_code == 401
    # the wrong password is still the wrong password, whatever the code
    r = api.client.post(
        "/api/v1/auth/login",
        data={"username": therapist["email"], "password": "not-the-password-9", "totp_code": codes[1]},
    )
    assert r.status_code == 401 and r.json()["detail"] == "wrong email or password"


def test_learners_have_no_second_factor(api: Api) -> None:
    learner = api.register("learner")
    assert api.client.post("/api/v1/auth/totp/setup", headers=learner["headers"]).status_code == 403
    assert (
        api.client.post("/api/v1/auth/totp/confirm", headers=learner["headers"], json={"code": "123456"}).status_code
        == 403
    )
    therapist = api.register("therapist")
    r = api.client.post("/api/v1/auth/totp/confirm", headers=therapist["headers"], json={"code": "123456"})
    assert r.status_code == 409  # nothing set up yet


def test_five_wrong_codes_lock_the_second_factor_for_15_minutes(api: Api) -> None:
    therapist = api.register("therapist")
    secret, codes = _enrol(api, therapist)
    wrong = "111111" if totp.code_at(secret, time.time()) != "111111" else "222222"
    for _ in range(totp.LOCK_FAILURES):
        assert _login(api, therapist["email"], wrong).status_code == 401
    r = _login(api, therapist["email"], totp.code_at(secret, time.time() + 30))  # even the right one
    assert r.status_code == 429, r.text
    assert 850 <= int(r.headers["Retry-After"]) <= totp.LOCK_SECONDS
    assert _login(api, therapist["email"], codes[2]).status_code == 429


def test_an_admin_without_the_second_factor_in_production_may_only_enrol(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.broker.scenarios import make_admin

    admin = make_admin(api)
    monkeypatch.setattr(get_settings(), "environment", "production")
    r = api.client.get("/api/v1/admin/tasks/stats", headers=admin["headers"])
    assert r.status_code == 403 and "second factor" in r.json()["detail"], r.text
    assert api.client.get("/api/v1/tasks/analysis", headers=admin["headers"]).status_code == 403
    assert api.client.get("/api/v1/auth/me", headers=admin["headers"]).status_code == 200
    secret, _ = _enrol(api, admin)
    assert api.client.get("/api/v1/admin/tasks/stats", headers=admin["headers"]).status_code == 200
    with open_session() as db:
        user = db.get(User, uuid.UUID(api.client.get("/api/v1/auth/me", headers=admin["headers"]).json()["user_id"]))
        assert user is not None and user.role == Role.ADMIN and user.totp_secret == secret
