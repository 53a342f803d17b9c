"""Issue #26, goals: an assignment's weekly target, days and due date (validated), the learner's
week (due today, streak, minutes) and the therapist's dose and flags, from attempts that count.

In-process runner calls against the real database; no worker consumes this module's messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from tests.learning.test_counted import GOOD, WRONG, _attempt, _linked, _report
from tests.support import Api, recording


def _assign(api: Api, therapist: dict[str, Any], uid: str, **body: Any) -> Any:
    return api.client.post(f"/api/v1/learners/{uid}/assignments", headers=therapist["headers"], json=body)


def _row(api: Api, therapist: dict[str, Any], uid: str) -> dict[str, Any]:
    rows = api.client.get("/api/v1/therapists/me/learners", headers=therapist["headers"]).json()
    return dict(next(r for r in rows if r["user_id"] == uid))


def _row_at(therapist: dict[str, Any], uid: str, now: datetime) -> dict[str, Any]:
    """The therapist's dashboard row of the learner as it reads at ``now`` (an injected date)."""
    from vocalborn.auth.models import User
    from vocalborn.db import open_session
    from vocalborn.learning.dashboard import dashboard

    with open_session() as db:
        user = db.get(User, uuid.UUID(therapist["user"]["user_id"]))
        assert user is not None
        return dict(next(r for r in dashboard(db, user, now) if str(r["user_id"]) == uid))


def _this_week(days: int, hours: int = 12) -> datetime:
    """A moment of this (UTC) week: the attempts the tests make now are in its week."""
    from vocalborn.learning.goals import week_start

    return week_start(datetime.now(UTC)) + timedelta(days=days, hours=hours)


def test_five_attempts_on_three_days_practised_twice_is_40_percent_and_below_dose(api: Api) -> None:
    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording())["sentence_id"]
    r = _assign(api, therapist, uid, sentence_id=sid, target_attempts_per_week=5, days_per_week=3)
    assert r.status_code == 201, r.text
    assert (r.json()["target_attempts_per_week"], r.json()["days_per_week"]) == (5, 3)
    sunday = _this_week(6)  # 20:00 in Taipei (the default zone): six days of the week are over
    before = _row_at(therapist, uid, sunday)
    assert before["dose_met_percent"] == 0.0 and before["flags"] == ["no_practice", "below_dose"]
    assert _row(api, therapist, uid)["dose_met_percent"] == 0.0  # the API's row, at the real now
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, sid, _report(70.0, GOOD))
    _attempt(api, learner, session, sid, _report(75.0, GOOD))
    row = _row_at(therapist, uid, sunday)
    assert row["dose_met_percent"] == 40.0  # below half of 6/7 of the dose (42.9 %)
    assert row["flags"] == ["below_dose"] and row["flagged"] is True
    # an attempt that does not count changes neither the dose nor the flags
    _attempt(api, learner, session, sid, _report(2.0, WRONG))
    assert _row(api, therapist, uid)["dose_met_percent"] == 40.0
    goals = api.client.get(f"/api/v1/learners/{uid}/goals", headers=learner["headers"])
    assert goals.status_code == 200, goals.text
    g = goals.json()
    assert (g["attempts_this_week"], g["days_practised_this_week"], g["streak_days"]) == (2, 1, 1)
    assert g["dose_met_percent"] == 40.0 and g["minutes_this_week"] > 0
    [item] = g["items"]
    assert (item["attempts_this_week"], item["met"], item["minutes_due_today"]) == (2, False, None)
    # the therapist reaches the same figures
    assert api.client.get(f"/api/v1/learners/{uid}/goals", headers=therapist["headers"]).json()["items"] == [item]
    # three more that count meet the dose
    for _ in range(3):
        _attempt(api, learner, session, sid, _report(80.0, GOOD))
    row = _row_at(therapist, uid, sunday)
    assert row["dose_met_percent"] == 100.0 and row["flags"] == [] and row["flagged"] is False


def test_below_dose_waits_for_the_first_day_of_the_learners_week_to_end(api: Api) -> None:
    from zoneinfo import ZoneInfo

    from vocalborn.learning import goals

    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording())["sentence_id"]
    assert _assign(api, therapist, uid, sentence_id=sid, target_attempts_per_week=10).status_code == 201
    # Monday morning in Taipei, no attempt yet: nothing expected, so no below_dose
    monday = _this_week(0, hours=1)
    assert _row_at(therapist, uid, monday)["flags"] == ["no_practice"]
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, sid, _report(70.0, GOOD))  # one attempt of ten: 10 %
    for day, flagged in ((0, False), (1, True), (2, True), (3, True), (6, True)):
        row = _row_at(therapist, uid, _this_week(day))
        assert row["dose_met_percent"] == 10.0  # the share of the week's target
        assert ("below_dose" in row["flags"]) is flagged, (day, row)
    # the days are the learner's: Monday 20:00 UTC is already Tuesday in Taipei, still Monday in London
    late_monday = _this_week(0, hours=20)
    assert goals.expected_share(late_monday, ZoneInfo("Asia/Taipei")) == 1 / 7
    assert goals.expected_share(late_monday, ZoneInfo("Europe/London")) == 0.0
    assert not goals.below_dose(0.0, late_monday, ZoneInfo("Europe/London"))
    assert goals.below_dose(7.0, late_monday, ZoneInfo("Asia/Taipei"))  # Tuesday there: below half the dose
    assert not goals.below_dose(50.0, _this_week(6), None)  # half is enough
    assert not goals.below_dose(None, _this_week(6), None)


def test_what_is_due_today_the_streak_and_minutes_on_a_chosen_day(api: Api) -> None:
    from vocalborn.db import open_session
    from vocalborn.learning.goals import learner_goals, week_start
    from vocalborn.tasks.models import AIAnalysisTask

    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording())["sentence_id"]
    monday = week_start(datetime.now(UTC))
    wednesday = monday + timedelta(days=2, hours=12)
    due = datetime.now(UTC).date() + timedelta(days=1)
    r = _assign(api, therapist, uid, sentence_id=sid, target_attempts_per_week=5, due_on=due.isoformat())
    assert r.status_code == 201, r.text
    r = _assign(api, therapist, uid, sentence_id=sid, days_per_week=3)  # again: updates what it gives
    assert r.status_code == 200, r.text
    assert (r.json()["target_attempts_per_week"], r.json()["days_per_week"], r.json()["due_on"]) == (
        5,
        3,
        due.isoformat(),
    )
    session = api.session(learner)["practice_session_id"]
    done = [_attempt(api, learner, session, sid, _report(70.0, GOOD)) for _ in range(2)]
    _attempt(api, learner, session, sid, _report(5.0, WRONG))  # never counted
    with open_session() as db:  # Monday and Tuesday, as the clock would have made them
        for n, d in enumerate(done):
            db.execute(
                update(AIAnalysisTask)
                .where(AIAnalysisTask.task_id == uuid.UUID(d["task_id"]))  # type: ignore[arg-type]
                .values(created_at=monday + timedelta(days=n, hours=9))
            )
        db.commit()
        g = learner_goals(db, uuid.UUID(uid), now=wednesday)
    [item] = g["items"]
    # 5 on 3 days; 2 done on 2 days before today: the 3 left are due today, the third day
    assert (item["attempts_this_week"], item["days_practised_this_week"], item["attempts_due_today"]) == (2, 2, 3)
    assert g["streak_days"] == 2  # Monday and Tuesday; today is not over yet
    assert g["dose_met_percent"] == 40.0
    assert item["due_this_week"] is (due <= monday.date() + timedelta(days=6)) and item["met"] is False
    assert item["due_today"] is (due == wednesday.date())
    assert item["overdue"] is (due < wednesday.date())  # passed, and the target is not met
    assert g["week_start"] == monday.date() and g["today"] == wednesday.date()
    assert g["minutes_this_week"] == item["minutes_this_week"] > 0
    thursday = learner_goals_at(uid, wednesday + timedelta(days=1))
    assert thursday["streak_days"] == 0  # Wednesday was missed


def learner_goals_at(uid: str, now: datetime) -> dict[str, Any]:
    from vocalborn.db import open_session
    from vocalborn.learning.goals import learner_goals

    with open_session() as db:
        return learner_goals(db, uuid.UUID(uid), now=now)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"target_attempts_per_week": 0}, "greater than or equal to 1"),
        ({"target_attempts_per_week": 1000}, "less than or equal to 100"),
        ({"target_minutes_per_week": -5}, "greater than or equal to 1"),
        ({"days_per_week": 8, "target_attempts_per_week": 10}, "less than or equal to 7"),
        ({"days_per_week": 5, "target_attempts_per_week": 2}, "more practice days than"),
        ({"due_on": "2020-01-01"}, "due_on: the date is in the past"),
        ({"due_on": "next tuesday"}, "valid date"),
        ({"target_attempts_per_week": "many"}, "valid integer"),
        ({"every_day": True}, "Extra inputs"),
    ],
)
def test_nonsense_goals_are_refused_with_a_clear_message(api: Api, body: dict[str, Any], message: str) -> None:
    therapist, learner = _linked(api)
    sid = api.sentence(therapist, recording())["sentence_id"]
    r = _assign(api, therapist, learner["user"]["user_id"], sentence_id=sid, **body)
    assert r.status_code == 422, r.text
    assert message in r.text
    listed = api.client.get(f"/api/v1/learners/{learner['user']['user_id']}/assignments", headers=learner["headers"])
    assert listed.json() == []  # nothing half-written


def test_falling_scores_and_no_practice_count_only_attempts_that_count(api: Api) -> None:
    therapist, learner = _linked(api)
    idle = api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=idle["headers"], json={"code": code}).status_code == 200
    uid = learner["user"]["user_id"]
    sid = api.sentence(therapist, recording())["sentence_id"]
    session = api.session(learner)["practice_session_id"]
    for score in (90.0, 90.0, 50.0, 50.0, 50.0):
        _attempt(api, learner, session, sid, _report(score, GOOD))
    row = _row(api, therapist, uid)
    assert row["flags"] == ["falling_scores"] and row["dose_met_percent"] is None
    assert _row(api, therapist, idle["user"]["user_id"])["flags"] == ["no_practice"]
    # an idle learner whose only attempts do not count has not practised
    other, other_learner = therapist, api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=other["headers"]).json()["code"]
    r = api.client.post("/api/v1/links/accept", headers=other_learner["headers"], json={"code": code})
    assert r.status_code == 200
    s2 = api.session(other_learner)["practice_session_id"]
    _attempt(api, other_learner, s2, sid, _report(3.0, WRONG))
    assert _row(api, therapist, other_learner["user"]["user_id"])["flags"] == ["no_practice"]
