"""The batched broker_push (tasks/submission/broker_push.py) writes the very message and ``task-sent`` event
that ``celery_app.send_task`` writes, so a worker (and Flower) cannot tell them apart; and a
batch keeps its order in the FIFO queue."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import pytest
import redis

from tests.services import ServicesUnderTest
from vocalborn.config import get_settings
from vocalborn.monitoring import queue_wait as publish_stamp
from vocalborn.monitoring.queue_wait import PUBLISHED_AT_HEADER
from vocalborn.tasks import service

# Differ between any two messages: the transport's own tag, and the event's clock and time.
from vocalborn.tasks.submission import broker_push

_VOLATILE_PROPERTIES = {"delivery_tag"}
_VOLATILE_EVENT = {"clock", "timestamp"}


def _client() -> redis.Redis:
    return redis.Redis.from_url(get_settings().effective_broker_url)


def _pop_all(queue: str) -> list[dict[str, Any]]:
    client = _client()
    raw: list[bytes] = []
    while (item := client.rpop(queue)) is not None:
        raw.append(item)  # type: ignore[arg-type]
    return [json.loads(r) for r in raw]


def _without(d: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def _sent_events(run: Any) -> list[dict[str, Any]]:
    """Publish with ``run`` while subscribed to the task-sent topic; the events received."""
    sub = _client().pubsub()
    sub.subscribe(broker_push.sent_topic())
    try:
        assert sub.get_message(timeout=5) is not None  # the subscription's confirmation
        run()
        got, deadline = [], time.monotonic() + 5
        while time.monotonic() < deadline:
            m = sub.get_message(timeout=0.2)
            if m is None and got:
                break
            if m is not None and m["type"] == "message":
                envelope = json.loads(m["data"])
                got.append({**envelope, "event": json.loads(base64.b64decode(envelope["body"]))})
        return got
    finally:
        sub.close()


@pytest.mark.parametrize("registered", [False, True], ids=["task-unknown-here", "task-registered-here"])
def test_the_message_and_its_sent_event_are_celerys_own(migrated: ServicesUnderTest, registered: bool) -> None:
    """Both as the API publishes (the task not registered in its process: no time limits in the
    message) and as a process that has the task (a worker: the task's limits go in)."""
    if not broker_push.supported():
        pytest.skip("the batched broker_push is for a Redis broker")
    if registered:
        import vocalborn.tasks.worker.tasks  # noqa: F401 - defines the task
        from vocalborn.celery_app import celery_app

        celery_app.finalize(auto=True)
    publish_stamp.connect()  # as the API does: every message carries its publish time
    queue = get_settings().task_queue
    _pop_all(queue)
    ours, celerys = (broker_push.Outgoing(t, t, "req-1") for t in (str(uuid.uuid4()), str(uuid.uuid4())))

    their_events = _sent_events(
        lambda: service.send_celery_message(uuid.UUID(celerys.task_id), celerys.celery_task_id, "req-1")
    )
    [their_message] = _pop_all(queue)
    our_events = _sent_events(lambda: asyncio.run(broker_push.push_messages([ours])))
    [our_message] = _pop_all(queue)

    def same_shape(message: dict[str, Any], item: broker_push.Outgoing) -> dict[str, Any]:
        text = json.dumps(message).replace(item.task_id, "<id>")
        out = json.loads(text)
        out["properties"] = _without(out["properties"], _VOLATILE_PROPERTIES)
        assert abs(out["headers"][PUBLISHED_AT_HEADER] - time.time()) < 60
        out["headers"][PUBLISHED_AT_HEADER] = "<time>"
        out["body"] = json.loads(base64.b64decode(message["body"]).decode().replace(item.task_id, "<id>"))
        return out

    mine, theirs = same_shape(our_message, ours), same_shape(their_message, celerys)
    differing = {k: (v, theirs["headers"].get(k)) for k, v in mine["headers"].items() if v != theirs["headers"].get(k)}
    assert differing == {} and set(mine["headers"]) == set(theirs["headers"])
    assert mine == theirs
    assert len(our_events) == len(their_events) == 1
    for e, item in ((our_events[0], ours), (their_events[0], celerys)):
        assert e["event"]["uuid"] == item.celery_task_id and e["event"]["type"] == "task-sent"

    def event_shape(e: dict[str, Any], item: broker_push.Outgoing) -> dict[str, Any]:
        e = json.loads(json.dumps(e).replace(item.task_id, "<id>"))
        e["properties"] = _without(e["properties"], _VOLATILE_PROPERTIES)
        e["event"] = _without(e["event"], _VOLATILE_EVENT)
        del e["body"]
        return e

    assert event_shape(our_events[0], ours) == event_shape(their_events[0], celerys)


def test_a_batch_is_consumed_in_the_order_it_was_submitted(migrated: ServicesUnderTest) -> None:
    if not broker_push.supported():
        pytest.skip("the batched broker_push is for a Redis broker")
    queue = get_settings().task_queue
    _pop_all(queue)
    items = [broker_push.Outgoing(t, t, None) for t in (str(uuid.uuid4()) for _ in range(5))]
    assert asyncio.run(broker_push.push_messages(items))
    consumed = _pop_all(queue)  # RPOP: the end a worker takes from
    assert [m["headers"]["id"] for m in consumed] == [i.celery_task_id for i in items]


def test_an_unreachable_broker_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:9/0")  # nothing listens on port 9
    get_settings.cache_clear()
    try:
        item = broker_push.Outgoing(str(uuid.uuid4()), str(uuid.uuid4()), None)
        assert asyncio.run(broker_push.push_messages([item])) is False
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize("request_id", [None, "req-1", 'a "quoted" %(id)s \\ ü id'])
def test_the_templates_write_what_json_dumps_of_the_message_writes(request_id: str | None) -> None:
    """The message and event texts come from templates (made once per queue and process): they
    are what ``json.dumps`` of ``task_message`` and ``sent_event`` gives, whatever the request
    id holds (quotes, a percent sign, a backslash, non-ASCII), but for the tag and the times."""
    queue, reply_to = "some-queue", "reply-oid"
    item = broker_push.Outgoing(str(uuid.uuid4()), str(uuid.uuid4()), request_id)
    message_text, event_text = broker_push._frames_for(queue, reply_to).encode(item, 1234.5)
    assert event_text is not None
    message, expected = json.loads(message_text), broker_push.task_message(item, queue, reply_to)
    assert message["headers"][PUBLISHED_AT_HEADER] == 1234.5
    for m in (message, expected):
        m["headers"][PUBLISHED_AT_HEADER] = "<time>"
        uuid.UUID(m["properties"].pop("delivery_tag"))
    assert message == expected
    assert message_text == json.dumps(json.loads(message_text))  # json.dumps's own spacing and escapes
    assert event_text == json.dumps(json.loads(event_text))
    event, expected_event = json.loads(event_text), broker_push.sent_event(item, queue)
    body = base64.b64decode(event["body"]).decode()
    assert body == json.dumps(json.loads(body))
    fields, expected_fields = (json.loads(base64.b64decode(e.pop("body"))) for e in (event, expected_event))
    assert fields["timestamp"] == 1234.5 and isinstance(fields["clock"], int)
    for e in (event, expected_event):
        uuid.UUID(e["properties"].pop("delivery_tag"))
    assert event == expected_event
    assert _without(fields, _VOLATILE_EVENT) == _without(expected_fields, _VOLATILE_EVENT)
