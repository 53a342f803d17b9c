"""Stamp every published task with its publish time, so the worker can measure queue wait.

Connected in every process that publishes analyses: the API (submit) and the worker (retries,
the republisher and the reaper run there). A message without the stamp (published by an older
process, or by Beat for its own jobs) simply has no queue-wait observation.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime
from typing import Any

from celery import signals

PUBLISHED_AT_HEADER = "vocalborn_published_at"


def _stamp_publish_time(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None and PUBLISHED_AT_HEADER not in headers:
        headers[PUBLISHED_AT_HEADER] = time.time()


def connect() -> None:
    """Idempotent: the dispatch uid keeps one receiver however often it is called."""
    signals.before_task_publish.connect(_stamp_publish_time, weak=False, dispatch_uid="vocalborn-published-at")


def queue_wait_seconds(request: Any, now: float | None = None) -> float | None:
    """Seconds from publish (or from the ETA, for a delayed message) to ``now``; None without a stamp.

    Clocks of the publishing and the consuming host may differ a little; a negative wait is 0.
    """
    published = getattr(request, PUBLISHED_AT_HEADER, None)
    if published is None:
        published = (getattr(request, "headers", None) or {}).get(PUBLISHED_AT_HEADER)
    if published is None:
        return None
    try:
        since = float(published)
    except (TypeError, ValueError):
        return None
    eta = getattr(request, "eta", None)
    if eta:
        with contextlib.suppress(ValueError):
            since = max(since, datetime.fromisoformat(str(eta)).timestamp())
    return max(0.0, (now if now is not None else time.time()) - since)
