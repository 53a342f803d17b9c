"""The retry budget of each error class, and the circuit breaker shared through real Redis."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.services import ServicesUnderTest


def test_each_error_class_has_its_budget_and_the_plans_defaults() -> None:
    from vocalborn.analysis.types import (
        AnalysisInputError,
        CircuitOpenError,
        RemoteTimeoutError,
        RemoteUnreachableError,
        TransientAnalysisError,
    )
    from vocalborn.config import Settings
    from vocalborn.outage import policy

    assert policy.classify(RemoteUnreachableError("x")) == "network"
    assert policy.classify(CircuitOpenError("x")) == "network"
    assert policy.classify(RemoteTimeoutError("x")) == "timeout"
    assert policy.classify(TransientAnalysisError("remote analysis failed (500)")) == "service"
    assert policy.classify(AnalysisInputError("x")) == "input"
    assert policy.classify(OSError("disk")) == "internal"

    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    network = policy.budget_for("network", defaults)
    timeout = policy.budget_for("timeout", defaults)
    assert (network.retries, network.delay) == (5, 30.0)
    assert (timeout.retries, timeout.delay) == (2, 60.0)
    assert policy.budget_for("input", defaults).retries == 0
    assert policy.budget_for("internal", defaults).retries is None  # the task's own max_retries
    # with jitter, never shorter than the delay: 5 network retries outlast a 2-minute outage
    waits = [network.wait_seconds(1) for _ in range(300)]
    assert all(30.0 <= w <= 36.0 for w in waits) and max(waits) - min(waits) > 1
    assert sum(min(waits) for _ in range(5)) >= 120


def test_budgets_follow_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalborn.config import get_settings
    from vocalborn.outage import policy

    monkeypatch.setenv("AI_RETRY_NETWORK_MAX", "7")
    monkeypatch.setenv("AI_RETRY_NETWORK_DELAY", "0.5")
    monkeypatch.setenv("AI_RETRY_JITTER", "0")
    get_settings.cache_clear()
    try:
        budget = policy.budget_for("network")
        assert budget.retries == 7 and budget.wait_seconds(3) == 0.5
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


@pytest.mark.parametrize(
    ("message", "error_class"),
    [
        ("gave up after 5 retries: remote analysis unreachable: [Errno 111] Connection refused", "network"),
        ("gave up after 5 retries: remote analysis circuit is open: too many recent failures", "network"),
        ("gave up after 2 retries: remote analysis timed out: read timeout", "timeout"),
        ("gave up after 3 retries: remote analysis failed (500): boom", "service"),
        ("gave up after 3 retries: the database was unavailable for a moment", "internal"),
        ("the analysis took longer than 300 s", "time_limit"),
        ("the practice recording is missing from storage", "input"),
        (None, "input"),
    ],
)
def test_stored_failure_messages_are_classified(message: str | None, error_class: str) -> None:
    from vocalborn.outage.policy import classify_message

    assert classify_message(message) == error_class


@pytest.fixture
def client(services: ServicesUnderTest) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(services.redis_url)
    yield c
    c.close()


def test_the_shared_circuit_opens_for_every_process_and_closes_on_success(client: redis.Redis) -> None:
    from vocalborn.outage.circuit import SharedCircuit

    prefix = f"vbtest-circuit-{uuid.uuid4().hex[:8]}:"
    # two "processes": separate objects, one Redis
    a = SharedCircuit(lambda: client, prefix, threshold=3, reset_seconds=0.6)
    b = SharedCircuit(lambda: client, prefix, threshold=3, reset_seconds=0.6)
    try:
        a.record(False)
        b.record(False)
        assert not a.is_open() and not b.is_open()
        b.record(False)  # the third consecutive failure, wherever it happened
        assert a.is_open() and b.is_open()
        assert a.state()["open"] and a.state()["consecutive_failures"] == 3
        time.sleep(0.7)  # half-open: calls go through
        assert not a.is_open()
        a.record(False)  # the trial failed: open again at once
        assert b.is_open()
        time.sleep(0.7)
        b.record(True)  # the trial succeeded: closed, the count forgotten
        assert not a.is_open() and a.state()["consecutive_failures"] == 0
        a.record(False)
        assert not b.is_open()
    finally:
        a.reset()


def test_without_redis_each_process_keeps_its_own_circuit() -> None:
    from vocalborn.outage.circuit import SharedCircuit

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    circuit = SharedCircuit(lambda: dead, "x:", threshold=2, reset_seconds=30)
    circuit.record(False)
    assert not circuit.is_open()
    circuit.record(False)
    assert circuit.is_open()
