"""The retry budget of each error class, as the plan asks (seed 001, "error handling").

A failed run is classified by what went wrong; each class has its own number of retries and
its own wait between them:

============  ==================================================  ==============================
class         what                                                budget (production defaults)
============  ==================================================  ==============================
``network``   the remote service did not answer (refused, reset,  AI_RETRY_NETWORK_MAX (5) x
              DNS) or its circuit is open                         AI_RETRY_NETWORK_DELAY (30 s)
``timeout``   the remote service took longer than                 AI_RETRY_TIMEOUT_MAX (2) x
              AI_SERVICE_TIMEOUT                                  AI_RETRY_TIMEOUT_DELAY (60 s)
``service``   the remote service answered 5xx or an invalid       TASK_MAX_RETRIES (3), backoff
              report                                              RETRY_BACKOFF_BASE * 2**(n-1)
``internal``  database, message bus, storage, anything else on    TASK_MAX_RETRIES (3), backoff
              our side                                            RETRY_BACKOFF_BASE * 2**(n-1)
``input``     the recording can never be analysed                 none: fails at once
``time_limit`` the run exceeded TASK_SOFT_TIME_LIMIT              none: fails at once
============  ==================================================  ==============================

The fixed waits carry jitter: each is ``delay * uniform(1, 1 + AI_RETRY_JITTER)`` (never shorter
than the delay, so 5 network retries span at least 150 s: a service down for 2 minutes is
outlasted). The budget counts all retries of the task (``retry_count``): the class of the
latest failure decides how many the task may have in total.

``classify_message`` reads the class back from a stored ``error_message`` (our own wording), for
the bulk retry's ``reason`` filter.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vocalborn.analysis.types import AnalysisInputError, TransientAnalysisError
from vocalborn.config import Settings, get_settings

ERROR_CLASSES = ("network", "timeout", "service", "internal", "time_limit", "input")
RETRYABLE_CLASSES = ("network", "timeout", "service", "internal")


@dataclass(frozen=True)
class Budget:
    """``retries`` retries, each after ``delay`` seconds plus up to ``jitter`` of it at random.
    ``retries`` None: the task's own ``max_retries`` (TASK_MAX_RETRIES when it was submitted);
    ``delay`` None: the exponential backoff of RETRY_BACKOFF_BASE / RETRY_BACKOFF_MAX."""

    error_class: str
    retries: int | None
    delay: float | None
    jitter: float = 0.0

    def wait_seconds(self, retry_number: int, settings: Settings | None = None) -> float:
        if self.delay is None:
            return exponential_backoff(retry_number, settings)
        return self.delay * random.uniform(1.0, 1.0 + self.jitter)


def exponential_backoff(retry_number: int, settings: Settings | None = None) -> float:
    """Exponential backoff with equal jitter: half fixed, half random, capped."""
    settings = settings or get_settings()
    ceiling = min(settings.retry_backoff_max, settings.retry_backoff_base * 2 ** (retry_number - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def classify(exc: BaseException) -> str:
    """The error class of an exception a run ended with."""

    if isinstance(exc, AnalysisInputError):
        return "input"
    if isinstance(exc, TransientAnalysisError):
        return str(getattr(exc, "error_class", "service"))
    return "internal"


def budget_for(error_class: str, settings: Settings | None = None) -> Budget:
    settings = settings or get_settings()
    if error_class == "network":
        return Budget(
            "network", settings.ai_retry_network_max, settings.ai_retry_network_delay, settings.ai_retry_jitter
        )
    if error_class == "timeout":
        return Budget(
            "timeout", settings.ai_retry_timeout_max, settings.ai_retry_timeout_delay, settings.ai_retry_jitter
        )
    if error_class == "input":
        return Budget("input", 0, None)
    return Budget(error_class, None, None)


# Our own wording (analysis/engine.py RemoteEngine, tasks/runner._describe), most specific first.
_MESSAGE_CLASSES = (
    ("circuit is open", "network"),
    ("remote analysis unreachable", "network"),
    ("remote analysis timed out", "timeout"),
    ("remote analysis failed (", "service"),
    ("returned an invalid report", "service"),
    ("was unavailable for a moment", "internal"),
    ("an unexpected error on our side", "internal"),
    ("the analysis took longer than", "time_limit"),
)


def classify_message(message: str | None) -> str:
    """The error class of a stored failure message: ``input`` for anything not transient."""
    text = (message or "").lower()
    for needle, error_class in _MESSAGE_CLASSES:
        if needle in text:
            return error_class
    return "input"
