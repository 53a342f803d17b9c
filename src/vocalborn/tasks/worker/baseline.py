"""The learner's pitch baseline, from their earlier attempts (issue #22).

A one-character attempt has too little voice to tell the speaker's range from its own contour, so
the worker passes the engine ``params["pitch_baseline"] = {"median_hz", "spread_semitones"}``,
built from the ``detailed_analysis["pitch_profile"]`` of the learner's last successful attempts:
the medians weighted by each attempt's voiced seconds (a median, so one odd recording cannot
move it). One indexed query (``ix_ai_analysis_tasks_user_created_at``), inside the fast claim's
statement on PostgreSQL (``tasks/worker/fastrun.py``), on its own otherwise; without earlier profiles
there is no baseline, and a failure to read them never fails the task: the engine then
normalises on the attempt alone, as it always did.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

import vocalborn.db
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import TaskStatus

log = logging.getLogger(__name__)

# How many of the learner's latest successful attempts the baseline is made of.
BASELINE_ATTEMPTS = 10
# A profile with less voice than this says little about the speaker's range.
MIN_VOICED_SECONDS = 0.1


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def weighted_median(pairs: Iterable[tuple[float, float]]) -> float | None:
    """The value at half the total weight (the mean of the two middle values when it falls on a
    boundary); None for no positive weight."""
    items = sorted((v, w) for v, w in pairs if w > 0)
    total = sum(w for _, w in items)
    if total <= 0:
        return None
    acc = 0.0
    for i, (value, weight) in enumerate(items):
        acc += weight
        if math.isclose(acc, total / 2) and i + 1 < len(items):
            return (value + items[i + 1][0]) / 2
        if acc > total / 2:
            return value
    return items[-1][0]


def baseline_from_profiles(profiles: Iterable[Any]) -> dict[str, float] | None:
    """``{"median_hz", "spread_semitones"}`` from earlier attempts' pitch profiles, or None when
    none of them is usable (missing, malformed, no voice)."""
    medians: list[tuple[float, float]] = []
    spreads: list[tuple[float, float]] = []
    for profile in profiles:
        if not isinstance(profile, dict):
            continue
        median = _number(profile.get("median_hz"))
        voiced = _number(profile.get("voiced_seconds"))
        if median is None or median <= 0 or voiced is None or voiced < MIN_VOICED_SECONDS:
            continue
        medians.append((median, voiced))
        spread = _number(profile.get("spread_semitones"))
        if spread is not None and spread > 0:
            spreads.append((spread, voiced))
    median_hz = weighted_median(medians)
    spread_st = weighted_median(spreads)
    if median_hz is None or spread_st is None:
        return None
    return {"median_hz": round(median_hz, 2), "spread_semitones": round(spread_st, 3)}


def earlier_profiles(db: Session, task_id: uuid.UUID, limit: int = BASELINE_ATTEMPTS) -> list[Any]:
    """The pitch profiles of the task's learner's latest successful attempts made before it,
    newest first (None for results without one), in one statement."""
    me = aliased(AIAnalysisTask)
    earlier = aliased(AIAnalysisTask)
    stmt = (
        select(col(AIAnalysisResult.detailed_analysis)["pitch_profile"])
        .select_from(me)
        .join(earlier, and_(col(earlier.user_id) == col(me.user_id), col(earlier.created_at) < col(me.created_at)))
        .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(earlier.task_id))
        .where(col(me.task_id) == task_id, col(earlier.status) == TaskStatus.SUCCESS.value)
        .order_by(col(earlier.created_at).desc(), col(earlier.task_id).desc())
        .limit(limit)
    )
    return list(db.exec(stmt))


def with_pitch_baseline(
    task_id: uuid.UUID, params: dict[str, Any], profiles: list[Any] | None = None
) -> dict[str, Any]:
    """``params`` with the learner's ``pitch_baseline`` when there is one; ``params`` unchanged
    when there is none or it cannot be read (logged: the analysis goes on without it).
    ``profiles``: the earlier profiles when the claim read them already (no query then)."""
    try:
        if profiles is None:
            with vocalborn.db.open_session() as db:  # looked up on each call (tests take the database away)
                profiles = earlier_profiles(db, task_id)
        baseline = baseline_from_profiles(profiles)
    except Exception as exc:  # never fail a task for want of a baseline
        log.warning("task %s: no pitch baseline (%s: %s)", task_id, type(exc).__name__, exc)
        return params
    if baseline is None:
        return params
    return {**params, "pitch_baseline": baseline}
