"""The webhook consumer's two halves (docs/EVENTS.md, "Webhooks").

* :func:`ingest` is the handler of the durable consumer ``webhooks`` (events/consumer.py): for an
  event it adds one delivery row per enabled endpoint that wants its type, in one transaction.
  The row is unique per endpoint and event id, so a redelivered message adds nothing: each event
  reaches each endpoint's log once, also when the consumer dies between the commit and the ack.
* The dispatcher (webhooks/dispatcher.py) sends the pending rows this module claims. A row is attempted only when no earlier pending row
  of the same endpoint and learner exists (a failing earlier delivery holds the later ones), so a
  learner's events reach an endpoint in stream order (and, fed from JetStream, only up to the consumer's ack floor). Rows are claimed
  with a lease (``next_attempt_at`` moved forward, compare-and-set), so several dispatchers can
  run. A failed attempt is retried after ``base * 2**(n-1)`` seconds (capped, +-25 % jitter)
  until ``WEBHOOK_GIVE_UP_HOURS`` after its first attempt (then it is dead and the learner's next
  row may go); an endpoint failing ``WEBHOOK_DISABLE_AFTER_FAILURES`` attempts in a row over at
  least ``WEBHOOK_DISABLE_AFTER_HOURS`` is disabled.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from vocalborn.config import get_settings
from vocalborn.db import open_session
from vocalborn.events.catalogue import CATALOGUE
from vocalborn.sqltypes import utcnow
from vocalborn.webhooks.models import WebhookDelivery, WebhookEndpoint

if TYPE_CHECKING:
    from vocalborn.config import Settings
    from vocalborn.events.consumer import Event

log = logging.getLogger(__name__)

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def ordering_key(event: Event) -> str:
    kind = CATALOGUE.get(event.type)
    if kind is not None and kind.ordering_key in event.subject:
        return event.subject[kind.ordering_key]
    return event.id


def ingest(event: Event) -> None:
    """The ``webhooks`` consumer's handler: the event's delivery rows, once per endpoint."""

    give_up = timedelta(hours=get_settings().webhook_give_up_hours)
    event_id = uuid.UUID(event.id)
    for _ in range(3):
        with open_session() as db:
            wanted = [
                e.id
                for e in db.exec(select(WebhookEndpoint).where(col(WebhookEndpoint.enabled).is_(True)))
                if event.type in (e.event_types or [])
            ]
            if not wanted:
                return
            have = set(db.exec(select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_id == event_id)).all())
            now = utcnow()
            for endpoint_id in wanted:
                if endpoint_id in have:
                    continue
                db.add(
                    WebhookDelivery(
                        endpoint_id=endpoint_id,
                        event_id=event_id,
                        event_type=event.type,
                        ordering_key=ordering_key(event),
                        stream_seq=event.stream_seq,
                        body=event.body.decode(),
                        next_attempt_at=now,
                        give_up_at=now + give_up,
                        created_at=now,
                    )
                )
            try:
                db.commit()
                return
            except IntegrityError:  # a competing worker added some of them first: look again
                db.rollback()
    raise RuntimeError(f"could not record the deliveries of event {event.id}")


@dataclass(frozen=True)
class Due:
    seq: int
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    body: str
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    seq: int
    endpoint_id: uuid.UUID
    ok: bool
    status_code: int | None
    error: str | None


def backoff(settings: Settings, attempts: int, rng: random.Random | None = None) -> float:
    """The wait after the ``attempts``-th failed attempt: exponential, capped, with jitter."""
    base = settings.webhook_retry_base_seconds * 2 ** max(0, attempts - 1)
    wait = min(base, settings.webhook_retry_max_seconds)
    return wait * (rng or random).uniform(0.75, 1.25)


# How many rows of one (endpoint, learner) line one round may send, one after the other.
LINE_DEPTH = 20


def _position(row: Any) -> Any:
    """A delivery's place in its line: the stream's order, then arrival (rows without a stream
    sequence, recorded outside JetStream, sort first)."""
    from sqlalchemy import func

    return func.coalesce(col(row.stream_seq), 0)


def claim(settings: Settings, limit: int, floor: int | None = None) -> list[list[Due]]:
    """Lines of due deliveries, each the head of its (endpoint, learner) line and the due rows
    right behind it (at most LINE_DEPTH), leased to this caller; sent in order, a line stops at
    its first failure. ``floor``: the webhooks consumer's ack floor; a delivery of a later stream
    message waits (an earlier message of the same learner may still be on its way, redelivered
    after a consumer crash)."""
    from sqlalchemy import func, or_, true, tuple_

    now = utcnow()
    earlier = aliased(WebhookDelivery)
    head = ~exists().where(
        and_(
            col(earlier.endpoint_id) == col(WebhookDelivery.endpoint_id),
            col(earlier.ordering_key) == col(WebhookDelivery.ordering_key),
            col(earlier.status) == PENDING,
            or_(
                _position(earlier) < _position(WebhookDelivery),
                and_(
                    _position(earlier) == _position(WebhookDelivery),
                    col(earlier.seq) < col(WebhookDelivery.seq),
                ),
            ),
        )
    )
    released = (
        or_(col(WebhookDelivery.stream_seq).is_(None), col(WebhookDelivery.stream_seq) <= floor)
        if floor is not None
        else true()
    )
    heads = (
        select(WebhookDelivery.endpoint_id, WebhookDelivery.ordering_key)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(
            WebhookDelivery.status == PENDING,
            col(WebhookEndpoint.enabled).is_(True),
            col(WebhookDelivery.next_attempt_at) <= now,
            released,
            head,
        )
        .order_by(col(WebhookDelivery.seq))
        .limit(limit)
    )
    # Long enough for a whole line of slow answers; a crashed dispatcher's lines wait this long.
    lease = now + timedelta(seconds=settings.webhook_timeout_seconds * LINE_DEPTH + 5)
    with open_session() as db:
        keys = [(e, k) for e, k in db.exec(heads).all()]
        if not keys:
            return []
        rank = (
            func.row_number()
            .over(
                partition_by=(col(WebhookDelivery.endpoint_id), col(WebhookDelivery.ordering_key)),
                order_by=(_position(WebhookDelivery), col(WebhookDelivery.seq)),
            )
            .label("rank")
        )
        ranked = (
            select(WebhookDelivery.seq, WebhookDelivery.next_attempt_at, rank)
            .where(
                WebhookDelivery.status == PENDING,
                tuple_(col(WebhookDelivery.endpoint_id), col(WebhookDelivery.ordering_key)).in_(keys),
            )
            .subquery()
        )
        rows = db.execute(
            select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret, ranked.c.next_attempt_at)
            .join(ranked, ranked.c.seq == col(WebhookDelivery.seq))
            .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
            .where(ranked.c.rank <= LINE_DEPTH)
            .order_by(_position(WebhookDelivery), col(WebhookDelivery.seq))
        ).all()
        lines: dict[tuple[uuid.UUID, str], list[Due]] = {}
        blocked: set[tuple[uuid.UUID, str]] = set()
        for row, url, secret, due_at in rows:
            key = (row.endpoint_id, row.ordering_key)
            if key in blocked:
                continue
            if due_at > now:  # leased or backing off: this line stops here
                blocked.add(key)
                continue
            if floor is not None and row.stream_seq is not None and row.stream_seq > floor:
                blocked.add(key)  # not yet under the ack floor: an earlier one may still come
                continue
            assert row.seq is not None
            lines.setdefault(key, []).append(Due(row.seq, row.endpoint_id, row.event_id, row.body, url, secret))
        wanted = [d.seq for line in lines.values() for d in line]
        if not wanted:
            return []
        taken = set(
            db.execute(
                update(WebhookDelivery)
                .where(
                    col(WebhookDelivery.seq).in_(wanted),
                    col(WebhookDelivery.status) == PENDING,
                    col(WebhookDelivery.next_attempt_at) <= now,
                )
                .values(next_attempt_at=lease)
                .returning(col(WebhookDelivery.seq))
            ).scalars()
        )
        out: list[list[Due]] = []
        release: list[int] = []
        for line in lines.values():
            # Only an unbroken prefix is sent: a row another dispatcher took first ends the line.
            n = 0
            while n < len(line) and line[n].seq in taken:
                n += 1
            if n:
                out.append(line[:n])
            release += [d.seq for d in line[n:] if d.seq in taken]
        if release:
            db.execute(update(WebhookDelivery).where(col(WebhookDelivery.seq).in_(release)).values(next_attempt_at=now))
        db.commit()
    return out


def release(seqs: list[int]) -> None:
    """Give back leased rows that were not attempted (their line stopped at a failure)."""

    if not seqs:
        return
    with open_session() as db:
        db.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.seq).in_(seqs), col(WebhookDelivery.status) == PENDING)
            .values(next_attempt_at=utcnow())
        )
        db.commit()


def record(settings: Settings, outcomes: list[Outcome]) -> None:
    """Store the attempts' outcomes: delivered, again later, or dead; the endpoints' failure runs."""

    now = utcnow()
    with open_session() as db:
        loaded = {
            d.seq: d
            for d in db.exec(select(WebhookDelivery).where(col(WebhookDelivery.seq).in_([o.seq for o in outcomes])))
        }
        endpoints: dict[uuid.UUID, WebhookEndpoint] = {}
        for o in outcomes:
            d = loaded.get(o.seq)
            endpoint = endpoints.get(o.endpoint_id) or db.get(WebhookEndpoint, o.endpoint_id)
            if d is None or endpoint is None:  # the endpoint was deleted meanwhile
                continue
            endpoints[o.endpoint_id] = endpoint
            d.attempts += 1
            if d.attempts == 1:  # the retry window starts with the first attempt (not while held back)
                d.give_up_at = now + timedelta(hours=settings.webhook_give_up_hours)
            d.last_attempt_at, d.last_status_code, d.last_error = now, o.status_code, o.error
            if o.ok:
                d.status, d.delivered_at = DELIVERED, now
                endpoint.consecutive_failures, endpoint.failing_since = 0, None
            else:
                endpoint.consecutive_failures += 1
                endpoint.failing_since = endpoint.failing_since or now
                if now >= d.give_up_at:
                    d.status = DEAD
                    log.warning("webhook delivery %s to %s is dead: %s", d.seq, endpoint.id, o.error)
                else:
                    d.next_attempt_at = now + timedelta(seconds=backoff(settings, d.attempts))
                failing_for = (now - endpoint.failing_since).total_seconds()
                if (
                    endpoint.enabled
                    and endpoint.consecutive_failures >= settings.webhook_disable_after_failures
                    and failing_for >= settings.webhook_disable_after_hours * 3600
                ):
                    endpoint.enabled = False
                    endpoint.disabled_reason = (
                        f"disabled automatically at {now.isoformat()}: {endpoint.consecutive_failures}"
                        f" attempts in a row failed over {failing_for / 3600:.1f} h (last: {o.error})"
                    )
                    log.warning("webhook endpoint %s disabled: %s", endpoint.id, endpoint.disabled_reason)
            db.add(d)
        for endpoint in endpoints.values():
            endpoint.updated_at = now
            db.add(endpoint)
        db.commit()
