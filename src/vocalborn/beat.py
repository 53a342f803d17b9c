"""Celery Beat that schedules only while it holds a lease in Redis: one scheduler per broker.

A second Beat on the same broker (a scaled compose service, two `vocalborn up` on one configured
Redis, a restarted container whose predecessor still runs) would send every maintenance job
twice. With this scheduler (``beat_scheduler`` in celery_app.py) only the Beat holding the lease
``{REDIS_KEY_PREFIX}beat:lease`` sends anything. It renews the lease every third of
``BEAT_LEASE_SECONDS``; another Beat checks as often and takes the lease once it lapses (its
holder died or hung) or was released (its holder stopped). A Beat that finds the lease taken by
another, or cannot reach Redis to renew it, stops scheduling until it holds it again.

Each job's last run is kept beside the lease (``{REDIS_KEY_PREFIX}beat:last-run``), and a Beat
that takes the lease over starts from those times, so a failover neither repeats a job at once
nor skips one: each job still runs once per interval.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import redis
from celery.beat import PersistentScheduler

from vocalborn.config import get_settings
from vocalborn.redis_connect import client

log = logging.getLogger(__name__)

# 1: renewed (we held it), 2: taken (it was free), 0: someone else holds it.
_RENEW_OR_TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
"""
# Take the lease from a holder known to be dead (compare and set).
_TAKE_FROM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key() -> str:
    return f"{get_settings().redis_key_prefix}beat:lease"


def last_run_key() -> str:
    return f"{get_settings().redis_key_prefix}beat:last-run"


class LeasedScheduler(PersistentScheduler):
    """PersistentScheduler (the schedule file under DATA_DIR) that ticks only with the lease."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        settings = get_settings()
        self.lease_seconds = float(settings.beat_lease_seconds)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.holding = False
        self._renewed_at = 0.0
        self._said_waiting = False

        self._redis = client(settings.effective_redis_url, socket_timeout=5, socket_connect_timeout=5)
        super().__init__(*args, **kwargs)

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> Any:
        """Publish a job without a task-sent event: Beat sends only maintenance jobs, which send
        no worker events either (tasks/worker.py), so Flower lists analyses, not housekeeping
        (issue #26). Beat is single-threaded: the setting is back before anything else publishes."""
        conf = self.app.conf
        before = conf.task_send_sent_event
        conf.task_send_sent_event = False
        try:
            return super().apply_async(entry, producer, advance, **kwargs)
        finally:
            conf.task_send_sent_event = before

    @property
    def renew_every(self) -> float:
        return max(0.1, self.lease_seconds / 3)

    def _check_lease(self) -> bool:
        if self.holding and time.monotonic() - self._renewed_at < self.renew_every:
            return True
        checked = time.monotonic()
        try:
            answer = int(self._redis.eval(_RENEW_OR_TAKE, 1, lease_key(), self.token, int(self.lease_seconds * 1000)))
        except redis.RedisError as exc:
            if self.holding:
                log.warning("Beat cannot renew its schedule lease (%s); not scheduling until it can", exc)
            self.holding = False
            return False
        if answer == 0 and self._take_from_dead_holder():
            answer = 2
        if answer == 0:
            if self.holding or not self._said_waiting:
                holder = self._holder()
                log.warning(
                    "Beat: another Beat (%s) holds the schedule lease; this one schedules nothing until it lapses",
                    holder,
                )
                self._said_waiting = True
            self.holding = False
            return False
        if not self.holding:
            log.info("Beat: holding the schedule lease (%s, %.0f s)", self.token, self.lease_seconds)
            self._said_waiting = False
            self._resume_from_shared_times()
        self.holding = True
        self._renewed_at = checked
        return True

    def _take_from_dead_holder(self) -> bool:
        """A holder on this host whose process is gone (a Beat killed with its lease, e.g. with
        `vocalborn up`, or the previous life of this container's pid) need not be waited for."""
        holder = self._holder()
        host, _, rest = holder.partition(":")
        pid = rest.partition(":")[0]
        if host != socket.gethostname() or not pid.isdigit() or holder == self.token:
            return False
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                return False  # alive here: a live Beat holds it
            except ProcessLookupError:
                pass
            except PermissionError:
                return False
        try:
            took = self._redis.eval(_TAKE_FROM, 1, lease_key(), holder, self.token, int(self.lease_seconds * 1000))
        except redis.RedisError:
            return False
        if took:
            log.info("Beat: took the schedule lease over from %s (no longer running on this host)", holder)
        return bool(took)

    def _holder(self) -> str:
        try:
            raw = self._redis.get(lease_key())
        except redis.RedisError:
            return "unknown"
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    def _resume_from_shared_times(self) -> None:
        """Start each job from its last run by whichever Beat ran it (not from our own file)."""
        try:
            shared = self._redis.hgetall(last_run_key())
        except redis.RedisError as exc:
            log.warning("Beat cannot read the jobs' last runs (%s); using its own schedule file", exc)
            return
        for raw_name, raw_ts in shared.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            entry = self.schedule.get(name)
            if entry is None:
                continue
            ran = datetime.fromtimestamp(float(raw_ts), UTC)
            if entry.last_run_at is None or ran > entry.last_run_at:
                entry.last_run_at = ran
        self._heap = None  # rebuilt from the entries at the next tick

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._check_lease():
            # Standing by is alive too: read the entries as a tick does, so that the next sync
            # writes the schedule file whatever the dbm backend (`python -m vocalborn.healthcheck
            # beat` checks its age; dbm.dumb rewrites it anyway, gdbm only what was read).
            _ = self.schedule
            return min(self.renew_every, self.max_interval)
        return float(min(super().tick(*args, **kwargs), self.renew_every))

    def apply_entry(self, entry: Any, producer: Any = None) -> None:
        super().apply_entry(entry, producer=producer)
        try:
            self._redis.hset(last_run_key(), entry.name, str(time.time()))
        except redis.RedisError as exc:
            log.warning("Beat cannot note the run of %s (%s)", entry.name, exc)

    def close(self) -> None:
        super().close()
        if self.holding:
            with suppress(redis.RedisError):  # hand over at once instead of after the lease lapses
                self._redis.eval(_RELEASE, 1, lease_key(), self.token)
            self.holding = False
        self._redis.close()
