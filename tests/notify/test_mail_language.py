"""The account mails' language: the user's mail language when they saved preferences, otherwise
the language of the page that asked (``?lang`` / Accept-Language); the zh-TW mails say 你, as the
page does. Real database; the consumer's handler and the composer in process on the events the
requests wrote (through NATS and SMTP: test_accounts.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlmodel import col, select

from tests.support import Api


def _account_mails(user_id: str) -> list[Any]:
    """Handle the user's account events (as the consumer does) and compose their mails, oldest first."""
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.events.consumer import Event
    from vocalborn.events.models import EventOutbox
    from vocalborn.notify import consumer
    from vocalborn.notify.models import Notification

    with open_session() as db:
        rows = db.exec(
            select(EventOutbox).where(col(EventOutbox.event_type).startswith("account.")).order_by(col(EventOutbox.seq))
        ).all()
        events = [
            Event(
                str(o.event_id),
                o.event_type,
                o.schema_version,
                o.occurred_at.isoformat(),
                {k: str(v) for k, v in o.subject.items()},
                "test",
            )  # fmt: skip
            for o in rows
            if o.subject.get("user_id") == user_id
        ]
    for event in events:
        consumer.handle(event)
    mails = []
    with open_session() as db:
        for event in events:
            row = db.exec(select(Notification).where(Notification.event_id == uuid.UUID(event.id))).one()
            mails.append(consumer.compose(db, get_settings(), row))
    return mails


def _register(api: Api, query: str, headers: dict[str, str]) -> tuple[str, str]:
    email = f"lang-{time.time_ns()}@example.com"
    r = api.client.post(
        f"/api/v1/auth/register{query}",
        headers=headers,
        json={"email": email, "password": "correct-horse-battery-9", "name": "Lin", "role": "learner"},
    )
    assert r.status_code == 202, r.text
    from vocalborn.auth.models import User
    from vocalborn.db import open_session

    with open_session() as db:
        user = db.exec(select(User).where(User.email == email)).one()
        return email, str(user.user_id)


def test_account_mails_follow_the_asking_page_unless_the_user_chose_a_language(api: Api) -> None:
    email, user_id = _register(api, "?lang=en", {})
    assert (
        api.client.post(
            "/api/v1/auth/password-reset", headers={"Accept-Language": "en-GB,en;q=0.9"}, json={"email": email}
        ).status_code
        == 202
    )
    verify, reset = _account_mails(user_id)
    assert verify["Subject"] == "Confirm your email address"
    assert reset["Subject"] == "Reset your VocalBorn password" and "Someone (hopefully you)" in reset.get_content()

    # the zh-TW page (or no language at all): zh-TW, addressed with 你
    email, user_id = _register(api, "", {"Accept-Language": "zh-TW"})
    assert api.client.post("/api/v1/auth/password-reset", json={"email": email}).status_code == 202
    verify, reset = _account_mails(user_id)
    assert verify["Subject"] == "請確認你的電子郵件地址"
    assert reset["Subject"] == "重設你的 VocalBorn 密碼"
    body = reset.get_content()
    assert "希望是你" in body and "您" not in body and "您" not in verify.get_content()

    # a saved mail language wins over the page's
    login = api.client.post("/api/v1/auth/login", data={"username": email, "password": "correct-horse-battery-9"})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    saved = api.client.put("/api/v1/me/notification-preferences", headers=headers, json={"language": "zh-TW"})
    assert saved.status_code == 200, saved.text
    assert api.client.post("/api/v1/auth/password-reset?lang=en", json={"email": email}).status_code == 202
    assert _account_mails(user_id)[-1]["Subject"] == "重設你的 VocalBorn 密碼"
