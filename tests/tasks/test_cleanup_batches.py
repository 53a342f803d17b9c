"""The retention cleanup in small batches, oldest first from where the last batch ended: it
still deletes every expired task (ties on completed_at across batches included) with its
events and result, and nothing else; the per-status counts stay exact."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlmodel import col, select

from tests import seeding
from tests.services import ServicesUnderTest
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeRecord
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.tasks.worker import retention, stats


def test_every_expired_task_goes_and_nothing_else(migrated: ServicesUnderTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "CLEANUP_BATCH", 4)
    monkeypatch.setattr(retention, "CLEANUP_REST_MAX", 0.0)
    now = utcnow()
    old = now - timedelta(days=400)
    with open_session() as db:
        user, sentence, session = seeding.learner_with_sentence(db, "c", "cleanup")
        expired: list[uuid.UUID] = []
        kept: list[uuid.UUID] = []
        # 23 expired (failure and cancelled; groups of 3 at the same instant, so ties straddle
        # batches of 4), then what must stay: young failures, old successes, old active tasks.
        plan = [("failure" if i % 2 else "cancelled", old + timedelta(seconds=i // 3), True) for i in range(23)]
        plan += [("failure", now - timedelta(days=1), False), ("success", old, False), ("success", old, False)]
        plan += [("pending", None, False), ("processing", None, False)]
        for status, completed, doomed in plan:
            record = seeding.record(db, session, sentence.sentence_id, user.user_id)
            task = AIAnalysisTask(
                celery_task_id=uuid.uuid4().hex,
                practice_record_id=record.practice_record_id,
                user_id=user.user_id,
                status=status,
                created_at=old,
                updated_at=old,
                completed_at=completed,
            )
            db.add(task)
            db.flush()
            db.add(AIAnalysisTaskEvent(task_id=task.task_id, event_type="submitted", status="pending", created_at=now))
            if status != "pending":
                db.add(AIAnalysisResult(task_id=task.task_id, overall_score=50.0, detailed_analysis={}))
            record.ai_task_id = task.task_id
            db.add(record)
            (expired if doomed else kept).append(task.task_id)
        db.commit()

    report = retention.cleanup_expired_tasks(now)
    assert report.tasks_deleted >= len(expired)

    with open_session() as db:
        mine = set(db.exec(select(AIAnalysisTask.task_id).where(AIAnalysisTask.user_id == user.user_id)))
        assert mine == set(kept)
        for table in (AIAnalysisTaskEvent, AIAnalysisResult):
            left = db.exec(select(table.task_id).where(col(table.task_id).in_(expired))).all()  # type: ignore[attr-defined]
            assert left == [], table
        pointing = db.exec(select(PracticeRecord).where(PracticeRecord.user_id == user.user_id)).all()
        assert sorted(r.record_status for r in pointing if r.ai_task_id is None) == ["RECORDED"] * len(expired)
        if not migrated.database_url.startswith("sqlite"):
            assert stats.status_counts(db, fold=False) == stats.counted_statuses(db)
