"""The remote engine's circuit breaker, shared by every worker process through Redis.

Why shared: a worker runs CELERY_WORKER_CONCURRENCY pool processes, and a deployment several
workers. With one circuit per process each of them has to fail AI_CIRCUIT_FAILURE_THRESHOLD
times before it stops calling a service that is down (and before the fallback engine takes
over); with the state in Redis the first processes to see the outage open it for all.

State (keys under REDIS_KEY_PREFIX):

- ``ai_circuit:failures``: consecutive transient failures (INCR; deleted by a success; expires
  after a quiet while so that old failures do not add up);
- ``ai_circuit:open``: present while the circuit is open (expires after AI_CIRCUIT_RESET_SECONDS).
  Past it the circuit is half-open: calls go through; the first failure re-opens it at once (the
  failure count is still above the threshold), the first success closes it.

When Redis does not answer, each process falls back to its own in-memory circuit (same rules),
so an outage of Redis does not also disable the breaker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis

log = logging.getLogger(__name__)


class LocalCircuit:
    """One process's circuit: the same rules as the shared one, in memory."""

    def __init__(self, threshold: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    def is_open(self) -> bool:
        with self._lock:
            return self._opened_at is not None and self._clock() - self._opened_at < self.reset_seconds

    def record(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._failures, self._opened_at = 0, None
                return
            self._failures += 1
            if self._failures >= self.threshold:
                self._opened_at = self._clock()


class SharedCircuit:
    """The circuit in Redis (see the module's docstring)."""

    def __init__(
        self,
        client: Callable[[], redis.Redis],
        prefix: str,
        threshold: int,
        reset_seconds: float,
    ) -> None:
        self._client = client
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.failures_key = f"{prefix}ai_circuit:failures"
        self.open_key = f"{prefix}ai_circuit:open"
        self.local = LocalCircuit(threshold, reset_seconds)

    def is_open(self) -> bool:
        try:
            return bool(self._client().exists(self.open_key))
        except redis.RedisError as exc:
            log.debug("the shared circuit is unreadable (%s); using this process's", exc)
            return self.local.is_open()

    def record(self, ok: bool) -> None:
        self.local.record(ok)
        try:
            client = self._client()
            if ok:
                client.delete(self.failures_key, self.open_key)
                return
            pipe = client.pipeline()
            pipe.incr(self.failures_key)
            # consecutive failures: a quiet while (no failure, no success) forgets them
            pipe.expire(self.failures_key, max(60, int(self.reset_seconds * 4)))
            failures = int(pipe.execute()[0])
            if failures >= self.threshold:
                if not client.exists(self.open_key):
                    log.warning(
                        "remote analysis circuit opens for %.0f s after %s consecutive failures",
                        self.reset_seconds,
                        failures,
                    )
                client.set(self.open_key, str(time.time()), px=max(1, int(self.reset_seconds * 1000)))
        except redis.RedisError as exc:
            log.debug("the shared circuit is unwritable (%s); this process's keeps count", exc)

    def state(self) -> dict[str, Any]:
        """For operators (``vocalborn tasks circuit``, docs/OPERATIONS.md)."""
        client = self._client()
        failures = client.get(self.failures_key)
        ttl = client.pttl(self.open_key)
        return {
            "open": ttl > 0,
            "open_for_seconds": round(ttl / 1000, 1) if ttl > 0 else 0.0,
            "consecutive_failures": int(failures or 0),
            "threshold": self.threshold,
        }

    def reset(self) -> None:
        self._client().delete(self.failures_key, self.open_key)
        self.local.record(True)
