"""The admin stats' windows: aggregated by PostgreSQL (stats.finished_in_sql) they are what the
row-by-row reading (stats.finished_in_python, SQLite's) makes of the same rows."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, text
from sqlmodel import col, select

from tests import seeding
from tests.services import ServicesUnderTest
from vocalborn.db import open_session
from vocalborn.sqltypes import utcnow
from vocalborn.tasks.models import AIAnalysisTask
from vocalborn.tasks.states import TaskStatus
from vocalborn.tasks.worker import stats


def _seed(n: int) -> uuid.UUID:
    """Tasks finished over the last two days in every final status, odd microseconds and all,
    some never started. Returns their learner."""
    rng = random.Random(13)
    now = utcnow()
    with open_session() as db:
        user, sentence, session = seeding.learner_with_sentence(db, "s", "stats")
        record = seeding.record(db, session, sentence.sentence_id, user.user_id)
        statuses = [TaskStatus.SUCCESS.value, TaskStatus.FAILURE.value, TaskStatus.CANCELLED.value, "success"]
        for i in range(n):
            done = now - timedelta(seconds=rng.uniform(0, 2 * 86400), microseconds=rng.randrange(10**6))
            started = done - timedelta(seconds=rng.uniform(0.001, 90), microseconds=rng.randrange(10**6))
            created = started - timedelta(seconds=rng.choice([0, 0.5, rng.uniform(0, 3600)]))
            status = statuses[i % len(statuses)]
            db.add(
                AIAnalysisTask(
                    celery_task_id=uuid.uuid4().hex,
                    practice_record_id=record.practice_record_id,
                    user_id=user.user_id,
                    status=status,
                    created_at=created,
                    updated_at=done,
                    started_at=None if i % 5 == 0 else started,
                    completed_at=done,
                )
            )
        db.commit()
        return user.user_id


@pytest.fixture(scope="module")
def seeded(migrated: ServicesUnderTest) -> Iterator[None]:
    user_id = _seed(600)
    yield
    with open_session() as db:  # the other tests' counts are theirs
        db.execute(delete(AIAnalysisTask).where(col(AIAnalysisTask.user_id) == user_id))
        db.commit()


def test_the_sql_windows_are_the_row_by_row_windows(migrated: ServicesUnderTest, seeded: None) -> None:
    now = utcnow()
    windows = (300, 3600, 86400, 7 * 86400)
    with open_session() as db:
        by_rows = stats.finished_in_python(db, now, windows)
        assert by_rows[86400]["succeeded"] > 50 and by_rows[86400]["processing_seconds"]["p95"] is not None
        if migrated.database_url.startswith("sqlite"):
            pytest.skip("the SQL aggregation is PostgreSQL's; SQLite reads the rows")
        assert stats.finished_in_sql(db, now, windows) == by_rows
        empty = stats.finished_in_sql(db, now + timedelta(days=1), (1,))
        assert empty == stats.finished_in_python(db, now + timedelta(days=1), (1,))
        assert empty[1]["processing_seconds"] == {"p50": None, "p95": None}


def test_the_endpoint_answers_the_same_on_both_paths(seeded: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_session() as db:
        fast = stats.task_stats(db)
        monkeypatch.setattr(stats, "_postgres", lambda _db: False)
        slow = stats.task_stats(db)
    for body in (fast, slow):
        body.pop("generated_at")
    assert fast["windows"] == slow["windows"] and fast["counts"] == slow["counts"]


@pytest.mark.postgresql
def test_the_kept_counts_are_the_counted_ones(migrated: ServicesUnderTest, seeded: None) -> None:
    from sqlalchemy import update

    with open_session() as db:
        assert stats.status_counts(db, fold=False) == stats.counted_statuses(db)
        some = list(db.exec(select(AIAnalysisTask.task_id).where(AIAnalysisTask.status == "success").limit(40)))
        db.execute(update(AIAnalysisTask).where(col(AIAnalysisTask.task_id).in_(some[:30])).values(status="failure"))
        db.execute(update(AIAnalysisTask).where(col(AIAnalysisTask.task_id).in_(some[:10])).values(progress=50))
        db.execute(delete(AIAnalysisTask).where(col(AIAnalysisTask.task_id).in_(some[20:])))
        db.commit()
        task = db.get(AIAnalysisTask, some[0])
        assert task is not None
        task.status = "cancelled"
        db.add(task)
        db.commit()
        assert stats.status_counts(db, fold=False) == stats.counted_statuses(db)
        folded = stats.status_counts(db)
        assert folded == stats.counted_statuses(db)
        rows = db.execute(text("SELECT count(*), count(DISTINCT status) FROM ai_analysis_task_status_counts")).one()
        assert rows[0] == rows[1] == len(folded)  # one row per status after a fold
