"""A learner's progress per sentence: scores over time, trends and the characters that improved."""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Sequence
from datetime import datetime
from statistics import fmean
from typing import Any

from sqlmodel import Session, col, select

from vocalborn.auth.models import User
from vocalborn.learning.access import learner_for
from vocalborn.learning.models import SCORE_FIELDS
from vocalborn.practice.models import PracticeRecord, Sentence
from vocalborn.practice.service import sentence_readable_clause
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

# The trend compares the first attempt with the mean of the last TREND_LAST_N.
TREND_LAST_N = 3


# A character's verdict since issue #22: one of these, or null for a character never judged.
ERROR_TYPES = frozenset({"none", "omission", "mispronunciation", "tone"})


def _never_judged(char: str) -> bool:
    """Punctuation, symbols and spaces: never judged, never counted (issue #22)."""
    return not char or all(unicodedata.category(c)[0] in "PSZC" for c in char)


def _is_deviating(entry: dict[str, Any]) -> bool | None:
    """Read a per-character entry defensively: the verdict's ``error_type`` when the engine wrote
    one (null: not judged), else, for older results, several spellings of the flag or a status."""
    if "error_type" in entry:
        error_type = entry["error_type"]
        return error_type != "none" if error_type in ERROR_TYPES else None
    if entry.get("status") == "not_judged":
        return None
    for key in ("deviating", "deviates", "is_deviating", "deviation", "flagged", "off"):
        if key in entry and isinstance(entry[key], bool | int | float):
            return bool(entry[key])
    for key in ("ok", "correct", "matches"):
        if key in entry and isinstance(entry[key], bool):
            return not entry[key]
    status = entry.get("status")
    if isinstance(status, str) and status:  # like phoneme_analysis: "ok" or what went wrong
        return status.lower() not in ("ok", "match", "matched", "correct", "good")
    return None


def character_marks(detailed: Any) -> list[tuple[int, str, bool]] | None:
    """``(index, char, deviating)`` from ``detailed_analysis["characters"]``; None without it."""
    if not isinstance(detailed, dict):
        return None
    chars = detailed.get("characters")
    if not isinstance(chars, list):
        return None
    marks: list[tuple[int, str, bool]] = []
    for i, entry in enumerate(chars):
        if not isinstance(entry, dict):
            continue
        deviating = _is_deviating(entry)
        if deviating is None:
            continue
        index = entry.get("index", i)
        char = entry.get("char", entry.get("character", ""))
        if not isinstance(index, int) or not isinstance(char, str) or _never_judged(char):
            continue
        marks.append((index, char, deviating))
    return marks


def slope(values: Sequence[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mx = (n - 1) / 2
    my = fmean(values)
    num = sum((i - mx) * (v - my) for i, v in enumerate(values))
    den = sum((i - mx) ** 2 for i in range(n))
    return num / den


def trend(values: Sequence[float | None], last_n: int) -> dict[str, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"first": None, "last_n_mean": None, "change": None, "slope_per_attempt": None}
    last = fmean(vals[-last_n:])
    s = slope(vals)
    return {
        "first": round(vals[0], 2),
        "last_n_mean": round(last, 2),
        "change": round(last - vals[0], 2),
        "slope_per_attempt": None if s is None else round(s, 3),
    }


def progress(
    db: Session, reader: User, learner_id: uuid.UUID, sentence_id: uuid.UUID | None, since: datetime | None
) -> list[dict[str, Any]]:
    learner_for(db, reader, learner_id)
    stmt = (
        select(AIAnalysisTask, PracticeRecord, Sentence, AIAnalysisResult)
        .join(PracticeRecord, col(PracticeRecord.practice_record_id) == col(AIAnalysisTask.practice_record_id))
        .join(Sentence, col(Sentence.sentence_id) == col(PracticeRecord.sentence_id))
        .join(AIAnalysisResult, col(AIAnalysisResult.task_id) == col(AIAnalysisTask.task_id))
        .where(col(AIAnalysisTask.user_id) == learner_id, col(AIAnalysisTask.status) == "success")
    )
    # Another therapist's private sentence never shows through a learner's progress.
    stmt = stmt.where(sentence_readable_clause(reader, col(AIAnalysisTask.user_id)))
    if sentence_id is not None:
        stmt = stmt.where(col(PracticeRecord.sentence_id) == sentence_id)
    if since is not None:
        stmt = stmt.where(col(AIAnalysisTask.created_at) >= since)
    stmt = stmt.order_by(col(AIAnalysisTask.created_at), col(AIAnalysisTask.task_id))
    by_sentence: dict[uuid.UUID, dict[str, Any]] = {}
    for task, record, sentence, result in db.exec(stmt):
        entry = by_sentence.setdefault(
            sentence.sentence_id, {"sentence": sentence, "points": [], "marks": [], "not_counted": 0}
        )
        if not result.counted:  # kept and shown in the history, never in a trend (issue #26)
            entry["not_counted"] += 1
            continue
        marks = character_marks(result.detailed_analysis)
        entry["marks"].append(marks)
        entry["points"].append(
            {
                "task_id": task.task_id,
                "practice_record_id": record.practice_record_id,
                "at": task.completed_at or task.created_at,
                **{f: getattr(result, f) for f in SCORE_FIELDS},
                "deviating_characters": None if marks is None else [c for _, c, d in marks if d],
            }
        )
    out = []
    for sid, entry in by_sentence.items():
        points = entry["points"]
        if not points:
            continue  # only attempts that do not count: nothing to show a trend of
        chars = _character_progress([m for m in entry["marks"] if m is not None])
        out.append(
            {
                "sentence_id": sid,
                "sentence_text": entry["sentence"].text,
                "attempts": len(points),
                "not_counted_attempts": entry["not_counted"],
                "points": points,
                "last_n": min(TREND_LAST_N, len(points)),
                "trend": {f: trend([p[f] for p in points], TREND_LAST_N) for f in SCORE_FIELDS},
                "characters": chars,
                "improved_characters": [c["char"] for c in chars if c["improved"]],
                "still_deviating": [c["char"] for c in chars if c["last_deviating"]],
            }
        )
    out.sort(key=lambda e: e["points"][-1]["at"], reverse=True)  # the sentence practised last first
    return out


def _character_progress(attempts: list[list[tuple[int, str, bool]]]) -> list[dict[str, Any]]:
    if not attempts:
        return []
    seen: dict[int, dict[str, Any]] = {}
    for n, marks in enumerate(attempts):
        for index, char, deviating in marks:
            c = seen.setdefault(
                index,
                {"index": index, "char": char, "attempts": 0, "deviating_count": 0, "first": None, "last": None},
            )
            c["attempts"] += 1
            c["deviating_count"] += int(deviating)
            if c["first"] is None:
                c["first"] = deviating
            c["last"] = deviating
            c["last_seen"] = n
    out = []
    for c in sorted(seen.values(), key=lambda c: c["index"]):
        out.append(
            {
                "index": c["index"],
                "char": c["char"],
                "attempts": c["attempts"],
                "deviating_count": c["deviating_count"],
                "first_deviating": bool(c["first"]),
                "last_deviating": bool(c["last"]),
                "improved": bool(c["first"]) and not c["last"],
            }
        )
    return out
