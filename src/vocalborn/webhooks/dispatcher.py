"""The webhook dispatcher: sends the delivery rows webhooks/delivery.py recorded and claims, in
each `vocalborn consume webhooks` process beside the consumer (docs/EVENTS.md, "Webhooks").

A learner's rows go in stream order, and only those at or below the ``webhooks`` consumer's ack
floor: after a consumer crash the dead process's unacknowledged messages are redelivered only
after the ack wait, when newer ones were already recorded; below the floor every earlier message
is recorded, so nothing of a learner can still slip in before what is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from vocalborn.events.catalogue import CATALOGUE
from vocalborn.events.consumer import ConsumerSpec, register
from vocalborn.kit.nats import reconnecting
from vocalborn.webhooks import signing, targets
from vocalborn.webhooks.delivery import Due, Outcome, claim, ingest, record, release

if TYPE_CHECKING:
    from vocalborn.config import Settings

log = logging.getLogger(__name__)

CONSUMER_NAME = "webhooks"  # the durable consumer that records the deliveries


async def ack_floor(js: Any, stream: str, durable: str) -> int:
    """The stream sequence up to which the durable consumer has every message acknowledged
    (handled, or terminated as a dead letter); 0 while the consumer does not exist."""
    from nats.js.errors import NotFoundError

    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        return 0
    floor = getattr(info, "ack_floor", None)
    return int(getattr(floor, "stream_seq", 0) or 0)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:1000]


async def send(client: Any, due: Due, allowed: targets.Allowed) -> Outcome:
    """One attempt: check the target again, connect to the checked address, no redirects."""
    import httpx

    def refused(text: str, code: int | None = None) -> Outcome:
        return Outcome(due.seq, due.endpoint_id, False, code, text)

    try:
        target = await asyncio.to_thread(targets.check, due.url, allowed)
    except targets.UnsafeTarget as exc:
        return refused(f"refused: {exc}")
    body = due.body.encode()
    parts = httpx.URL(due.url)
    address = target.addresses[0]
    host_header = parts.netloc.decode()
    pinned = parts.copy_with(host=address)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    hdrs = {**signing.headers(due.secret, str(due.event_id), body), "host": host_header}
    hdrs["user-agent"] = "VocalBorn-Webhooks/1"
    try:
        resp = await client.post(pinned, content=body, headers=hdrs, extensions=extensions)
    except Exception as exc:
        return refused(_error(exc))
    if 200 <= resp.status_code < 300:
        return Outcome(due.seq, due.endpoint_id, True, resp.status_code, None)
    what = "a redirect (not followed)" if 300 <= resp.status_code < 400 else "a non-2xx answer"
    return refused(f"HTTP {resp.status_code}: {what}", resp.status_code)


# How long the dispatcher trusts the ack floor it read before asking again.
FLOOR_TTL_SECONDS = 0.1


class Dispatcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.allowed = targets.Allowed.parse(settings.webhook_allowed_hosts)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhooks-db")
        self.sent = 0
        self._nc: Any = None
        self._floor = 0  # nothing from the stream goes before the first reading
        self._floor_read_at = -1.0

    async def floor(self) -> int | None:
        """The webhooks consumer's ack floor (None without NATS: deliveries recorded outside the
        stream are sent by arrival). Kept at its last reading while NATS cannot be asked."""
        if not self.settings.nats_url:
            return None
        if time.monotonic() - self._floor_read_at < FLOOR_TTL_SECONDS:
            return self._floor
        try:
            if self._nc is None or self._nc.is_closed:
                self._nc = await reconnecting(self.settings.nats_url, "vocalborn-webhooks-dispatcher")
            js = self._nc.jetstream(timeout=2)
            self._floor = await ack_floor(js, self.settings.events_stream, CONSUMER_NAME)
            self._floor_read_at = time.monotonic()
        except Exception as exc:
            log.debug("webhook dispatcher: the ack floor could not be read: %s", _error(exc))
        return self._floor

    async def _db(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _line(self, client: Any, line: list[Due]) -> tuple[list[Outcome], list[int]]:
        """Send a line in order; stop at the first failure (the rest: not attempted)."""
        done: list[Outcome] = []
        for n, due in enumerate(line):
            outcome = await send(client, due, self.allowed)
            await self._db(record, self.settings, [outcome])  # at once: a crash repeats at most this one
            done.append(outcome)
            if not outcome.ok:
                return done, [d.seq for d in line[n + 1 :]]
        return done, []

    async def step(self, client: Any) -> int:
        floor = await self.floor()
        lines = await self._db(claim, self.settings, self.settings.webhook_batch_size, floor)
        if not lines:
            return 0
        results = await asyncio.gather(*(self._line(client, line) for line in lines))
        outcomes = [o for done, _ in results for o in done]
        await self._db(release, [s for _, rest in results for s in rest])
        self.sent += len(outcomes)
        return len(outcomes)

    async def run(self, stop: asyncio.Event) -> None:
        import httpx

        timeout = httpx.Timeout(self.settings.webhook_timeout_seconds)
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
                while not stop.is_set():
                    try:
                        done = await self.step(client)
                    except Exception as exc:  # the database away: wait and go on
                        log.warning("webhook dispatcher: %s; retrying", _error(exc))
                        done = 0
                    if done == 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), self.settings.webhook_poll_interval)
        finally:
            self._pool.shutdown(wait=False)
            if self._nc is not None:
                with contextlib.suppress(Exception):
                    await self._nc.close()


async def run_dispatcher(settings: Settings, stop: asyncio.Event) -> None:
    """The ``webhooks`` consumer's background work (runs in each of its processes)."""
    await Dispatcher(settings).run(stop)


def _register() -> None:

    register(
        ConsumerSpec(
            name=CONSUMER_NAME,
            event_types=tuple(CATALOGUE),
            handler=ingest,
            description="signed webhook deliveries to the endpoints admins registered",
            background=run_dispatcher,
        )
    )


_register()
