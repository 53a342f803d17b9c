"""Small helpers shared by the broker tests: database counts and an admin account."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

from sqlmodel import col, select

from tests.support import Api
from vocalborn.auth import service
from vocalborn.auth.models import Role
from vocalborn.db import open_session
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTaskEvent


def result_counts(task_ids: list[str]) -> Counter[str]:
    """How many result rows each task has (effectively-once means exactly one)."""

    ids = [uuid.UUID(t) for t in task_ids]
    with open_session() as db:
        rows = db.exec(select(AIAnalysisResult.task_id).where(col(AIAnalysisResult.task_id).in_(ids))).all()
    counts: Counter[str] = Counter({t: 0 for t in task_ids})
    counts.update(str(r) for r in rows)
    return counts


def event_counts(task_ids: list[str], event_type: str) -> Counter[str]:
    ids = [uuid.UUID(t) for t in task_ids]
    with open_session() as db:
        rows = db.exec(
            select(AIAnalysisTaskEvent.task_id)
            .where(col(AIAnalysisTaskEvent.task_id).in_(ids))
            .where(AIAnalysisTaskEvent.event_type == event_type)
        ).all()
    counts: Counter[str] = Counter({t: 0 for t in task_ids})
    counts.update(str(r) for r in rows)
    return counts


def make_admin(api: Api) -> dict[str, Any]:
    """Admins are made outside the API (the CLI does the same through the service)."""

    email, password = f"admin-{uuid.uuid4().hex[:8]}@example.com", "admin-pass-123"
    with open_session() as db:
        service.create_user(db, email=email, password=password, name="Admin", role=Role.ADMIN)
    token = api.login(email, password)
    return {"email": email, "token": token, "headers": {"Authorization": f"Bearer {token}"}}
