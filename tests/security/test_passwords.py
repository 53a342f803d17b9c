"""The password rule (issue #23): at least 10 characters, not only spaces, and not easy to guess
by zxcvbn's offline estimate; the refusal is a 422 that says why, on registration, on a password
change and in `vocalborn users create`."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.support import Api
from vocalborn.auth import passwords

REFUSED = ["password", "12345678", "qwertyuiop", " " * 10, "passwordpassword", "aaaaaaaaaaaa", "Password123"]


@pytest.mark.parametrize("password", REFUSED)
def test_weak_passwords_are_refused_at_registration_with_a_reason(api: Api, password: str) -> None:
    email = f"weak-{uuid.uuid4().hex[:8]}@example.com"
    r = api.client.post("/api/v1/auth/register", json={"email": email, "password": password, "name": "W"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["detail"][0]["loc"] == ["body", "password"]
    assert "password" in body["message"]
    if password.strip() == "":
        assert "only spaces" in body["message"]
    elif len(password) < 10:
        assert "at least 10 characters" in body["message"]
    else:
        assert "too easy to guess" in body["message"]
    # and nothing was made: the login is refused
    assert api.client.post("/api/v1/auth/login", data={"username": email, "password": password}).status_code == 401


def test_the_accounts_own_words_count_against_it(api: Api) -> None:
    r = api.client.post(
        "/api/v1/auth/register",
        json={"email": "zhang.meilin@example.com", "password": "zhangmeilin1", "name": "Zhang Meilin"},
    )
    assert r.status_code == 422 and "too easy to guess" in r.json()["message"]
    assert passwords.problem("learner-pass") is not None  # the product's own words
    assert passwords.problem("Tr1cky-Ramen-47") is None
    assert passwords.problem("我的密碼是很長的一句話") is None
    assert passwords.problem("x" * 100 + "!") is not None  # judged by its first 72 characters


def test_a_new_password_is_held_to_the_same_rule(api: Api) -> None:
    user = api.register()
    url = "/api/v1/auth/password"
    for weak, why in (("12345678", "at least 10"), (" " * 10, "only spaces"), ("qwertyuiop", "too easy")):
        r = api.client.post(
            url, headers=user["headers"], json={"current_password": "correct-horse-1", "new_password": weak}
        )
        assert r.status_code == 422 and why in r.json()["message"], r.text
    local = user["email"].split("@")[0]
    r = api.client.post(
        url, headers=user["headers"], json={"current_password": "correct-horse-1", "new_password": local}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "new_password"], r.text


def test_the_cli_refuses_a_weak_password_too(migrated: object) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "users", "create", "--email", "ops@example.com", "--name", "Ops"],
        env=dict(os.environ, VOCALBORN_PASSWORD="qwertyuiop"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "too easy to guess" in done.stderr
