"""Password reset and email verification through the outbox, the relay, the notifications
consumer and a real SMTP server on loopback: the mailed link's token works once, expires, ends
every session, follows the password rules; a reset for an unknown address answers the same and
mails nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.events.support import NatsServer, RelayThread
from tests.notify.support import MailServer, consumer_process, link_token, wait_mail

pytestmark = pytest.mark.worker


@pytest.fixture
def stack(api: Any, migrated: Any, tmp_path: Path) -> Any:
    nats = NatsServer(tmp_path / "nats").start()
    mail = MailServer(tmp_path / "mail").start()
    relay = RelayThread(nats.url).start()
    consumer = consumer_process(tmp_path, migrated.env, nats.url, mail.port)
    try:
        yield {"mail": mail}
    finally:
        consumer.stop()
        relay.stop()
        mail.stop()
        nats.stop()


def _reset_mails(server: MailServer, to: str) -> list[Any]:
    return [k for k in server.kept(to) if "密碼" in k.subject]


def test_verify_email_and_password_reset_end_to_end(api: Any, stack: Any) -> None:
    from vocalborn.notify import mailbox

    mail: MailServer = stack["mail"]
    user = api.register("learner")
    assert api.client.get("/api/v1/auth/me", headers=user["headers"]).json()["email_verified"] is False
    kept = wait_mail(mail, user["email"])
    found = mailbox.show(mail.folder, kept[0].id)
    assert found is not None
    token = link_token(found[1], "verify-email")
    assert api.client.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200
    assert api.client.get("/api/v1/auth/me", headers=user["headers"]).json()["email_verified"] is True
    again = api.client.post("/api/v1/auth/verify-email", json={"token": token})
    assert again.status_code == 400 and "not valid" in again.json()["detail"]
    assert api.client.post("/api/v1/auth/verify-email", json={"token": "nonsense"}).status_code == 400
    assert api.client.post("/api/v1/auth/verify-email", json={}).status_code == 422

    # reset: the same answer for an unknown address, and no mail
    nobody = f"nobody-{time.time_ns()}@example.com"
    r = api.client.post("/api/v1/auth/password-reset", json={"email": nobody})
    assert r.status_code == 202
    r2 = api.client.post("/api/v1/auth/password-reset", json={"email": user["email"]})
    assert r2.status_code == 202 and r2.json() == r.json()
    assert api.client.post("/api/v1/auth/password-reset", json={"email": "not-an-address"}).status_code == 422
    reset = wait_until_reset(mail, user["email"])
    token = link_token(reset, "reset-password")
    assert mail.kept(nobody) == []

    weak = api.client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "password"})
    assert weak.status_code == 422  # the token is not spent by a refused password
    ok = api.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "a-new-secret-horse-42"}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["sessions_ended"] >= 1
    assert api.client.get("/api/v1/auth/me", headers=user["headers"]).status_code == 401  # sessions revoked
    api.login(user["email"], "a-new-secret-horse-42")
    twice = api.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "another-secret-horse-43"}
    )
    assert twice.status_code == 400
    r = api.client.post("/api/v1/auth/login", data={"username": user["email"], "password": "correct-horse-1"})
    assert r.status_code == 401


def wait_until_reset(mail: MailServer, to: str, n: int = 1) -> str:
    from tests.support import wait_until
    from vocalborn.notify import mailbox

    kept = wait_until(lambda: len(_reset_mails(mail, to)) >= n and _reset_mails(mail, to), 30, what="the reset mail")
    found = mailbox.show(mail.folder, kept[0].id)
    assert found is not None
    return found[1]


def test_reset_link_expires_and_only_the_latest_works(api: Any, stack: Any) -> None:
    from sqlmodel import select

    from vocalborn.db import open_session
    from vocalborn.notify import tokens
    from vocalborn.notify.models import AccountToken
    from vocalborn.sqltypes import utcnow

    mail: MailServer = stack["mail"]
    user = api.register("learner")
    assert api.client.post("/api/v1/auth/password-reset", json={"email": user["email"]}).status_code == 202
    first = link_token(wait_until_reset(mail, user["email"]), "reset-password")
    with open_session() as db:
        row = db.exec(select(AccountToken).where(AccountToken.token_sha256 == tokens.sha256(first))).one()
        assert row.purpose == "password_reset" and first not in str(row.model_dump())  # stored hashed only
        row.expires_at = utcnow()
        db.add(row)
        db.commit()
    expired = api.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": first, "new_password": "a-new-secret-horse-42"}
    )
    assert expired.status_code == 400
    assert api.client.post("/api/v1/auth/password-reset", json={"email": user["email"]}).status_code == 202
    assert api.client.post("/api/v1/auth/password-reset", json={"email": user["email"]}).status_code == 202
    from tests.support import wait_until

    wait_until(lambda: len(_reset_mails(mail, user["email"])) == 3, 30, what="two more reset mails")
    links = {link_token(mailbox_body(mail, k.id), "reset-password") for k in _reset_mails(mail, user["email"])}
    links.discard(first)
    with open_session() as db:  # which link is the newer: by its token's row
        made = {
            t: db.exec(select(AccountToken).where(AccountToken.token_sha256 == tokens.sha256(t))).one() for t in links
        }
    older, newest = sorted(links, key=lambda t: made[t].created_at)
    refused = api.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": older, "new_password": "a-new-secret-horse-42"}
    )
    assert refused.status_code == 400, "an earlier link stops working when a newer one is sent"
    fine = api.client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": newest, "new_password": "a-new-secret-horse-42"}
    )
    assert fine.status_code == 200


def mailbox_body(mail: MailServer, mail_id: str) -> str:
    from vocalborn.notify import mailbox

    found = mailbox.show(mail.folder, mail_id)
    assert found is not None
    return found[1]


def test_reset_requests_are_rate_limited_per_address_of_the_account(api: Any, migrated: Any) -> None:
    user = api.register("learner")
    codes = [
        api.client.post("/api/v1/auth/password-reset", json={"email": user["email"]}).status_code for _ in range(4)
    ]
    assert codes == [202, 202, 202, 429]
