"""Issue #22 around the engine: the completeness is stored with the result (column and engine JSON,
on both success paths), returned by the result and the history, null for older results and refused
out of range; the learner's pitch baseline is built from their earlier attempts only.

In-process runner calls against the real database; no worker consumes this module's messages
while the assertions run."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests import seeding, verdicts
from tests.services import ServicesUnderTest
from tests.support import Api


def _report(completeness: float | None, detail: dict[str, Any] | None = None) -> Any:
    from vocalborn.analysis.types import AnalysisReport

    return AnalysisReport(
        72.5,
        70.0,
        80.0,
        75.25,
        detail if detail is not None else verdicts.verdict_detail({"timing_analysis": {"note": "made by the test"}}),
        completeness_score=completeness,
        analysis_model_version="vocalborn-phonetic-3.0",
    )


def _finish(api: Api, therapist: dict[str, Any], learner: dict[str, Any], report: Any) -> str:
    from vocalborn.tasks.worker import runner

    record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    claim = runner.claim_task(uuid.UUID(task_id), "test-worker/1")
    assert isinstance(claim, runner.Claim)
    runner.check_report(report)
    assert runner._complete(claim, report) is runner.Outcome.SUCCEEDED
    return str(task_id)


@pytest.mark.parametrize("path", ["fast", "ordinary"])
def test_the_completeness_and_verdicts_reach_the_result_and_the_history(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any], monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    from vocalborn.tasks.worker import fastrun

    if path == "ordinary":
        monkeypatch.setattr(fastrun, "_database_url", lambda: None)
    task_id = _finish(api, therapist, learner, _report(verdicts.COMPLETENESS))
    r = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"])
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["completeness_score"] == verdicts.COMPLETENESS == 92.31
    da = result["detailed_analysis"]
    assert da["completeness_score"] == verdicts.COMPLETENESS  # in the engine's JSON stored too
    assert da["characters"] == verdicts.characters() and da["insertions"] == verdicts.INSERTIONS
    items = api.client.get("/api/v1/tasks/analysis", headers=learner["headers"]).json()["items"]
    assert [i["completeness_score"] for i in items if i["task_id"] == task_id] == [verdicts.COMPLETENESS]


def test_a_result_without_completeness_answers_null(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    detail = {"timing_analysis": {"note": "an engine before issue 22"}, "characters": []}
    task_id = _finish(api, therapist, learner, _report(None, detail))
    result = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"]).json()
    assert result["completeness_score"] is None
    assert result["detailed_analysis"] == detail  # stored as the engine wrote it, nothing added
    items = api.client.get("/api/v1/tasks/analysis", headers=learner["headers"]).json()["items"]
    assert [i["completeness_score"] for i in items if i["task_id"] == task_id] == [None]


@pytest.mark.parametrize("value", [100.5, -0.1, float("nan"), "91", True])
def test_an_invalid_completeness_is_refused_as_a_permanent_error(value: Any) -> None:
    from vocalborn.tasks.worker import runner

    with pytest.raises(runner.PermanentError, match="completeness_score"):
        runner.check_report(_report(value))
    for fine in (None, 0, 0.0, 100, 55.55):
        runner.check_report(_report(fine))


def test_the_weighted_median_and_the_baseline_from_profiles() -> None:
    from vocalborn.tasks.worker.baseline import baseline_from_profiles, weighted_median

    assert weighted_median([]) is None
    assert weighted_median([(5.0, 1.0)]) == 5.0
    assert weighted_median([(1.0, 1.0), (3.0, 1.0)]) == 2.0  # on the boundary: between the two
    assert weighted_median([(180.0, 3.0), (210.0, 2.0)]) == 180.0
    assert weighted_median([(180.0, 1.0), (210.0, 2.0), (400.0, 0.5)]) == 210.0  # one outlier moves nothing
    profiles = [
        {"median_hz": 210.0, "spread_semitones": 3.0, "voiced_seconds": 2.0},
        {"median_hz": 180.0, "spread_semitones": 5.0, "voiced_seconds": 3.0},
        None,  # a result older than the profile
        {"median_hz": 999.0, "spread_semitones": 9.0, "voiced_seconds": 0.0},  # no voice: ignored
        {"median_hz": "high", "spread_semitones": 4.0, "voiced_seconds": 1.0},  # malformed: ignored
    ]
    assert baseline_from_profiles(profiles) == {"median_hz": 180.0, "spread_semitones": 5.0}
    assert baseline_from_profiles([None, {}, {"median_hz": 200.0}]) is None


def test_the_baseline_reads_only_the_learners_earlier_successes(api: Api, migrated: ServicesUnderTest) -> None:
    """One query: the same learner, successful, made before the task, newest first, at most N."""
    from vocalborn.db import open_session
    from vocalborn.sqltypes import utcnow
    from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask
    from vocalborn.tasks.worker.baseline import earlier_profiles, with_pitch_baseline

    t0 = utcnow() - timedelta(hours=1)
    with open_session() as db:
        learner, sentence, session = seeding.learner_with_sentence(db, "baseline", "媽")
        other, other_sentence, other_session = seeding.learner_with_sentence(db, "baseline-other", "麻")

        def task(who: Any, sess: Any, sid: uuid.UUID, minutes: int, status: str, profile: Any) -> uuid.UUID:
            record = seeding.record(db, sess, sid, who.user_id)
            at = t0 + timedelta(minutes=minutes)
            row = AIAnalysisTask(
                celery_task_id=uuid.uuid4().hex,
                practice_record_id=record.practice_record_id,
                user_id=who.user_id,
                status=status,
                created_at=at,
                updated_at=at,
            )
            db.add(row)
            db.flush()
            if status == "success":
                detail: dict[str, Any] = {"engine": "test"}
                if profile is not None:
                    detail["pitch_profile"] = profile
                db.add(AIAnalysisResult(task_id=row.task_id, overall_score=50.0, detailed_analysis=detail))
            return row.task_id

        def prof(hz: float, seconds: float) -> dict[str, float]:
            return {"median_hz": hz, "spread_semitones": hz / 60, "voiced_seconds": seconds}

        sid, osid = sentence.sentence_id, other_sentence.sentence_id
        first = task(learner, session, sid, 0, "success", None)  # before issue 22: no profile
        task(learner, session, sid, 1, "success", prof(200.0, 2.0))
        task(learner, session, sid, 2, "failure", None)
        task(learner, session, sid, 3, "success", prof(230.0, 1.0))
        task(other, other_session, osid, 4, "success", prof(110.0, 9.0))  # another learner
        now = task(learner, session, sid, 5, "pending", None)
        task(learner, session, sid, 6, "success", prof(400.0, 9.0))  # after the task: not earlier
        db.commit()

    with open_session() as db:
        assert earlier_profiles(db, now) == [prof(230.0, 1.0), prof(200.0, 2.0), None]
        assert earlier_profiles(db, now, limit=1) == [prof(230.0, 1.0)]
        assert earlier_profiles(db, first) == []
    params = {"text": "媽", "language": "en"}
    assert with_pitch_baseline(now, params) == {
        **params,
        "pitch_baseline": {"median_hz": 200.0, "spread_semitones": round(200.0 / 60, 3)},
    }
    assert with_pitch_baseline(first, params) == params  # nothing earlier: no baseline
    assert with_pitch_baseline(uuid.uuid4(), params) == params  # no such task

    # the claim reads the same profiles in its own statement on PostgreSQL (no query of its own
    # then); the ordinary claim leaves them to the query above
    from vocalborn.tasks.worker import runner

    claim = runner.claim_task(now, "test-worker/1")
    assert isinstance(claim, runner.Claim)
    if migrated.database_url.startswith("postgresql"):
        assert claim.pitch_profiles == [prof(230.0, 1.0), prof(200.0, 2.0), None]
    else:
        assert claim.pitch_profiles is None
    assert with_pitch_baseline(now, params, claim.pitch_profiles) == with_pitch_baseline(now, params)
    assert with_pitch_baseline(now, params, []) == params


def test_a_baseline_that_cannot_be_read_never_fails_the_analysis(monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    import vocalborn.db
    from vocalborn.tasks.worker.baseline import with_pitch_baseline

    def unavailable() -> Any:
        raise OperationalError("SELECT", None, ConnectionRefusedError("the database went away"))

    monkeypatch.setattr(vocalborn.db, "open_session", unavailable)
    assert with_pitch_baseline(uuid.uuid4(), {"text": "媽"}) == {"text": "媽"}
