"""Issue #26, attempts that count: a silent, too short or other sentence's attempt is kept, marked
not counted with the reason (in both languages), and left out of progress, the dashboard's mean
and week and the practice set's best/last; the learner deletes an attempt (recording and result
erased), the therapist cannot.

In-process runner calls against the real database (both success paths: the one-statement
PostgreSQL one and the ordinary one); no worker consumes this module's messages."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests import verdicts
from tests.support import Api, recording
from vocalborn.practice import counting

GOOD = {"alignment": {"sentence_match": 1.0}, "timing_analysis": {"attempt_duration": 3.1, "reference_duration": 3.0}}
WRONG = {"alignment": {"sentence_match": 0.12}, "timing_analysis": {"attempt_duration": 3.4, "reference_duration": 3.0}}
SHORT = {
    "alignment": {"sentence_match": 0.0},
    "timing_analysis": {"attempt_duration": 0.9, "reference_duration": 3.0, "attempt_speech_time": 0.5},
}


def test_what_counts_is_decided_from_the_engines_detail() -> None:
    assert counting.decide(GOOD) == (True, None)
    assert counting.decide(WRONG) == (False, "wrong_sentence")
    assert counting.decide(SHORT) == (False, "too_short")  # a short attempt is short first, not "wrong"
    silent = {"timing_analysis": {"attempt_duration": 2.0, "reference_duration": 2.0, "attempt_speech_time": 0.1}}
    assert counting.decide(silent) == (False, "silent")
    # a one-character sentence: a 0.8 s attempt of a 0.7 s reference is fine
    one = {"timing_analysis": {"attempt_duration": 0.8, "reference_duration": 0.7, "attempt_speech_time": 0.4}}
    assert counting.decide(one) == (True, None)
    # half of the reference's speech missing is not enough to be "too short"; a fifth of it is
    part = {"timing_analysis": {"attempt_speech_time": 1.0, "reference_speech_time": 2.0}}
    assert counting.decide(part) == (True, None)
    little = {"timing_analysis": {"attempt_speech_time": 0.4, "reference_speech_time": 2.0}}
    assert counting.decide(little) == (False, "too_short")
    # another engine, an older result, nonsense: counts
    for other in ({}, {"engine": "noop"}, None, {"alignment": {"sentence_match": "low"}}, {"timing_analysis": 3}):
        assert counting.decide(other) == (True, None)


def test_every_reason_has_a_text_in_both_languages() -> None:
    for reason, texts in counting.REASONS.items():
        assert set(texts) == {"zh-TW", "en"}
        assert counting.reason_text(reason, "en") == texts["en"] and texts["en"].isascii()
        assert counting.reason_text(reason, "zh-TW") == texts["zh-TW"] and not texts["zh-TW"].isascii()
    assert counting.reason_text(None, "en") is None


def _report(overall: float, detail: dict[str, Any]) -> Any:
    from vocalborn.analysis.types import AnalysisReport

    return AnalysisReport(
        overall, overall, overall, overall, verdicts.verdict_detail(detail), analysis_model_version="test/1"
    )


def _linked(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    therapist = api.register("therapist")
    learner = api.register("learner")
    code = api.client.post("/api/v1/links/invitations", headers=therapist["headers"]).json()["code"]
    assert api.client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).status_code == 200
    return therapist, learner


def _attempt(api: Api, learner: dict[str, Any], session_id: str, sentence_id: str, report: Any) -> dict[str, str]:
    from vocalborn.tasks.worker import runner

    r = api.record(learner, session_id, sentence_id, recording(voice="Male1", fmt="mp3"), "try.mp3")
    assert r.status_code == 201, r.text
    record_id = r.json()["practice_record_id"]
    task_id = api.submit(learner, record_id).json()["task_id"]
    claim = runner.claim_task(uuid.UUID(task_id), "test-worker/1")
    assert isinstance(claim, runner.Claim)
    assert runner._complete(claim, report) is runner.Outcome.SUCCEEDED
    return {"record_id": record_id, "task_id": task_id}


@pytest.mark.parametrize("path", ["fast", "ordinary"])
def test_a_wrong_sentence_is_kept_and_marked_on_the_result_record_and_history(
    api: Api, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    from vocalborn.tasks.worker import fastrun

    if path == "ordinary":
        monkeypatch.setattr(fastrun, "_database_url", lambda: None)
    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sentence["sentence_id"], _report(12.0, WRONG))
    for who in (learner, therapist):  # shown to both, with the reason
        result = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=who["headers"]).json()
        assert (result["counted"], result["not_counted_reason"]) == (False, "wrong_sentence")
        assert result["not_counted_text"] == counting.REASONS["wrong_sentence"]["en"]
    zh = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result?lang=zh-TW", headers=learner["headers"])
    assert zh.json()["not_counted_text"] == counting.REASONS["wrong_sentence"]["zh-TW"]
    record = api.client.get(f"/api/v1/practice/records/{done['record_id']}", headers=learner["headers"]).json()
    assert (record["counted"], record["not_counted_reason"]) == (False, "wrong_sentence")
    for who, query in ((learner, ""), (therapist, f"?user_id={learner['user']['user_id']}")):
        items = api.client.get(f"/api/v1/tasks/analysis{query}", headers=who["headers"]).json()["items"]
        item = next(i for i in items if i["task_id"] == done["task_id"])
        assert (item["counted"], item["not_counted_reason"]) == (False, "wrong_sentence")
        assert item["not_counted_text"] == counting.REASONS["wrong_sentence"]["en"]
    good = _attempt(api, learner, session, sentence["sentence_id"], _report(80.0, GOOD))
    result = api.client.get(f"/api/v1/tasks/analysis/{good['task_id']}/result", headers=learner["headers"]).json()
    assert (result["counted"], result["not_counted_reason"], result["not_counted_text"]) == (True, None, None)


def test_attempts_that_do_not_count_change_no_trend_mean_or_best(api: Api) -> None:
    therapist, learner = _linked(api)
    uid = learner["user"]["user_id"]
    sentence = api.sentence(therapist, recording())
    sid = sentence["sentence_id"]
    r = api.client.post(f"/api/v1/learners/{uid}/assignments", headers=therapist["headers"], json={"sentence_id": sid})
    assert r.status_code == 201, r.text
    session = api.session(learner)["practice_session_id"]
    _attempt(api, learner, session, sid, _report(60.0, GOOD))
    _attempt(api, learner, session, sid, _report(80.0, GOOD))
    _attempt(api, learner, session, sid, _report(5.0, WRONG))
    _attempt(api, learner, session, sid, _report(3.0, SHORT))

    progress = api.client.get(f"/api/v1/learners/{uid}/progress", headers=therapist["headers"]).json()
    [entry] = progress["sentences"]
    assert (entry["attempts"], entry["not_counted_attempts"]) == (2, 2)
    assert [p["overall_score"] for p in entry["points"]] == [60.0, 80.0]
    assert entry["trend"]["overall_score"]["last_n_mean"] == 70.0
    assert "，" not in entry["still_deviating"] and "。" not in entry["still_deviating"]  # punctuation never

    rows = api.client.get("/api/v1/therapists/me/learners", headers=therapist["headers"]).json()
    row = next(r for r in rows if r["user_id"] == uid)
    assert row["mean_overall_last_10"] == 70.0
    assert row["attempts_this_week"] == 2

    [assignment] = api.client.get(f"/api/v1/learners/{uid}/assignments", headers=learner["headers"]).json()
    assert (assignment["attempts"], assignment["best_overall"], assignment["last_overall"]) == (2, 80.0, 80.0)


def test_the_learner_deletes_an_attempt_and_its_recording_and_result_go(api: Api) -> None:
    from vocalborn.db import open_session
    from vocalborn.practice.models import PracticeRecord
    from vocalborn.storage import get_storage

    therapist, learner = _linked(api)
    other = api.register("learner")
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sentence["sentence_id"], _report(5.0, WRONG))
    review = api.client.put(
        f"/api/v1/tasks/analysis/{done['task_id']}/review", headers=therapist["headers"], json={"comment": "again"}
    )
    assert review.status_code == 201, review.text
    with open_session() as db:
        record = db.get(PracticeRecord, uuid.UUID(done["record_id"]))
        assert record is not None
        audio = get_storage().path(record.audio_key)
    assert audio.exists()
    url = f"/api/v1/practice/records/{done['record_id']}"

    refused = api.client.delete(url, headers=therapist["headers"])
    assert refused.status_code == 403, refused.text
    assert api.client.delete(url, headers=other["headers"]).status_code == 404
    assert api.client.delete(url).status_code == 401
    assert audio.exists()

    gone = api.client.delete(url, headers=learner["headers"])
    assert gone.status_code == 204, gone.text
    assert not audio.exists()
    assert api.client.get(url, headers=learner["headers"]).status_code == 404
    task_url = f"/api/v1/tasks/analysis/{done['task_id']}"
    assert api.client.get(f"{task_url}/result", headers=learner["headers"]).status_code == 404
    assert api.client.get(f"{task_url}/status", headers=learner["headers"]).status_code == 404
    items = api.client.get("/api/v1/tasks/analysis", headers=learner["headers"]).json()["items"]
    assert done["task_id"] not in [i["task_id"] for i in items]
    assert api.client.delete(url, headers=learner["headers"]).status_code == 404  # once


def test_an_attempt_still_being_analysed_is_not_deleted(api: Api) -> None:
    therapist, learner = _linked(api)
    ready = api.ready_record(therapist, learner)
    record_id = ready["record"]["practice_record_id"]
    assert api.submit(learner, record_id).status_code == 202
    r = api.client.delete(f"/api/v1/practice/records/{record_id}", headers=learner["headers"])
    assert r.status_code == 409, r.text
    assert "cancel" in r.json()["detail"]
    assert api.client.get(f"/api/v1/practice/records/{record_id}", headers=learner["headers"]).status_code == 200


@pytest.mark.parametrize("path", ["fast", "ordinary"])
def test_a_too_short_attempt_is_told_to_record_the_whole_sentence_not_that_it_is_another_sentence(
    api: Api, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    from vocalborn.analysis import suggest
    from vocalborn.analysis.types import AnalysisReport
    from vocalborn.tasks.worker import fastrun

    if path == "ordinary":
        monkeypatch.setattr(fastrun, "_database_url", lambda: None)
    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    # what the engine says of a 0.9 s attempt: its sentence gate reads it as "another sentence"
    engine = {
        lang: (suggest._TEXT[key]["mismatch"].format(share=0.0), [suggest._TEXT[key]["mismatch_area"]])
        for lang, key in (("zh-TW", "zh"), ("en", "en"))
    }
    detail = verdicts.verdict_detail(SHORT)
    detail["localized"] = {lang: {"suggestions": s, "improvement_areas": a} for lang, (s, a) in engine.items()}
    report = AnalysisReport(
        20.0, 20.0, 20.0, 20.0, detail, suggestions=engine["zh-TW"][0], improvement_areas=engine["zh-TW"][1],
        analysis_model_version="test/1",
    )  # fmt: skip
    done = _attempt(api, learner, session, sentence["sentence_id"], report)
    url = f"/api/v1/tasks/analysis/{done['task_id']}/result"
    stored = api.client.get(url, headers=learner["headers"]).json()
    assert (stored["counted"], stored["not_counted_reason"]) == (False, "too_short")
    assert stored["overall_score"] == 20.0  # the engine's scores untouched
    assert stored["suggestions"] == counting.ADVICE["too_short"]["zh-TW"][0]  # the language the engine wrote
    assert stored["detailed_analysis"]["engine_localized"]["en"]["suggestions"] == engine["en"][0]
    for lang in ("en", "zh-TW"):
        body = api.client.get(f"{url}?lang={lang}", headers=learner["headers"]).json()
        text, area = counting.ADVICE["too_short"][lang]
        assert (body["suggestions"], body["improvement_areas"]) == (text, [area])
        assert "reference sentence" not in body["suggestions"] and "不太一樣" not in body["suggestions"]
    assert "whole sentence" in counting.ADVICE["too_short"]["en"][0]
    # a wrong sentence keeps the engine's "not the same sentence" advice
    detail = verdicts.verdict_detail(WRONG)
    detail["localized"] = {lang: {"suggestions": s, "improvement_areas": a} for lang, (s, a) in engine.items()}
    wrong = AnalysisReport(
        12.0, 12.0, 12.0, 12.0, detail, suggestions=engine["en"][0], improvement_areas=engine["en"][1],
        analysis_model_version="test/1",
    )  # fmt: skip
    done = _attempt(api, learner, session, sentence["sentence_id"], wrong)
    body = api.client.get(f"/api/v1/tasks/analysis/{done['task_id']}/result", headers=learner["headers"]).json()
    assert (body["not_counted_reason"], body["suggestions"]) == ("wrong_sentence", engine["en"][0])


def test_the_learner_report_keeps_the_language_the_engine_wrote() -> None:
    english = counting.learner_report({}, "silent", "Only English here.", ["x"])
    assert english[1:] == (counting.ADVICE["silent"]["en"][0], [counting.ADVICE["silent"]["en"][1]])
    assert english[0]["localized"]["zh-TW"]["suggestions"] == counting.ADVICE["silent"]["zh-TW"][0]
    assert counting.learner_report({}, "too_short", "", [])[1:] == ("", [])  # none asked for: none given
    assert counting.learner_report({"a": 1}, None, "s", ["a"]) == ({"a": 1}, "s", ["a"])
