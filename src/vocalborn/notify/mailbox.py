"""The local mail outbox: a real SMTP server (aiosmtpd) that keeps every mail it receives as a
file under ``DATA_DIR/mail`` instead of delivering it. `vocalborn up` runs it when no SMTP_HOST
is configured; `vocalborn mail list` / `mail show` and the admin page read the folder.

A mail is stored once per ``Message-ID`` (the file is named after it): the notifications
consumer derives that id from the event and the recipient, so a mail sent again after a crash
(the send happened, its record did not commit) is not kept twice; see docs/EVENTS.md."""

from __future__ import annotations

import email
import email.policy
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAIL_DIR_NAME = "mail"


def mail_dir(data_dir: Path) -> Path:
    return data_dir / MAIL_DIR_NAME


def _file_name(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    mid = str(msg.get("Message-ID") or "").strip()
    key = mid or uuid.uuid4().hex
    return hashlib.sha256(key.encode()).hexdigest()[:32] + ".eml"


def store(folder: Path, raw: bytes) -> bool:
    """Keep the mail (atomically, on disk before the server says 250); False: a mail with this
    Message-ID is kept already."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / _file_name(raw)
    if path.exists():
        return False
    tmp = folder / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:6]}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # fails if another session stored the same id meanwhile
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


class OutboxHandler:
    """aiosmtpd handler: every accepted mail goes to the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        import asyncio

        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        await asyncio.get_running_loop().run_in_executor(None, store, self.folder, raw)
        return "250 Message accepted for delivery"


def controller(folder: Path, port: int, host: str = "127.0.0.1", tls_context: Any = None, auth: Any = None) -> Any:
    """An aiosmtpd Controller (a thread) serving the folder; ``tls_context`` offers STARTTLS."""
    from aiosmtpd.controller import Controller

    kwargs: dict[str, Any] = {}
    if tls_context is not None:
        kwargs.update(tls_context=tls_context, require_starttls=True)
    if auth is not None:
        kwargs.update(authenticator=auth, auth_require_tls=tls_context is not None)
    else:
        kwargs.update(auth_require_tls=False)
    return Controller(OutboxHandler(folder), hostname=host, port=port, server_hostname="vocalborn.local", **kwargs)


@dataclass(frozen=True)
class Kept:
    id: str  # the file's name without .eml
    path: Path
    received_at: float
    sender: str
    to: str
    subject: str
    message_id: str


def list_mail(folder: Path, limit: int = 100, to: str | None = None) -> list[Kept]:
    """The kept mails, newest first."""
    if not folder.is_dir():
        return []
    out: list[Kept] = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        kept = _read(path)
        if to and to.lower() not in kept.to.lower():
            continue
        out.append(kept)
        if len(out) >= limit:
            break
    return out


def _read(path: Path) -> Kept:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return Kept(
        id=path.stem,
        path=path,
        received_at=path.stat().st_mtime,
        sender=str(msg.get("From", "")),
        to=str(msg.get("To", "")),
        subject=str(msg.get("Subject", "")),
        message_id=str(msg.get("Message-ID", "")),
    )


def show(folder: Path, mail_id: str) -> tuple[Kept, str] | None:
    """One kept mail and its text body; None if there is no such mail."""
    if not mail_id or not all(c in "0123456789abcdef" for c in mail_id) or len(mail_id) != 32:
        return None
    path = folder / f"{mail_id}.eml"
    if not path.is_file():
        return None
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    body = part.get_content() if part is not None else ""
    return _read(path), str(body)
