"""What the notification tests share: a real SMTP server on loopback (aiosmtpd) that keeps mail
as the local mail outbox does (one per Message-ID) and also counts every raw delivery, and the
notifications consumer as a real `vocalborn consume notifications` process."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
from pathlib import Path
from typing import Any

from tests.support import ServiceProcess, wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailServer:
    """aiosmtpd on 127.0.0.1: the mail outbox handler (files by Message-ID) plus a raw count."""

    def __init__(self, folder: Path, tls_context: Any = None, auth: Any = None) -> None:
        from vocalborn.notify import mailbox

        self.folder = folder
        self.port = free_port()
        self.raw: list[bytes] = []
        self.lock = threading.Lock()
        outer = self

        class Counting(mailbox.OutboxHandler):
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                with outer.lock:
                    outer.raw.append(bytes(envelope.original_content or envelope.content))
                return await super().handle_DATA(server, session, envelope)

        self.controller = mailbox.controller(folder, self.port, tls_context=tls_context, auth=auth)
        self.controller.handler = Counting(folder)

    def start(self) -> MailServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def kept(self, to: str | None = None) -> list[Any]:
        from vocalborn.notify import mailbox

        return mailbox.list_mail(self.folder, 100_000, to)

    def raw_to(self, address: str) -> list[email.message.EmailMessage]:
        with self.lock:
            msgs = [email.message_from_bytes(r, policy=email.policy.default) for r in self.raw]
        return [m for m in msgs if address.lower() in str(m["To"]).lower()]  # type: ignore[misc]

    def body_of(self, to: str) -> str:
        from vocalborn.notify import mailbox

        kept = self.kept(to)
        assert len(kept) == 1, [k.subject for k in kept]
        found = mailbox.show(self.folder, kept[0].id)
        assert found is not None
        return found[1]


def link_token(body: str, fragment: str) -> str:
    m = re.search(rf"#{fragment}=([A-Za-z0-9_-]+)", body)
    assert m, body
    return m.group(1)


def consumer_process(
    tmp_path: Path, env: dict[str, str], nats_url: str, smtp_port: int, **extra: str
) -> ServiceProcess:
    full = {
        **env,
        "NATS_URL": nats_url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "NOTIFY_POLL_SECONDS": "0.2",
        "CONSUMER_ACK_WAIT_SECONDS": "3",
        "NOTIFY_SEND_LEASE_SECONDS": "3",
        **extra,
    }
    return ServiceProcess("consumer", ["consume", "notifications"], tmp_path, full).start()


def wait_mail(server: MailServer, to: str, n: int = 1, timeout: float = 30) -> list[Any]:
    return list(wait_until(lambda: len(server.kept(to)) >= n and server.kept(to), timeout, what=f"{n} mail to {to}"))


__all__ = ["MailServer", "asyncio", "consumer_process", "free_port", "link_token", "wait_mail"]
