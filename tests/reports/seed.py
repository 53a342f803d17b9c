"""Many analysed attempts of one learner written straight to the database (no worker): for the
clinical report's test and bench (bench/report.py). Each attempt carries issue #22's per-character
verdicts (tests/verdicts.py) with errors varied at random (seeded), a pitch contour of the size a
real result has (the report must not pay for reading it), and one in ten does not count."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from tests import verdicts
from vocalborn.practice.models import PracticeRecord, RecordStatus
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
from vocalborn.tasks.states import TaskStatus

ERRORS = ("none", "none", "none", "none", "tone", "mispronunciation", "omission")


def characters(rng: random.Random) -> list[dict[str, Any]]:
    out = verdicts.characters()
    for entry in out:
        if entry["error_type"] is None:
            continue
        kind = rng.choice(ERRORS)
        entry["error_type"] = kind
        tone = entry["expected_tone"]
        entry["heard_tone"] = None if kind == "omission" else (rng.choice([1, 2, 3, 4]) if kind == "tone" else tone)
    return out


def attempts(
    db: Any, learner_id: uuid.UUID, session_id: uuid.UUID, sentence_id: uuid.UUID, n: int, end: datetime,
    days: int = 56, seed: int = 26,
) -> list[uuid.UUID]:  # fmt: skip
    """``n`` successful analyses spread over the ``days`` before ``end``; their task ids, oldest first."""
    rng = random.Random(seed)
    step = timedelta(days=days) / max(1, n)
    contour = [round(180 + 20 * rng.random(), 1) for _ in range(600)]
    ids = []
    for i in range(n):
        at = end - timedelta(days=days) + step * i
        record = PracticeRecord(
            practice_session_id=session_id, sentence_id=sentence_id, user_id=learner_id,
            audio_key=f"recordings/00/{uuid.uuid4().hex}.wav", audio_format="wav", audio_size_bytes=1,
            audio_duration_seconds=round(2.5 + rng.random(), 2), record_status=RecordStatus.AI_ANALYZED.value,
            created_at=at,
        )  # fmt: skip
        db.add(record)
        db.flush()
        task = AIAnalysisTask(
            celery_task_id=str(uuid.uuid4()), practice_record_id=record.practice_record_id, user_id=learner_id,
            status=TaskStatus.SUCCESS.value, progress=100, created_at=at, completed_at=at + timedelta(seconds=3),
        )  # fmt: skip
        db.add(task)
        db.flush()
        counted = i % 10 != 9
        score = round(min(100.0, 50 + 40 * i / n + rng.uniform(-8, 8)), 2)
        db.add(
            AIAnalysisResult(
                task_id=task.task_id, overall_score=score, pronunciation_accuracy=round(score - 3, 2),
                fluency_score=round(score + 2, 2), rhythm_score=round(score - 1, 2), completeness_score=92.31,
                counted=counted, not_counted_reason=None if counted else "wrong_sentence",
                detailed_analysis={"characters": characters(rng), "pitch_contour": contour},
                analysis_model_version="test/1",
            )
        )  # fmt: skip
        ids.append(task.task_id)
    db.commit()
    return ids
