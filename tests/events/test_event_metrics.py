"""The event metrics of the API's /metrics against a real nats-server and the real database:
outbox lag before and after the relay, the stream's messages and bytes, a durable consumer's
pending count, dead letters, and webhook deliveries failing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.events.support import NatsServer, RelayThread, write_events
from tests.monitoring.conftest import parse_metrics, value
from tests.support import Api, wait_until

pytestmark = pytest.mark.worker


@pytest.fixture
def nats_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsServer]:
    from vocalborn.config import get_settings

    server = NatsServer(tmp_path).start()
    monkeypatch.setenv("NATS_URL", server.url)
    get_settings.cache_clear()
    try:
        yield server
    finally:
        server.stop()
        monkeypatch.undo()
        get_settings.cache_clear()


def _metrics(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = api.client.get("/metrics")
    assert r.status_code == 200
    return parse_metrics(r.text)


def test_outbox_stream_consumer_dead_letter_and_webhook_metrics(api: Api, nats_server: NatsServer) -> None:
    from vocalborn.config import get_settings
    from vocalborn.db import open_session
    from vocalborn.events.consumer import Event, record_dead_letter
    from vocalborn.sqltypes import utcnow
    from vocalborn.webhooks.models import WebhookDelivery, WebhookEndpoint

    before = _metrics(api)
    assert value(before, "vocalborn_dependency_up", dependency="nats") == 1.0
    written = write_events(40, learners=4)
    lagging = _metrics(api)
    assert value(lagging, "vocalborn_outbox_unsent") >= 40
    assert value(lagging, "vocalborn_outbox_oldest_unsent_age_seconds") > 0

    async def make_consumer() -> None:
        import nats
        from nats.js.api import ConsumerConfig

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        from vocalborn.events.relay import ensure_stream

        await ensure_stream(js, get_settings())
        await js.add_consumer(
            "VOCALBORN", ConsumerConfig(durable_name="metrics-probe", filter_subject="vocalborn.events.>")
        )
        await nc.close()

    asyncio.run(make_consumer())
    relay = RelayThread(nats_server.url).start()
    try:
        ids = {e for e, _ in written}
        wait_until(lambda: value(_metrics(api), "vocalborn_outbox_unsent") == 0, 30, what="the relay to catch up")
    finally:
        relay.stop()
    after = _metrics(api)
    assert value(after, "vocalborn_outbox_oldest_unsent_age_seconds") == 0
    assert value(after, "vocalborn_events_stream_messages") >= len(ids)
    assert value(after, "vocalborn_events_stream_bytes") > 0
    assert value(after, "vocalborn_events_consumer_pending", consumer="metrics-probe") >= len(ids)
    assert value(after, "vocalborn_events_consumer_redelivered", consumer="metrics-probe") == 0

    name = f"probe-{uuid.uuid4().hex[:6]}"
    body = f'{{"id":"{uuid.uuid4()}","type":"analysis.started","schema_version":1,"occurred_at":"x","subject":{{}}}}'
    record_dead_letter(name, Event.parse(body.encode(), "vocalborn.events.analysis.started"), "boom", 5)
    endpoint = WebhookEndpoint(
        url="https://93.184.216.34/x", event_types=["analysis.started"], secret="whsec_AA==", enabled=False
    )
    with open_session() as db:
        db.add(endpoint)
        db.flush()
        now = utcnow()
        for attempts in (0, 2):
            db.add(
                WebhookDelivery(
                    endpoint_id=endpoint.id,
                    event_id=uuid.uuid4(),
                    event_type="analysis.started",
                    ordering_key="k",
                    body="{}",
                    attempts=attempts,
                    next_attempt_at=now,
                    give_up_at=now,
                )
            )
        db.commit()
    try:
        got = _metrics(api)
        assert value(got, "vocalborn_event_dead_letters", consumer=name) == 1
        assert value(got, "vocalborn_webhook_deliveries", status="pending") >= 2
        assert value(got, "vocalborn_webhook_deliveries", status="failing") >= 1
        assert value(got, "vocalborn_webhook_endpoints_disabled") >= 1
    finally:
        from sqlalchemy import delete

        with open_session() as db:
            db.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))  # type: ignore[arg-type]
            db.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))  # type: ignore[arg-type]
            db.commit()


def test_nats_away_shows_as_a_dependency_down(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalborn.config import get_settings

    monkeypatch.setenv("NATS_URL", "nats://127.0.0.1:1")
    get_settings.cache_clear()
    try:
        got = _metrics(api)
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert value(got, "vocalborn_dependency_up", dependency="nats") == 0.0
    assert value(got, "vocalborn_dependency_up", dependency="database") == 1.0
