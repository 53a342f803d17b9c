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


class WebhooksThread:
    """The ``webhooks`` consumer (events/consumer.py) and its dispatcher, as `vocalborn consume
    webhooks` runs them, on one loop in a thread. ``nats_url`` None: the dispatcher alone."""

    def __init__(self, nats_url: str | None, **overrides: Any) -> None:
        from vocalborn.config import get_settings

        self.settings = get_settings().model_copy(update={"nats_url": nats_url, **overrides})
        self.nats_url = nats_url
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.dispatcher: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        from vocalborn.events.consumer import ConsumerRunner, load_consumers
        from vocalborn.webhooks.dispatcher import Dispatcher

        async def main() -> None:
            self.stop_event = asyncio.Event()
            self.dispatcher = Dispatcher(self.settings)
            jobs = [self.dispatcher.run(self.stop_event)]
            if self.nats_url is not None:
                spec = load_consumers()["webhooks"]
                jobs.append(ConsumerRunner(spec, self.settings, self.nats_url).run(self.stop_event))
            await asyncio.gather(*jobs)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:
            self.error = exc

    def start(self) -> WebhooksThread:
        self.thread.start()
        return self

    def stop(self) -> None:
        deadline = time.monotonic() + 5
        while self.stop_event is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(20)
        assert not self.thread.is_alive(), "the webhooks consumer did not stop"
        assert self.error is None, self.error
