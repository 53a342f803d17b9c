"""The learner's own history page in one statement (learning/history_fast.py) answers byte for
byte what the ordinary path answers, pages with the same cursors, and leaves every other reader
to the ordinary path."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import seeding
from tests.services import ServicesUnderTest
from tests.support import Api
from vocalborn.auth.models import Role, User
from vocalborn.auth.security import create_access_token
from vocalborn.auth.service import create_user
from vocalborn.auth.sessions import token_for
from vocalborn.db import open_session
from vocalborn.kit.fastdb import close_pool
from vocalborn.learning import history_fast
from vocalborn.learning.models import TherapistReview
from vocalborn.learning.router import HistoryQuery, history_in_session
from vocalborn.practice.models import PracticeSession
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask

T0 = datetime(2026, 11, 30, 8, 0, 0, 123456, tzinfo=UTC)


def _user(db: Any, role: Role, therapist_id: uuid.UUID | None = None) -> Any:
    user = create_user(
        db, email=f"{role.value}-{uuid.uuid4().hex[:8]}@example.com", password="x" * 12, name="Ann", role=role
    )
    if therapist_id is not None:
        user.therapist_id = therapist_id
        db.add(user)
        db.commit()
    return user


def _world() -> dict[str, Any]:
    """A learner with ten analyses over two sentences (one not ASCII), three statuses, results,
    two reviews of one task and one of another, two tasks at the same instant; and another
    learner whose analyses must never show."""
    with open_session() as db:
        therapist, second = _user(db, Role.THERAPIST), _user(db, Role.THERAPIST)
        learner, other = _user(db, Role.LEARNER, therapist.user_id), _user(db, Role.LEARNER)
        admin = _user(db, Role.ADMIN)
        sentences = [seeding.sentence(db, text, therapist.user_id) for text in ("bench", '你好，世界 "quoted" ☃')]
        tasks: list[AIAnalysisTask] = []
        for who in (learner, other):
            session = PracticeSession(user_id=who.user_id)
            db.add(session)
            db.flush()
            for i in range(10):
                record = seeding.record(db, session, sentences[i % 2].sentence_id, who.user_id)
                status = ["success", "failure", "pending"][i % 3]
                at = T0 + timedelta(minutes=i if i != 5 else 4)  # 4 and 5: the same instant
                task = AIAnalysisTask(
                    celery_task_id=uuid.uuid4().hex,
                    practice_record_id=record.practice_record_id,
                    user_id=who.user_id,
                    status=status,
                    created_at=at,
                    updated_at=at,
                    completed_at=at + timedelta(seconds=3, microseconds=7) if status != "pending" else None,
                )
                db.add(task)
                db.flush()
                if status == "success":
                    db.add(
                        AIAnalysisResult(
                            task_id=task.task_id,
                            overall_score=[87.25, 0.01, 100.0, 66.67, 0.0, 12.5, 99.99, 33.33, 1.1, 50.0][i],
                            pronunciation_accuracy=90.1,
                            fluency_score=None if i == 3 else 66.67,
                            rhythm_score=100.0,
                            # issue #22: measured (0..100) or null (a result older than the measure)
                            completeness_score=[87.5, None, 100.0, None, 0.0, None, 0.0, None, 12.5, 33.33][i],
                            detailed_analysis={},
                        )
                    )
                tasks.append(task)
        mine = [t for t in tasks if t.user_id == learner.user_id]
        for by, task, minutes in ((therapist, mine[0], 1), (second, mine[0], 2), (therapist, mine[3], 1)):
            db.add(
                TherapistReview(
                    task_id=task.task_id,
                    therapist_id=by.user_id,
                    overall_score=70.5,
                    fluency_score=None,
                    comment="ça va ✓\ttab \x01 \x7f \u2028 </script> \\" if minutes == 2 else None,
                    updated_at=T0 + timedelta(hours=1, minutes=minutes),
                )
            )
        db.commit()
        return {
            "learner": learner.user_id,
            "other": other.user_id,
            "therapist": therapist.user_id,
            "admin": admin.user_id,
            "sentences": [s.sentence_id for s in sentences],
        }


def _token(user_id: uuid.UUID, role: Role) -> str:
    """A token of a new session of the user; for a user that does not exist, a well-signed
    token naming a session that does not exist either."""
    with open_session() as db:
        user = db.get(User, user_id)
        if user is None:
            return create_access_token(user_id, role.value, uuid.uuid4())[0]
        assert user.role == role.value
        return token_for(db, user)


def _fast(user_id: uuid.UUID, query: HistoryQuery) -> bytes | None:
    async def run() -> bytes | None:
        try:
            page = await history_fast.own_history(
                user_id,
                sentence_id=query.sentence_id,
                status=query.status,
                since=query.since,
                cursor=query.cursor,
                limit=query.limit,
            )
            return None if page is None else page.model_dump_json().encode()  # as the router sends it
        finally:
            await close_pool()  # the pool belongs to this event loop

    return asyncio.run(run())


def _slow(token: str, query: HistoryQuery) -> bytes:
    return bytes(history_in_session(token, query).body)


@pytest.fixture(scope="module")
def world(migrated: ServicesUnderTest) -> dict[str, Any]:
    return _world()


def _queries(world: dict[str, Any]) -> list[HistoryQuery]:
    s0 = world["sentences"][1]
    return [
        HistoryQuery(None, None, None, None, None, 20),
        HistoryQuery(world["learner"], None, None, None, None, 100),
        HistoryQuery(None, s0, None, None, None, 20),
        HistoryQuery(None, None, "success", None, None, 20),
        HistoryQuery(None, None, "pending", T0 + timedelta(minutes=2), None, 20),
        HistoryQuery(None, s0, "failure", T0, None, 20),
        HistoryQuery(None, None, None, T0 + timedelta(days=1), None, 20),
    ]


def test_the_fast_page_is_the_ordinary_page_byte_for_byte(world: dict[str, Any], migrated: ServicesUnderTest) -> None:
    token = _token(world["learner"], Role.LEARNER)
    for query in _queries(world):
        slow = _slow(token, query)
        fast = _fast(world["learner"], query)
        if migrated.database_url.startswith("sqlite"):  # the embedded default: always the ordinary path
            assert fast is None
            continue
        assert fast == slow, query
        assert b'"items":[' in slow
    # every item carries the completeness: the stored value after a success, null otherwise
    import json

    items = json.loads(_slow(token, HistoryQuery(None, None, None, None, None, 20)))["items"]
    by_status = {(i["status"], i["completeness_score"]) for i in items}
    assert ("success", 87.5) in by_status and ("success", None) in by_status and ("success", 0.0) in by_status
    assert all(i["completeness_score"] is None for i in items if i["status"] != "success")


@pytest.mark.postgresql
def test_both_paths_page_through_with_the_same_cursors(world: dict[str, Any], migrated: ServicesUnderTest) -> None:
    import json

    token = _token(world["learner"], Role.LEARNER)
    for limit, status in ((3, None), (1, None), (2, "success")):
        cursor, seen, pages = None, [], 0
        while True:
            query = HistoryQuery(None, None, status, None, cursor, limit)
            slow, fast = _slow(token, query), _fast(world["learner"], query)
            assert fast == slow, (limit, cursor)
            page = json.loads(slow)
            seen += [i["task_id"] for i in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == (10 if status is None else 4)
        assert pages >= len(seen) // limit


@pytest.mark.postgresql
def test_other_readers_and_bad_cursors_take_the_ordinary_path(
    world: dict[str, Any], migrated: ServicesUnderTest
) -> None:
    plain = HistoryQuery(None, None, None, None, None, 20)
    assert _fast(world["therapist"], plain) is None  # linked learners, the access log
    assert _fast(world["admin"], plain) is None  # everyone
    assert _fast(uuid.uuid4(), plain) is None  # the token's user is gone: 401 there
    assert _fast(world["learner"], HistoryQuery(None, None, None, None, "not-a-cursor", 20)) is None
    # A learner with no analyses gets an empty page from the fast path too.
    with open_session() as db:
        new = _user(db, Role.LEARNER).user_id
    assert _fast(new, plain) == _slow(_token(new, Role.LEARNER), plain) == b'{"items":[],"next_cursor":null}'


def test_the_endpoint_answers_what_the_ordinary_path_answers(world: dict[str, Any], api: Api) -> None:
    for who, role in (("learner", Role.LEARNER), ("therapist", Role.THERAPIST), ("admin", Role.ADMIN)):
        token = _token(world[who], role)
        headers = {"Authorization": f"Bearer {token}"}
        for params in ({}, {"limit": 2}, {"status": "success", "since": (T0 + timedelta(minutes=3)).isoformat()}):
            r = api.client.get("/api/v1/tasks/analysis", headers=headers, params=params)
            assert r.status_code == 200, r.text
            query = HistoryQuery(None, None, params.get("status"), None, None, int(params.get("limit", 20)))
            if "since" in params:
                query = HistoryQuery(None, None, "success", T0 + timedelta(minutes=3), None, 20)
            assert r.content == _slow(token, query), (who, params)
    bad = {"Authorization": f"Bearer {_token(uuid.uuid4(), Role.LEARNER)}"}
    assert api.client.get("/api/v1/tasks/analysis", headers=bad).status_code == 401
    learner = {"Authorization": f"Bearer {_token(world['learner'], Role.LEARNER)}"}
    r = api.client.get("/api/v1/tasks/analysis", headers=learner, params={"user_id": str(world["other"])})
    assert r.status_code == 404
