"""What the webhook tests share: a real HTTP receiver on loopback that records every request
(and can be told to fail), the webhooks consumer with its dispatcher in a thread, and a clean
slate of endpoints."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.events.support import LoopThread


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def doc(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    """ThreadingHTTPServer on 127.0.0.1: answers 204, or ``fail_with`` while it is set."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.lock = threading.Lock()
        self.fail_with: int | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver.fail_with or 204
                with receiver.lock:
                    receiver.requests.append(Received(dict(self.headers.items()), body, status, time.monotonic()))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def accepted_ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.accepted()]


def clear_endpoints() -> None:
    from sqlalchemy import delete

    from vocalborn.db import open_session
    from vocalborn.webhooks.models import WebhookDelivery, WebhookEndpoint

    with open_session() as db:
        db.execute(delete(WebhookDelivery))
        db.execute(delete(WebhookEndpoint))
        db.commit()


class WebhooksThread(LoopThread):
    """The ``webhooks`` consumer (events/consumer.py) and its dispatcher, as `vocalborn consume
    webhooks` runs them, on one loop in a thread. ``nats_url`` None: the dispatcher alone."""

    what = "the webhooks consumer"
    dispatcher: Any = None

    async def main(self, stop: asyncio.Event) -> None:
        from vocalborn.events.consumer import ConsumerRunner, load_consumers
        from vocalborn.webhooks.dispatcher import Dispatcher

        self.dispatcher = Dispatcher(self.settings)
        jobs = [self.dispatcher.run(stop)]
        if self.url is not None:
            spec = load_consumers()["webhooks"]
            jobs.append(ConsumerRunner(spec, self.settings, self.url).run(stop))
        await asyncio.gather(*jobs)
