"""Issue #26, language: in English mode no Chinese in an upload error, a task's current_step (on the
hot status route, the ordinary one and the events), a failed task's error, or `vocalborn submit
--lang en`'s progress; in zh-TW mode no English half of a bilingual message either.

In-process runner calls against the real database; no worker consumes this module's messages."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.learning.test_counted import GOOD, _attempt, _linked, _report
from tests.support import Api, recording

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


@pytest.mark.parametrize("how", ["query", "header"])
def test_an_upload_error_in_english_mode_has_no_chinese(api: Api, how: str) -> None:
    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    url = f"/api/v1/practice/sessions/{session}/records"
    headers = dict(learner["headers"])
    if how == "header":
        headers["Accept-Language"] = "en-US,en;q=0.9"
    else:
        url += "?lang=en"
    body = {"data": {"sentence_id": sentence["sentence_id"]}, "files": {"audio": ("x.wav", b"this is not audio" * 50)}}
    r = api.client.post(url, headers=headers, **body)
    assert r.status_code in (415, 422), r.text
    text = r.text.encode().decode("unicode_escape") if "\\u" in r.text else r.text
    assert not CJK.search(text), r.text
    message = r.json().get("message") or r.json()["detail"]
    assert message.startswith("audio: ") and "audio" in message[7:].lower(), message

    zh = api.client.post(
        f"/api/v1/practice/sessions/{session}/records?lang=zh-TW", headers=learner["headers"], **body
    ).json()
    message = zh.get("message") or zh["detail"]
    assert CJK.search(message) and not re.search(r"[A-Za-z]{4,}", message.removeprefix("audio")), message


def test_one_language_keeps_the_prefix_and_takes_the_callers_half() -> None:
    from vocalborn.i18n import translate

    both = "no result: the analysis failed: 錄音裡聽不到聲音，請靠近麥克風再錄一次 (The recording is silent: please record again.)"
    assert translate(both, "en") == "no result: the analysis failed: The recording is silent: please record again."
    assert translate(both, "zh-TW") == "沒有結果：分析失敗：錄音裡聽不到聲音，請靠近麥克風再錄一次"
    assert translate("task not found", "en") == "task not found"  # plain English stays


def test_current_step_in_the_language_asked_for_on_every_status_path(api: Api) -> None:
    from vocalborn.analysis.types import STEPS

    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sentence["sentence_id"], _report(80.0, GOOD))
    url = f"/api/v1/tasks/analysis/{done['task_id']}"
    zh, en = STEPS[-1][1], STEPS[-1][2]

    def step(who: dict[str, Any], query: str = "", **headers: str) -> str:
        r = api.client.get(f"{url}/status{query}", headers={**who["headers"], **headers})
        assert r.status_code == 200, r.text
        return str(r.json()["current_step"])

    for who in (learner, therapist):  # the owner's hot route, the therapist's ordinary one
        assert step(who) == zh  # as stored, without a language asked for
        assert step(who, "?lang=en") == en
        assert step(who, **{"Accept-Language": "en-US,en;q=0.9"}) == en
        assert step(who, "?lang=zh-TW", **{"Accept-Language": "en"}) == zh  # the parameter wins
    events = api.client.get(f"{url}/events?lang=en", headers=learner["headers"]).json()
    assert events[-1]["current_step"] == en and not any(CJK.search(e["current_step"] or "") for e in events)
    session_view = api.client.get(
        f"/api/v1/tasks/analysis/session/{session}/status", headers={**learner["headers"], "Accept-Language": "en"}
    ).json()
    assert [t["current_step"] for t in session_view["tasks"]] == [en]


def test_a_failed_tasks_error_in_english_mode(api: Api) -> None:
    from vocalborn.tasks.worker import runner

    therapist, learner = _linked(api)
    ready = api.ready_record(therapist, learner)
    task_id = api.submit(learner, ready["record"]["practice_record_id"]).json()["task_id"]
    claim = runner.claim_task(uuid.UUID(task_id), "test-worker/1")
    assert isinstance(claim, runner.Claim)
    silent = "錄音裡聽不到聲音，請靠近麥克風再錄一次 (The recording is silent: please record again closer to the microphone.)"
    assert runner._fail(claim, silent) is runner.Outcome.FAILED
    status = api.client.get(f"/api/v1/tasks/analysis/{task_id}/status?lang=en", headers=learner["headers"]).json()
    assert status["error_message"] == "The recording is silent: please record again closer to the microphone."
    result = api.client.get(
        f"/api/v1/tasks/analysis/{task_id}/result", headers={**learner["headers"], "Accept-Language": "en"}
    )
    assert result.status_code == 409 and not CJK.search(result.json()["detail"]), result.text


def test_the_submit_commands_progress_in_english() -> None:
    from vocalborn.analysis.types import STEPS
    from vocalborn.cli.client import _progress_line

    message = {"current_step": STEPS[2][1], "progress": 50, "total_steps": 5, "status": "processing"}
    assert _progress_line(message, False, "en").endswith("Comparing with the reference (3/5)")
    assert _progress_line(message, False, "zh-TW").endswith(f"{STEPS[2][1]} (3/5)")
    english = {**message, "current_step": STEPS[2][2]}  # a server that answered in English already
    assert _progress_line(english, False, "zh-TW").endswith(f"{STEPS[2][1]} (3/5)")
    assert not CJK.search(_progress_line(message, False, "en"))
