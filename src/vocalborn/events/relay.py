"""The relay: publishes the outbox's unsent rows to the JetStream stream ``VOCALBORN`` and marks
them sent (docs/EVENTS.md).

* At least once: a row is marked sent only after JetStream acknowledged it (stored on disk); a
  relay that dies between the two publishes the row again, with the same ``Nats-Msg-Id`` (the
  event's id), and the stream's duplicate window drops the copy.
* Catch-up: every failure (NATS away, the database away) ends the current batch; the loop waits
  a little and starts again from the unsent rows. Rows acknowledged but not yet marked (the
  database went away in between) are remembered and marked first, before anything is read.
* Order per learner: rows are read in ``seq`` order, and a row is published only once every
  earlier row of its ordering key (the learner) in the batch was acknowledged. Rows of different
  learners go out together (a wave: at most one row per learner in flight).
* One relay at a time: on PostgreSQL the relay holds an advisory lock on its connection; a second
  relay waits as a standby and takes over when the first one's connection ends.
* Woken, not only polling: on PostgreSQL each transaction that adds outbox rows sends a NOTIFY
  with its COMMIT (events/outbox.py) and the relay LISTENs (``OutboxListener``), so a committed
  event goes out at once; the poll (``RELAY_POLL_INTERVAL``) stays as the fallback, for writes
  that send none (the one-statement fast paths) and on SQLite.
* A wave goes out in one socket write (events/publisher.py), its acks gathered together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError, OperationalError

from vocalborn.events.catalogue import SUBJECT_PREFIX
from vocalborn.events.outbox_store import RELAY_LOCK_KEY, OutboxListener, OutboxStore, Row, waves
from vocalborn.events.publisher import WavePublisher
from vocalborn.kit.nats import reconnecting
from vocalborn.sqltypes import utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from vocalborn.config import Settings

log = logging.getLogger(__name__)

# The database side lives in outbox_store.py; these names stay importable from here.
__all__ = ["RELAY_LOCK_KEY", "OutboxStore", "Relay", "Row", "ensure_stream", "run_forever", "stream_config", "waves"]


def stream_config(settings: Settings) -> Any:
    from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

    return StreamConfig(
        name=settings.events_stream,
        subjects=[SUBJECT_PREFIX + ">"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        max_age=settings.events_max_age_seconds,
        max_bytes=settings.events_max_bytes,
        duplicate_window=settings.events_duplicate_window_seconds,
    )


async def ensure_stream(js: Any, settings: Settings) -> None:
    """Create the stream, or bring an existing one to the settings (idempotent)."""
    from nats.js.errors import NotFoundError

    config = stream_config(settings)
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created the JetStream stream %s", config.name)
        return
    await js.update_stream(config)


def heartbeat_path() -> Path:
    """Touched by the relay after each good round; ``python -m vocalborn.healthcheck relay``."""
    from vocalborn.config import get_settings

    return get_settings().data_dir / "relay.alive"


class Relay:
    def __init__(self, settings: Settings, nats_url: str, engine: Engine | None = None) -> None:
        from vocalborn.db import get_engine

        self.settings = settings
        self.nats_url = nats_url
        self.store = OutboxStore(engine or get_engine())
        self.woken = asyncio.Event()  # a NOTIFY came (rows committed) since the last round began
        self.listener = OutboxListener(self.store.engine, self.woken)
        self.batch = max(1, settings.relay_batch_size)
        self.publish_timeout = 5.0
        self.nc: Any = None
        self.js: Any = None
        self.publisher: WavePublisher | None = None
        self.unmarked: list[int] = []  # acknowledged by JetStream, not yet marked in the database
        self.published = 0
        self.duplicates = 0
        self._db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-db")
        self._next_prune = 0.0
        self._standby_logged = False
        self._next_beat = 0.0
        self._stop: asyncio.Event | None = None

    def _beat(self) -> None:
        if time.monotonic() >= self._next_beat:
            self._next_beat = time.monotonic() + 5
            try:
                path = heartbeat_path()
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
            except OSError as exc:
                log.debug("could not touch the relay heartbeat: %s", exc)

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

    async def _connect_nats(self) -> None:
        if self.nc is not None and self.nc.is_connected:
            return
        if self.nc is not None:
            await self._close_nats()
        self.nc = await reconnecting(self.nats_url, "vocalborn-relay")
        self.js = self.nc.jetstream(timeout=self.publish_timeout)
        await ensure_stream(self.js, self.settings)
        self.publisher = WavePublisher(self.nc)
        await self.publisher.start()
        log.info("relay connected to %s", self.nats_url)

    async def _close_nats(self) -> None:
        nc, self.nc, self.js, self.publisher = self.nc, None, None, None
        if nc is not None:
            try:
                await nc.close()
            except Exception:
                log.debug("closing the NATS connection failed", exc_info=True)

    async def _publish(self, rows: list[Row]) -> tuple[list[int], BaseException | None]:
        """Publish in waves; the seqs acknowledged, and the first error (the batch stops there)."""
        acked: list[int] = []
        failed: set[str] = set()
        error: BaseException | None = None
        assert self.publisher is not None
        for wave in waves(rows):
            todo = [r for r in wave if r.ordering_key not in failed]
            try:  # pipelined on the one connection, in order; the acks gathered per wave
                ok, failures, duplicates = await self.publisher.publish_wave(todo, self.publish_timeout)
            except Exception as exc:  # the connection is gone: nothing of this wave counts
                error = exc
                break
            for row in todo:
                if row.seq in ok:
                    acked.append(row.seq)
                else:
                    failed.add(row.ordering_key)
                    error = error or failures.get(row.seq)
            self.duplicates += duplicates
            if error is not None:
                break  # later waves would only be the failed keys' later rows and strangers'
        self.published += len(acked)
        return acked, error

    async def step(self) -> int:
        """One round: mark what waits to be marked, then publish the unsent rows batch by batch
        and mark them. The number of rows published (0: nothing was unsent, or a standby).

        While a batch is being published, the database thread marks the previous one and reads
        the next (the rows after this batch's last ``seq``): a backlog goes out without waiting
        for the database. Batches are still published one after another, so a learner's rows
        keep their order; a failure ends the round (the next one starts again from the first
        unsent row)."""
        # Connected already (the store's connection is kept): no hop to the database thread.
        if self.store.conn is None and not await self._db(self.store.ready):
            if not self._standby_logged:
                log.info("another relay holds the outbox; this one waits as a standby")
                self._standby_logged = True
            await asyncio.sleep(1.0)
            return 0
        self._standby_logged = False
        if self.unmarked:
            await self._db(self.store.mark, list(self.unmarked))
            self.unmarked = []
        await self._maybe_prune()
        rows = await self._db(self.store.fetch, self.batch)
        if not rows:
            return 0
        await self._connect_nats()
        done = 0
        marking: asyncio.Future[Any] | None = None
        try:
            while rows:
                publishing = asyncio.ensure_future(self._publish(rows))
                more = len(rows) == self.batch and not self._stopping()
                reading = self._db(self.store.fetch, self.batch, rows[-1].seq) if more else None
                reading_job = asyncio.ensure_future(reading) if reading is not None else None
                acked, error = await publishing
                # Remembered before anything else can fail: acknowledged rows are marked later
                # (the next round marks them first), never published again by this relay.
                self.unmarked.extend(acked)
                if marking is not None:  # the previous batch's mark (raises if it failed)
                    await marking
                    marking = None
                marking = asyncio.ensure_future(self._mark(acked))
                done += len(acked)
                if error is not None:
                    if reading_job is not None:
                        with contextlib.suppress(Exception):
                            await reading_job
                    raise error
                rows = await reading_job if reading_job is not None else []
                self._beat()
        finally:
            if marking is not None:
                await marking
        return done

    async def _mark(self, seqs: list[int]) -> None:
        await self._db(self.store.mark, seqs)
        marked = set(seqs)
        self.unmarked = [s for s in self.unmarked if s not in marked]

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _maybe_prune(self) -> None:
        days = self.settings.relay_sent_retention_days
        if days <= 0 or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + 60
        gone = await self._db(self.store.prune, utcnow() - timedelta(days=days))
        if gone:
            log.info("deleted %d sent outbox rows older than %d days", gone, days)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: publish, and after any failure wait a little and go on."""
        self._stop = stop
        backoff = 0.1
        idle = self.settings.relay_poll_interval
        try:
            try:  # ready before the first rows come (else they wait for the connection and the stream)
                await self._connect_nats()
            except Exception as exc:  # NATS away: the rounds connect when there is something to send
                log.warning(
                    "relay: NATS is unavailable (%s: %s); retrying when there are events", type(exc).__name__, exc
                )
            while not stop.is_set():
                try:
                    if self.settings.relay_listen:
                        self.listener.ensure()
                    self.woken.clear()  # a NOTIFY from now on means rows this round may not see
                    done = await self.step()
                    self._beat()
                    backoff = 0.1
                    if done == 0:
                        await _nap(stop, self.woken, idle)
                except (OperationalError, DBAPIError) as exc:
                    log.warning("relay: the database is unavailable (%s); retrying", str(exc).splitlines()[0])
                    await self._db(self.store.close)
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, 2.0)
                except Exception as exc:  # NATS away, timeouts, a stream refused: the same remedy
                    log.warning("relay: publishing failed (%s: %s); retrying", type(exc).__name__, exc)
                    if self.nc is not None and not self.nc.is_connected:
                        await self._close_nats()
                    await _wait(stop, backoff)
                    backoff = min(backoff * 2, 2.0)
        finally:
            await self.listener.stop()
            await self._close_nats()
            await self._db(self.store.close)
            self._db_thread.shutdown(wait=False)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _nap(stop: asyncio.Event, woken: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less: until ``stop`` or ``woken`` is set."""
    if stop.is_set() or woken.is_set():
        return
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(woken.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def run_forever(settings: Settings, nats_url: str) -> None:
    """The `vocalborn relay` process: until SIGTERM or SIGINT."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await Relay(settings, nats_url).run(stop)

    asyncio.run(main())
