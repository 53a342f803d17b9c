"""Progress reads issue #22's verdicts: ``error_type`` when the result has it, the old status for
older results; punctuation is never listed, in the points, the characters or still_deviating."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tests import seeding, verdicts
from tests.support import SENTENCE, Api


def _old_characters() -> list[dict[str, Any]]:
    """A result from before issue #22 (engine 2.0): status and issues only; 今 deviating, 公 fine,
    the punctuation "not_judged"."""
    out = []
    for c in verdicts.characters():
        if c["status"] == "not_judged":
            out.append({"index": c["index"], "char": c["char"], "status": "not_judged"})
            continue
        bad = c["char"] in ("今", "氣")
        out.append(
            {
                "index": c["index"],
                "char": c["char"],
                "status": "deviating" if bad else "matched",
                "issues": ["pronunciation"] if bad else [],
            }
        )
    return out


def test_progress_follows_error_type_and_never_lists_punctuation(api: Api) -> None:
    from vocalborn.auth.sessions import token_for
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

    t0 = utcnow() - timedelta(hours=2)
    with open_session() as db:
        learner, sentence, session = seeding.learner_with_sentence(db, "progress-verdicts", SENTENCE)
        for minutes, characters in ((0, _old_characters()), (10, verdicts.characters())):
            record = seeding.record(db, session, sentence.sentence_id, learner.user_id)
            at = t0 + timedelta(minutes=minutes)
            task = AIAnalysisTask(
                celery_task_id=uuid.uuid4().hex,
                practice_record_id=record.practice_record_id,
                user_id=learner.user_id,
                status="success",
                created_at=at,
                updated_at=at,
                completed_at=at + timedelta(seconds=2),
            )
            db.add(task)
            db.flush()
            db.add(
                AIAnalysisResult(
                    task_id=task.task_id, overall_score=60.0 + minutes, detailed_analysis={"characters": characters}
                )
            )
        db.commit()
        learner_id = learner.user_id
        token = token_for(db, learner)
    headers = {"Authorization": f"Bearer {token}"}
    r = api.client.get(f"/api/v1/learners/{learner_id}/progress", headers=headers)
    assert r.status_code == 200, r.text
    (progress,) = r.json()["sentences"]
    first, last = progress["points"]
    assert first["deviating_characters"] == ["今", "氣"]  # the old status, punctuation left out
    assert last["deviating_characters"] == ["氣", "公", "園"]  # tone, mispronunciation, omission
    chars = [c["char"] for c in progress["characters"]]
    assert chars == list("今天天氣很好我們去公園散步")  # no "，" nor "。"
    assert progress["still_deviating"] == ["氣", "公", "園"]
    assert progress["improved_characters"] == ["今"]
