"""Single use under concurrency: two learners racing for one invitation code, two saves of a new
review at once. Real database sessions in threads (PostgreSQL when the suite has it)."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from tests.support import Api
from vocalborn.auth.models import User
from vocalborn.db import open_session
from vocalborn.learning import links, reviews


def _race(n: int, work: Any) -> list[Any]:
    barrier = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = work(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out


def test_two_learners_racing_for_one_code_link_exactly_one(api: Api, therapist: dict[str, Any]) -> None:
    learners = [api.register("learner") for _ in range(4)]
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]

    def accept(i: int) -> str:
        with open_session() as db:
            user = db.get(User, uuid.UUID(learners[i]["user"]["user_id"]))
            assert user is not None
            links.accept_invitation(db, user, code)
            return "linked"

    outcomes = _race(len(learners), accept)
    assert outcomes.count("linked") == 1, outcomes
    assert all(isinstance(o, links.Gone) for o in outcomes if o != "linked"), outcomes
    linked = [api.client.get("/api/v1/auth/me", headers=lrn["headers"]).json()["therapist_id"] for lrn in learners]
    assert linked.count(therapist["user"]["user_id"]) == 1 and linked.count(None) == 3


def test_concurrent_saves_of_one_review_keep_every_version(api: Api) -> None:
    therapist = api.register("therapist")
    learner = api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 200
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]

    def save(i: int) -> int:
        with open_session() as db:
            user = db.get(User, uuid.UUID(therapist["user"]["user_id"]))
            assert user is not None
            review, _ = reviews.save_review(db, user, uuid.UUID(task_id), {"overall_score": 60 + i})
            return review.version

    outcomes = _race(3, save)
    assert sorted(outcomes) == [1, 2, 3], outcomes
    got = api.client.get(f"/api/v1/tasks/analysis/{task_id}/review?history=true", headers=learner["headers"]).json()
    (review,) = got["reviews"]
    assert review["version"] == 3 and [h["version"] for h in review["history"]] == [1, 2, 3]
    assert {h["overall_score"] for h in review["history"]} == {60, 61, 62}
    assert review["overall_score"] == review["history"][-1]["overall_score"]
