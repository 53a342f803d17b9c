"""What the API's scrape reads from the servers themselves (monitoring/api.py's ScrapeCollector):
the messages waiting in the broker's queues and the JetStream stream's and consumers' state."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from vocalborn.celery_app import celery_app
from vocalborn.redis_connect import client as redis_client

_broker_clients: dict[str, Any] = {}
_broker_lock = threading.Lock()


def queue_sizes(broker_url: str, queues: tuple[str, ...]) -> dict[str, int]:
    """Messages ready in each queue. Redis: LLEN of the list; AMQP: a passive queue declare."""
    if broker_url.startswith(("redis://", "rediss://", "unix://")):
        with _broker_lock:
            client = _broker_clients.get(broker_url)
            if client is None:
                client = redis_client(broker_url, socket_timeout=3, socket_connect_timeout=3)
                _broker_clients[broker_url] = client
        pipe = client.pipeline(transaction=False)
        for name in queues:
            pipe.llen(name)
        return {name: int(n) for name, n in zip(queues, pipe.execute(), strict=True)}
    sizes: dict[str, int] = {}
    with celery_app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=3)
        channel = conn.default_channel
        for name in queues:
            with contextlib.suppress(Exception):  # a queue not declared yet holds nothing
                sizes[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
    return sizes


def jetstream_state(
    nats_url: str, stream: str, timeout: float = 2.0
) -> tuple[tuple[int, int] | None, dict[str, tuple[int, int, int]]]:
    """(messages, bytes) of the stream (None: no stream yet) and, per durable consumer,
    (pending, ack pending, redelivered); one short connection per scrape."""

    async def read() -> tuple[tuple[int, int] | None, dict[str, tuple[int, int, int]]]:
        import nats  # the NATS client: for a scrape with NATS_URL set only
        from nats.js.errors import NotFoundError

        nc = await nats.connect(nats_url, connect_timeout=timeout, allow_reconnect=False, max_reconnect_attempts=0)
        try:
            js = nc.jetstream(timeout=timeout)
            try:
                info = await js.stream_info(stream)
            except NotFoundError:
                return None, {}
            out = {}
            for ci in await js.consumers_info(stream):
                if ci.config.durable_name:
                    out[ci.name] = (
                        int(ci.num_pending or 0),
                        int(ci.num_ack_pending or 0),
                        int(ci.num_redelivered or 0),
                    )
            return (int(info.state.messages), int(info.state.bytes)), out
        finally:
            await nc.close()

    return asyncio.run(asyncio.wait_for(read(), timeout * 3))
