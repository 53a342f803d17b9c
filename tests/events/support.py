"""What the event tests share: a real nats-server from the wheel (per test, in tmp_path, on a
free loopback port; SIGKILL and restart on the same port and data), events written to the
outbox in real commits, and a durable pull consumer that counts what arrived by id."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from tests.support import require_slow_marker


class NatsServer:
    def __init__(self, root: Path) -> None:
        from vocalborn.embedded_nats import EmbeddedNats

        self.server = EmbeddedNats(root)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> NatsServer:
        require_slow_marker("a nats-server")
        self.server.start()
        return self

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        proc = self.server.process
        assert proc is not None and proc.poll() is None
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        self.server.stop()


def write_events(
    n: int, learners: int, *, pause: float = 0.0, per_commit: int = 1, engine: Any = None
) -> list[tuple[str, str]]:
    """``n`` analysis.started events over ``learners`` learners, committed ``per_commit`` at a
    time (retrying a commit the database refused); (event id, learner id) in commit order."""
    from sqlalchemy.exc import OperationalError
    from sqlmodel import Session

    from vocalborn.db import get_engine
    from vocalborn.events import outbox

    keys = [uuid.uuid4() for _ in range(learners)]
    written: list[tuple[str, str]] = []
    i = 0
    while i < n:
        batch = []
        try:
            with Session(engine or get_engine()) as db:
                for j in range(i, min(n, i + per_commit)):
                    learner = keys[j % learners]
                    row = outbox.add(
                        db,
                        "analysis.started",
                        task_id=uuid.uuid4(),
                        learner_id=learner,
                        practice_record_id=uuid.uuid4(),
                    )
                    batch.append((str(row.event_id), str(learner)))
                db.commit()
        except OperationalError:
            time.sleep(0.2)  # the database is away: as a client would, try again
            continue
        written += batch
        i += len(batch)
        if pause:
            time.sleep(pause)
    return written


def settle_outbox() -> int:
    """Mark every unsent outbox row sent: what earlier tests left in the suite's shared database
    (their relay stopped before publishing it) is not this test's to publish. How many."""
    from sqlalchemy import update

    from vocalborn.db import open_session
    from vocalborn.events.models import EventOutbox
    from vocalborn.sqltypes import utcnow

    with open_session() as db:
        n = db.execute(update(EventOutbox).where(EventOutbox.sent_at.is_(None)).values(sent_at=utcnow())).rowcount  # type: ignore[union-attr]
        db.commit()
    return int(n or 0)


@dataclass
class Consumed:
    messages: list[dict[str, Any]] = field(default_factory=list)
    msg_ids: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)

    def ids(self) -> list[str]:
        return [m["id"] for m in self.messages]


def consume(url: str, durable: str, expected: set[str], timeout: float, stream: str = "VOCALBORN") -> Consumed:
    """Pull from a durable consumer (acking each) until every expected id arrived and the stream
    has nothing more for it, or ``timeout``. Every message is kept (duplicates too)."""
    return asyncio.run(_consume(url, durable, expected, timeout, stream))


async def _consume(url: str, durable: str, expected: set[str], timeout: float, stream: str) -> Consumed:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.errors import NotFoundError

    out = Consumed()
    nc = await nats.connect(url, connect_timeout=2)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + timeout
        while True:  # the relay makes the stream when it starts
            try:
                sub = await js.pull_subscribe("vocalborn.events.>", durable=durable, stream=stream)
                break
            except NotFoundError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        quiet_after_all = 0
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(500, timeout=0.5)
            except (NatsTimeout, TimeoutError):
                msgs = []
            for m in msgs:
                out.messages.append(json.loads(m.data))
                out.msg_ids.append((m.headers or {}).get("Nats-Msg-Id", ""))
                out.subjects.append(m.subject)
                await m.ack()
            if expected <= set(out.ids()):
                quiet_after_all += 0 if msgs else 1
                if quiet_after_all >= 2:  # everything came, and a second fetch brought nothing
                    break
        return out
    finally:
        await nc.close()


def check_exactly_once_in_order(written: list[tuple[str, str]], got: Consumed) -> None:
    """0 lost, 0 duplicates (by id), each learner's events in commit order, Nats-Msg-Id = id."""
    ids = got.ids()
    mine = {e for e, _ in written}
    arrived = [i for i in ids if i in mine]
    lost = mine - set(arrived)
    assert not lost, f"{len(lost)} of {len(mine)} events never arrived"
    assert len(arrived) == len(set(arrived)), f"{len(arrived) - len(set(arrived))} duplicates"
    assert len(ids) == len(set(ids)), "a duplicate of another test's event"
    assert got.msg_ids == ids, "Nats-Msg-Id differs from the body's id"
    position = {e: n for n, e in enumerate(arrived)}
    per_learner: dict[str, list[str]] = {}
    for event_id, learner in written:
        per_learner.setdefault(learner, []).append(event_id)
    for learner, events in per_learner.items():
        order = [position[e] for e in events]
        assert order == sorted(order), f"learner {learner}'s events arrived out of order"


class LoopThread:
    """Something of the app that runs on an event loop until a stop event (the relay, a consumer
    runner, the webhook dispatcher), in this process on its own loop in a thread, with the tests'
    settings and ``nats_url``. Subclasses say what runs in :meth:`main`."""

    what = "the loop"

    def __init__(self, url: str | None, **overrides: Any) -> None:
        from vocalborn.config import get_settings

        self.settings = get_settings().model_copy(update={"nats_url": url, **overrides})
        self.url = url
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    async def main(self, stop: asyncio.Event) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        async def outer() -> None:
            self.stop_event = asyncio.Event()
            await self.main(self.stop_event)

        try:
            self.loop.run_until_complete(outer())
        except BaseException as exc:
            self.error = exc

    def start(self) -> Self:
        self.thread.start()
        return self

    def stop(self) -> None:
        deadline = time.monotonic() + 5
        while self.stop_event is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(20)
        assert not self.thread.is_alive(), f"{self.what} did not stop"
        assert self.error is None, self.error


class RelayThread(LoopThread):
    """The relay (events/relay.py)."""

    what = "the relay"
    relay: Any = None

    async def main(self, stop: asyncio.Event) -> None:
        from vocalborn.events.relay import Relay

        assert self.url is not None
        self.relay = Relay(self.settings, self.url)
        await self.relay.run(stop)


class ConsumerThread(LoopThread):
    """A consumer runner (events/consumer.py), keeping the ids it handled."""

    what = "the consumer"
    runner: Any = None

    def __init__(self, url: str, spec: Any, **overrides: Any) -> None:
        self.spec = spec
        super().__init__(url, **overrides)

    async def main(self, stop: asyncio.Event) -> None:
        from vocalborn.events.consumer import ConsumerRunner

        assert self.url is not None
        self.runner = ConsumerRunner(self.spec, self.settings, self.url, keep_ids=True)
        await self.runner.run(stop)
