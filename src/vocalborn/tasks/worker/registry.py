"""The worker's registries: which analysis engine kinds exist (``AI_ENGINE``), and which workers
are online and how many slots they have, kept in Redis with a TTL.

Each worker's main process refreshes its key; a dead worker's key simply expires. Used for
queue-time estimates and ``workers online`` in the admin stats, without Celery's slow broadcast.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from vocalborn.analysis.engine import get_engine
from vocalborn.analysis.types import STEPS, AnalysisReport
from vocalborn.config import Settings, get_settings
from vocalborn.kit.redis import get_redis
from vocalborn.outage.fallback import build_remote_engine

if TYPE_CHECKING:
    from vocalborn.analysis.types import AnalysisEngine, AnalysisReport, AudioSource, ProgressCallback

# --------------------------------------------------------------------------------------------
# analysis engine kinds, chosen by AI_ENGINE
# --------------------------------------------------------------------------------------------


class NoopEngine:
    """``AI_ENGINE=noop``: reports the five steps and returns a minimal valid report at once,
    without reading the recordings. For benchmarking the worker's bookkeeping alone (claim,
    progress, result); never for learners."""

    name = "vocalborn-noop"
    version = "noop"

    def analyze(
        self,
        reference: AudioSource,
        attempt: AudioSource,
        params: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> AnalysisReport:

        if progress is not None:
            for number, (key, _, _) in enumerate(STEPS, start=1):
                progress(number, key)
        return AnalysisReport(
            overall_score=0.0,
            pronunciation_accuracy=0.0,
            fluency_score=0.0,
            rhythm_score=0.0,
            detailed_analysis={"engine": "noop"},
            analysis_model_version=f"{self.name}/{self.version}",
        )


def _local(settings: Settings) -> AnalysisEngine:
    return get_engine("local")


def _remote(settings: Settings) -> AnalysisEngine:
    # circuit breaker shared in Redis, and the AI_ENGINE_FALLBACK engine (issue #27)

    return build_remote_engine(settings)


def _noop(settings: Settings) -> AnalysisEngine:
    return NoopEngine()


ENGINE_KINDS: dict[str, Callable[[Settings], AnalysisEngine]] = {"local": _local, "remote": _remote, "noop": _noop}


def build_engine(settings: Settings) -> AnalysisEngine:
    """The engine ``settings.ai_engine`` names."""
    try:
        factory = ENGINE_KINDS[str(settings.ai_engine)]
    except KeyError:
        raise RuntimeError(f"unknown AI_ENGINE {settings.ai_engine!r}: use one of {sorted(ENGINE_KINDS)}") from None
    return factory(settings)


# --------------------------------------------------------------------------------------------
# workers online
# --------------------------------------------------------------------------------------------

TTL_SECONDS = 30


def _key(hostname: str = "*") -> str:
    return f"{get_settings().redis_key_prefix}workers:{hostname}"


def announce(hostname: str, concurrency: int, consumed: int) -> None:
    payload = {"hostname": hostname, "concurrency": concurrency, "consumed": consumed, "seen": time.time()}
    get_redis().set(_key(hostname), json.dumps(payload), ex=TTL_SECONDS)


def withdraw(hostname: str) -> None:
    with contextlib.suppress(redis.RedisError):
        get_redis().delete(_key(hostname))


def online_workers() -> list[dict[str, Any]]:
    client = get_redis()
    keys = list(client.scan_iter(match=_key(), count=100))
    if not keys:
        return []
    return [json.loads(v) for v in client.mget(keys) if v]


def _reserved_key(task_id: str) -> str:
    return f"{get_settings().redis_key_prefix}reserved:{task_id}"


def note_reserved(task_id: str, hostname: str) -> None:
    """A worker's main process took this message from the broker (it may wait in its buffer
    before a pool process starts it). Lets the republisher tell a reservation held by a live
    worker from one left behind by a worker that was killed."""
    get_redis().set(_reserved_key(task_id), hostname, ex=get_settings().task_time_limit)


def forget_reserved(task_ids: list[str]) -> None:
    """Drop the reservation notes of these tasks (an erased learner's: nothing of theirs stays)."""
    if task_ids:
        get_redis().delete(*[_reserved_key(t) for t in task_ids])


def reserved_by(task_ids: list[str]) -> dict[str, str | None]:
    if not task_ids:
        return {}
    values = get_redis().mget([_reserved_key(t) for t in task_ids])
    return {t: (v.decode() if isinstance(v, bytes) else v) for t, v in zip(task_ids, values, strict=True)}
