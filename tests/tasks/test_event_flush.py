"""Task events for Flower are flushed in batches (tasks/worker/tasks.py CoalescedEventFlush): the
events of a few milliseconds share one publish instead of one publish each. End to end, Flower
still shows every task (tests/monitoring/test_flower.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

from kombu.asynchronous import Hub

from vocalborn.celery_app import celery_app
from vocalborn.tasks.worker.tasks import EVENT_FLUSH_DELAY, CoalescedEventFlush


def _consumer(hub: Hub | None) -> Any:
    flushes: list[float] = []
    parent = SimpleNamespace(hub=hub, _flush_events=lambda: flushes.append(time.monotonic()), flushes=flushes)
    CoalescedEventFlush(parent)
    return parent


def test_the_worker_consumer_has_the_step() -> None:
    assert CoalescedEventFlush in celery_app.steps["consumer"]


def test_events_of_a_moment_share_one_flush_after_the_delay() -> None:
    hub = Hub()
    try:
        parent = _consumer(hub)
        asked = time.monotonic()
        for _ in range(5):  # five events buffered at once: Celery would flush five times
            parent.on_send_event_buffered()
        deadline = asked + 1
        while not parent.flushes and time.monotonic() < deadline:
            hub.fire_timers(max_delay=0.001)
            time.sleep(0.0005)
        assert len(parent.flushes) == 1
        assert parent.flushes[0] - asked >= EVENT_FLUSH_DELAY * 0.9
        parent.on_send_event_buffered()  # a later event gets a flush of its own
        while len(parent.flushes) < 2 and time.monotonic() < deadline + 1:
            hub.fire_timers(max_delay=0.001)
            time.sleep(0.0005)
        assert len(parent.flushes) == 2
    finally:
        hub.close()


def test_without_an_event_loop_each_event_is_flushed_at_once() -> None:
    parent = _consumer(None)
    parent.on_send_event_buffered()
    parent.on_send_event_buffered()
    assert len(parent.flushes) == 2
