"""Mail transport and the pieces around it: SMTP with STARTTLS and a login against a real
aiosmtpd server on loopback (the certificate checked), the local mail outbox keeping one mail per
Message-ID and `vocalborn mail list/show` reading it, the quiet-hours arithmetic, and the daily
digest written once per therapist and local day."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.notify.support import MailServer


def _certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _settings(**values: Any) -> Any:
    from vocalborn.config import get_settings

    return get_settings().model_copy(update=values)


def test_starttls_and_login_against_a_real_server(tmp_path: Path) -> None:
    from aiosmtpd.smtp import AuthResult

    from vocalborn.notify import mail

    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[str, str]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = data.login == b"mailer" and data.password == b"s3cret"
        logins.append((mechanism, data.login.decode()))
        return AuthResult(success=ok)

    server = MailServer(tmp_path / "mail", tls_context=context, auth=authenticator).start()
    try:
        base = {"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_from": "VocalBorn <no-reply@example.com>"}
        msg = mail.build(_settings(**base), "a@example.com", "hi", "body", mail.message_id(uuid.uuid4(), uuid.uuid4()))
        # Without STARTTLS the server refuses (it requires it).
        with pytest.raises(Exception):  # noqa: B017 - smtplib raises one of several refusals
            mail.send(_settings(**base), msg)
        # STARTTLS against a certificate the client does not trust: refused before any login.
        with pytest.raises(ssl.SSLError):
            mail.send(_settings(**base, smtp_starttls=True, smtp_username="mailer", smtp_password="s3cret"), msg)
        good = _settings(
            **base, smtp_starttls=True, smtp_ca_file=str(cert), smtp_username="mailer", smtp_password="s3cret"
        )
        with pytest.raises(Exception):  # noqa: B017 - a wrong password: smtplib.SMTPAuthenticationError
            mail.send(good.model_copy(update={"smtp_password": "wrong"}), msg)
        mail.send(good, msg)
        assert [m["Subject"] for m in server.raw_to("a@example.com")] == ["hi"]
        assert ("mailer" in [u for _, u in logins]) and len(server.kept("a@example.com")) == 1
    finally:
        server.stop()


def test_the_mail_outbox_keeps_one_per_message_id_and_the_cli_shows_it(tmp_path: Path, migrated: Any) -> None:
    from vocalborn.notify import mail

    data = tmp_path / "data"
    server = MailServer(data / "mail").start()
    try:
        settings = _settings(smtp_host="127.0.0.1", smtp_port=server.port)
        mid = mail.message_id(uuid.uuid4(), uuid.uuid4())
        msg = mail.build(settings, "b@example.com", "Reset", "open https://x/#reset-password=abc", mid)
        mail.send(settings, msg)
        mail.send(settings, msg)  # the same Message-ID again: received, kept once
        other = mail.build(settings, "b@example.com", "Other", "text", mail.message_id(uuid.uuid4(), uuid.uuid4()))
        mail.send(settings, other)
    finally:
        server.stop()
    assert len(server.raw) == 3
    kept = server.kept("b@example.com")
    assert sorted(k.subject for k in kept) == ["Other", "Reset"]
    env = {**migrated.env, "DATA_DIR": str(data)}
    listed = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "mail", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "Reset" in listed.stdout and "Other" in listed.stdout and listed.stdout.count("b@example.com") == 2
    reset = next(k for k in kept if k.subject == "Reset")
    shown = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "mail", "show", reset.id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0 and "#reset-password=abc" in shown.stdout and mid in shown.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "mail", "show", "0" * 32],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0 and "no mail" in missing.stderr


def test_quiet_hours_release_time() -> None:
    from vocalborn.notify.models import NotificationPreferences
    from vocalborn.notify.preferences import release_time

    utc = dt.UTC
    prefs = NotificationPreferences(
        user_id=uuid.uuid4(), kinds=[], quiet_start="22:00", quiet_end="07:00", timezone="Asia/Taipei"
    )
    # 23:30 in Taipei (15:30 UTC): held until 07:00 Taipei the next day (23:00 UTC)
    assert release_time(prefs, dt.datetime(2026, 12, 7, 15, 30, tzinfo=utc)) == dt.datetime(
        2026, 12, 7, 23, 0, tzinfo=utc
    )
    # 03:00 in Taipei (19:00 UTC the day before): until 07:00 the same local day
    assert release_time(prefs, dt.datetime(2026, 12, 6, 19, 0, tzinfo=utc)) == dt.datetime(
        2026, 12, 6, 23, 0, tzinfo=utc
    )
    # 12:00 in Taipei: now
    noon = dt.datetime(2026, 12, 7, 4, 0, tzinfo=utc)
    assert release_time(prefs, noon) == noon
    day = NotificationPreferences(
        user_id=uuid.uuid4(), kinds=[], quiet_start="09:00", quiet_end="17:00", timezone="UTC"
    )
    assert release_time(day, dt.datetime(2026, 12, 7, 10, 0, tzinfo=utc)) == dt.datetime(2026, 12, 7, 17, 0, tzinfo=utc)
    assert release_time(day, dt.datetime(2026, 12, 7, 17, 0, tzinfo=utc)) == dt.datetime(2026, 12, 7, 17, 0, tzinfo=utc)
    none = NotificationPreferences(user_id=uuid.uuid4(), kinds=[])
    assert release_time(none, noon) == noon


def test_daily_digest_once_per_therapist_and_day(api: Any) -> None:
    from sqlmodel import select

    from vocalborn.db import open_session
    from vocalborn.notify.consumer import digest_event_id, write_digests
    from vocalborn.notify.models import Notification

    therapist, learner = api.register("therapist"), api.register("learner")
    other = api.register("therapist")  # not opted in
    from tests.notify.test_notifications import _link

    _link(learner, therapist)
    r = api.client.put(
        "/api/v1/me/notification-preferences",
        headers=therapist["headers"],
        json={"daily_digest": True, "timezone": "UTC"},
    )
    assert r.status_code == 200
    settings = _settings(digest_hour=18)
    before = dt.datetime(2026, 12, 7, 17, 59, tzinfo=dt.UTC)
    at = dt.datetime(2026, 12, 7, 18, 5, tzinfo=dt.UTC)
    write_digests(settings, before)
    tid = uuid.UUID(therapist["user"]["user_id"])
    with open_session() as db:
        assert db.exec(select(Notification).where(Notification.user_id == tid)).all() == []
    write_digests(settings, at)
    write_digests(settings, at + dt.timedelta(hours=2))  # the same day: nothing more
    with open_session() as db:
        rows = db.exec(select(Notification).where(Notification.user_id == tid, Notification.type == "digest")).all()
        assert len(rows) == 1 and rows[0].event_id == digest_event_id(tid, "2026-12-07")
        assert rows[0].channel == "email" and "Learner: 0" in rows[0].subject["text"]
        oid = uuid.UUID(other["user"]["user_id"])
        assert (
            db.exec(select(Notification).where(Notification.user_id == oid, Notification.type == "digest")).all() == []
        )
    write_digests(settings, at + dt.timedelta(days=1))
    with open_session() as db:
        assert (
            len(db.exec(select(Notification).where(Notification.user_id == tid, Notification.type == "digest")).all())
            == 2
        )


def test_erasure_forgets_notifications_about_and_of_the_account(api: Any) -> None:
    from sqlmodel import select

    from vocalborn.auth.models import User
    from vocalborn.db import open_session
    from vocalborn.notify import service
    from vocalborn.notify.models import AccountToken, Notification
    from vocalborn.security.rights import erase_user

    therapist, learner = api.register("therapist"), api.register("learner")
    tid, lid = uuid.UUID(therapist["user"]["user_id"]), uuid.UUID(learner["user"]["user_id"])
    about = {"task_id": str(uuid.uuid4()), "learner_id": str(lid), "practice_record_id": str(uuid.uuid4())}
    with open_session() as db:
        service.add_all(db, service.plan(db, uuid.uuid4(), tid, "analysis.succeeded", about))
        service.add_all(db, service.plan(db, uuid.uuid4(), lid, "review.saved", {"learner_id": str(lid)}))
        assert db.exec(select(AccountToken).where(AccountToken.user_id == lid)).all()  # from the registration
    with open_session() as db:
        user = db.get(User, lid)
        assert user is not None
        erase_user(db, user)
    with open_session() as db:
        left = db.exec(select(Notification).where(col_in(Notification.user_id, [tid, lid]))).all()
        assert left == [], "the therapist's notification about the learner, and the learner's own, are gone"
        assert db.exec(select(AccountToken).where(AccountToken.user_id == lid)).all() == []


def col_in(column: Any, values: list[uuid.UUID]) -> Any:
    from sqlmodel import col

    return col(column).in_(values)


def test_preference_and_token_errors_in_both_languages(api: Any) -> None:
    user = api.register("learner")
    zh = api.client.put(
        "/api/v1/me/notification-preferences?lang=zh-TW", headers=user["headers"], json={"timezone": "Mars/Olympus"}
    )
    en = api.client.put(
        "/api/v1/me/notification-preferences?lang=en", headers=user["headers"], json={"timezone": "Mars/Olympus"}
    )
    assert zh.status_code == en.status_code == 422
    assert "不是 IANA 時區" in zh.json()["message"] and "is not an IANA time zone" in en.json()["message"]
    bad = api.client.post("/api/v1/auth/verify-email?lang=zh-TW", json={"token": "nope"})
    assert bad.status_code == 400 and bad.json()["detail"].startswith("這個連結無效")
