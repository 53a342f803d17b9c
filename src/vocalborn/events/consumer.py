"""The consumers: durable JetStream pull consumers on the stream ``VOCALBORN`` (docs/EVENTS.md,
"Consumers").

A consumer is a name (the durable consumer's name, shared by every process that runs it: they
compete for its messages), the subjects it wants and a handler. :class:`ConsumerRunner` fetches
batches and calls the handler once per message, in a thread (handlers use the database):

* **Ack after the effect.** The message is acknowledged only once the handler returned, that is
  once what it did is committed. A process that dies before the ack gets the message redelivered
  (after ``CONSUMER_ACK_WAIT_SECONDS``): delivery is at least once, and handlers make their
  effects idempotent (a unique key per event id; see notify/).
* **Bounded redeliveries.** A handler that raises has its message redelivered later (a negative
  ack with a growing delay). On delivery ``CONSUMER_MAX_DELIVER`` the failure is final: the
  message becomes a dead letter. A message delivered more than ``CONSUMER_MAX_DELIVER`` times
  without an ack (the process died on it each time) becomes one without running the handler.
* **Dead letters** are rows of ``event_dead_letters`` (consumer, event id, subject, body, error,
  attempts), also announced on the core NATS subject ``vocalborn.dead.<consumer>``; an admin lists
  them and replays one (``/api/v1/admin/events/dead-letters``), which runs the handler again.
* **Infrastructure failures are not the message's fault.** While the database is unavailable the
  runner retries the same message in place (telling JetStream it is still in progress), so an
  outage never uses up a message's deliveries. When NATS goes away the runner reconnects and
  binds to its durable consumer again; JetStream kept its position.
* **Graceful stop.** On stop the message in hand is finished and acknowledged; the rest of the
  batch is handed back at once (negative ack without delay) for another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.events.catalogue import SUBJECT_PREFIX
from vocalborn.events.models import EventDeadLetter
from vocalborn.events.relay import ensure_stream
from vocalborn.kit.nats import reconnecting
from vocalborn.sqltypes import utcnow

if TYPE_CHECKING:
    from vocalborn.config import Settings

log = logging.getLogger(__name__)

DEAD_SUBJECT_PREFIX = "vocalborn.dead."
# Modules whose import registers consumers (register()); `vocalborn consume` and `up` load them.
CONSUMER_MODULES: list[str] = [
    "vocalborn.notify.consumer",
    "vocalborn.webhooks.dispatcher",
    "vocalborn.activity.projection",
]


@dataclass(frozen=True)
class Event:
    """One delivered message: the body's fields, the NATS subject, and which delivery this is."""

    id: str
    type: str
    schema_version: int
    occurred_at: str
    subject: dict[str, str]
    nats_subject: str
    attempt: int = 1
    body: bytes = b""
    stream_seq: int | None = None  # the message's sequence in the stream (None: not from JetStream)

    @classmethod
    def parse(cls, data: bytes, nats_subject: str, attempt: int = 1, stream_seq: int | None = None) -> Event:
        doc = json.loads(data)
        return cls(
            id=str(uuid.UUID(str(doc["id"]))),
            type=str(doc["type"]),
            schema_version=int(doc["schema_version"]),
            occurred_at=str(doc["occurred_at"]),
            subject={str(k): str(v) for k, v in dict(doc["subject"]).items()},
            nats_subject=nats_subject,
            attempt=attempt,
            body=data,
            stream_seq=stream_seq,
        )

    def ids(self, name: str) -> uuid.UUID:
        return uuid.UUID(self.subject[name])


Handler = Callable[[Event], None]


@dataclass(frozen=True)
class ConsumerSpec:
    name: str  # the durable consumer's name; letters, digits, - and _
    event_types: tuple[str, ...]  # catalogue names; the filter subjects
    handler: Handler
    description: str = ""
    # Work of the consumer's own beside the messages (a sender of what the handler recorded, say):
    # run in every `vocalborn consume` process that runs this consumer, until the stop event.
    background: Callable[[Settings, asyncio.Event], Awaitable[None]] | None = None

    @property
    def filter_subjects(self) -> list[str]:
        return [SUBJECT_PREFIX + t for t in self.event_types]


CONSUMERS: dict[str, ConsumerSpec] = {}


def register(spec: ConsumerSpec) -> ConsumerSpec:
    CONSUMERS[spec.name] = spec
    return spec


def load_consumers() -> dict[str, ConsumerSpec]:
    import importlib

    for module in CONSUMER_MODULES:
        importlib.import_module(module)
    return CONSUMERS


class Unavailable(Exception):
    """Raised by a handler for a failure that is not the message's fault (a service it needs is
    away): the message is retried in place, without using up a delivery."""


def _infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, Unavailable):
        return True
    if isinstance(exc, IntegrityError):
        return False
    return isinstance(exc, OperationalError | DBAPIError) and (
        isinstance(exc, OperationalError) or getattr(exc, "connection_invalidated", False)
    )


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


# ---- dead letters (database side, sync) ----
def record_dead_letter(consumer: str, event: Event, error: str, attempts: int) -> uuid.UUID:
    """Insert (or refresh) the consumer's dead letter for the event; its id."""
    from sqlmodel import select

    event_id = uuid.UUID(event.id)
    with open_session() as db:
        found = db.exec(
            select(EventDeadLetter).where(EventDeadLetter.consumer == consumer, EventDeadLetter.event_id == event_id)
        ).first()
        if found is None:
            found = EventDeadLetter(
                consumer=consumer,
                event_id=event_id,
                event_type=event.type[:40],
                subject=event.nats_subject[:200],
                body=event.body.decode("utf-8", "replace"),
                error=error,
                attempts=attempts,
            )
        else:  # dead again (after a replay, or a lost ack): the latest failure counts
            found.error, found.attempts, found.replayed_at = error, attempts, None
        db.add(found)
        try:
            db.commit()
        except IntegrityError:  # a competing worker recorded it first
            db.rollback()
            return record_dead_letter(consumer, event, error, attempts)
        return found.id


def replay_dead_letter(letter_id: uuid.UUID) -> tuple[bool, str | None]:
    """Run the consumer's handler on a dead letter again (in this process). (done, error)."""

    with open_session() as db:
        letter = db.get(EventDeadLetter, letter_id)
        if letter is None:
            raise KeyError(letter_id)
        consumer, body, subject, attempts = letter.consumer, letter.body, letter.subject, letter.attempts
    spec = load_consumers().get(consumer)
    if spec is None:
        raise LookupError(consumer)
    error: str | None = None
    try:
        spec.handler(Event.parse(body.encode(), subject, attempts + 1))
    except Exception as exc:
        log.warning("replaying dead letter %s of %s failed: %s", letter_id, consumer, _error_text(exc))
        error = _error_text(exc)
    with open_session() as db:
        letter = db.get(EventDeadLetter, letter_id)
        if letter is not None:
            if error is None:
                letter.replayed_at, letter.replay_error = utcnow(), None
            else:
                letter.replay_error = error
            db.add(letter)
            db.commit()
    return error is None, error


# ---- the runner ----
def heartbeat_path(name: str) -> Any:
    """Touched by a runner after each fetch round while bound to NATS;
    ``python -m vocalborn.healthcheck consumers``."""

    return get_settings().data_dir / f"consumer-{name}.alive"


@dataclass
class Counters:
    handled: int = 0
    failed: int = 0  # handler failures that were negatively acknowledged
    dead: int = 0
    redelivered: int = 0  # messages seen on a second or later delivery
    reconnects: int = 0
    seen_ids: list[str] = field(default_factory=list)  # kept only when asked (tests)


def consumer_config(spec: ConsumerSpec, settings: Settings) -> Any:
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    return ConsumerConfig(
        durable_name=spec.name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.consumer_ack_wait_seconds,
        # Unbounded at JetStream: the runner itself dead-letters (JetStream would only drop it).
        max_deliver=-1,
        max_ack_pending=max(1000, settings.consumer_batch_size * 4),
        filter_subjects=spec.filter_subjects,
    )


async def ensure_consumer(js: Any, spec: ConsumerSpec, settings: Settings) -> None:
    from nats.js.errors import NotFoundError

    config = consumer_config(spec, settings)
    try:
        await js.consumer_info(settings.events_stream, spec.name)
    except NotFoundError:
        await js.add_consumer(settings.events_stream, config)
        log.info("created the durable consumer %s", spec.name)
        return
    await js.add_consumer(settings.events_stream, config)  # an update of the same durable


class ConsumerRunner:
    def __init__(self, spec: ConsumerSpec, settings: Settings, nats_url: str, keep_ids: bool = False) -> None:
        self.spec = spec
        self.settings = settings
        self.nats_url = nats_url
        self.batch = settings.consumer_batch_size
        self.max_deliver = settings.consumer_max_deliver
        self.counters = Counters()
        self.keep_ids = keep_ids
        self.nc: Any = None
        self.ready = asyncio.Event()  # bound to the durable consumer (tests wait for it)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"consumer-{spec.name}")
        self._waiting: list[Any] = []  # the fetched batch's messages after the one in hand
        self._next_beat = 0.0

    def _beat(self) -> None:
        import time

        if time.monotonic() >= self._next_beat:
            self._next_beat = time.monotonic() + 5
            try:
                path = heartbeat_path(self.spec.name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            except OSError as exc:
                log.debug("could not touch the consumer heartbeat: %s", exc)

    async def _connect(self) -> Any:

        self.nc = await reconnecting(self.nats_url, f"vocalborn-consumer-{self.spec.name}")
        js = self.nc.jetstream(timeout=5)
        await ensure_stream(js, self.settings)
        await ensure_consumer(js, self.spec, self.settings)
        sub = await js.pull_subscribe_bind(durable=self.spec.name, stream=self.settings.events_stream)
        self.ready.set()
        log.info("consumer %s bound to %s", self.spec.name, self.nats_url)
        return sub

    async def _close(self) -> None:
        nc, self.nc = self.nc, None
        self.ready.clear()
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _handle(self, msg: Any, stop: asyncio.Event) -> None:
        attempt = int(getattr(msg.metadata, "num_delivered", 1) or 1)
        if attempt > 1:
            self.counters.redelivered += 1
        try:
            event = Event.parse(msg.data, msg.subject, attempt, msg.metadata.sequence.stream)
        except (ValueError, KeyError, TypeError) as exc:
            # Not a message of ours: nothing could ever handle it.
            log.warning("consumer %s: a malformed message on %s (%s); terminated", self.spec.name, msg.subject, exc)
            await msg.term()
            return
        if attempt > self.max_deliver:
            # Delivered again and again without an ack: the process handling it died each time.
            why = f"delivered {attempt} times without an acknowledgement (the consumer stopped on it each time)"
            await self._dead(msg, event, why, attempt, stop)
            return
        delay = 0.2
        while True:
            try:
                await self._call(self.spec.handler, event)
                break
            except Exception as exc:
                if _infrastructure(exc) and not stop.is_set():
                    log.warning("consumer %s: %s; retrying event %s", self.spec.name, _error_text(exc), event.id)
                    # This message and the rest of the batch stay ours: told more often than the
                    # ack wait, JetStream redelivers none of them meanwhile.
                    for held in (msg, *self._waiting):
                        with contextlib.suppress(Exception):
                            await held.in_progress()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    delay = min(delay * 2, 5.0, self.settings.consumer_ack_wait_seconds / 3)
                    continue
                if _infrastructure(exc):  # stopping: another process takes it later
                    await msg.nak()
                    return
                if attempt >= self.max_deliver:
                    await self._dead(msg, event, _error_text(exc), attempt, stop)
                    return
                self.counters.failed += 1
                backoff = self.settings.consumer_retry_delay_seconds * 2 ** (attempt - 1)
                log.warning(
                    "consumer %s: event %s failed on delivery %d (%s); again in %.1f s",
                    self.spec.name,
                    event.id,
                    attempt,
                    _error_text(exc),
                    backoff,
                )
                await msg.nak(delay=backoff)
                return
        await msg.ack()
        self.counters.handled += 1
        if self.keep_ids:
            self.counters.seen_ids.append(event.id)

    async def _dead(self, msg: Any, event: Event, error: str, attempt: int, stop: asyncio.Event) -> None:
        delay = 0.2
        while True:
            try:
                letter = await self._call(record_dead_letter, self.spec.name, event, error, attempt)
                break
            except Exception as exc:
                if stop.is_set():
                    await msg.nak()
                    return
                log.warning("consumer %s: cannot record a dead letter (%s); retrying", self.spec.name, exc)
                for held in (msg, *self._waiting):
                    with contextlib.suppress(Exception):
                        await held.in_progress()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0, self.settings.consumer_ack_wait_seconds / 3)
        log.error(
            "consumer %s: event %s is a dead letter after %d deliveries: %s", self.spec.name, event.id, attempt, error
        )
        with contextlib.suppress(Exception):
            note = {"dead_letter_id": str(letter), "consumer": self.spec.name, "event_id": event.id, "error": error}
            await self.nc.publish(DEAD_SUBJECT_PREFIX + self.spec.name, json.dumps(note).encode())
        await msg.term()  # never again from JetStream; the dead letter is the record
        self.counters.dead += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: fetch, handle, ack; reconnect after any NATS failure."""
        from nats.errors import TimeoutError as NatsTimeout

        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    sub = await self._connect()
                    backoff = 0.2
                    while not stop.is_set():
                        self._beat()
                        try:
                            msgs = await sub.fetch(self.batch, timeout=1.0)
                        except (NatsTimeout, TimeoutError):
                            if self.nc is None or not self.nc.is_connected:
                                raise ConnectionError("disconnected from NATS") from None
                            continue
                        for i, msg in enumerate(msgs):
                            if stop.is_set():
                                for rest in msgs[i:]:  # handed back for another process
                                    with contextlib.suppress(Exception):
                                        await rest.nak()
                                break
                            self._waiting = msgs[i + 1 :]
                            await self._handle(msg, stop)
                        self._waiting = []
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if stop.is_set():
                        break
                    log.warning(
                        "consumer %s: NATS failed (%s: %s); reconnecting", self.spec.name, type(exc).__name__, exc
                    )
                    self.counters.reconnects += 1
                    await self._close()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            await self._close()
            self._pool.shutdown(wait=True)


async def run_consumers(names: list[str], settings: Settings, nats_url: str, stop: asyncio.Event) -> None:
    specs = load_consumers()
    runners = [ConsumerRunner(specs[n], settings, nats_url) for n in names]
    extra = [bg(settings, stop) for n in names if (bg := specs[n].background) is not None]
    await asyncio.gather(*(r.run(stop) for r in runners), *extra)


def run_forever(names: list[str], settings: Settings, nats_url: str) -> None:
    """The `vocalborn consume` process: until SIGTERM or SIGINT."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_consumers(names, settings, nats_url, stop)

    asyncio.run(main())
