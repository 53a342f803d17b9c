"""Issue #26, language on the WebSocket: a task's ``current_step`` (and a failed task's message)
arrives in the language asked for (``?lang=`` or ``Accept-Language``); without one, as stored.
On today's main the socket always sent the stored zh-TW label.

In-process runner calls against the real database; no worker consumes this module's messages."""

from __future__ import annotations

import re
from typing import Any

from tests.learning.test_counted import GOOD, _attempt, _linked, _report
from tests.support import Api, recording

CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def _messages(api: Api, task_id: str, token: str, query: str = "", **headers: str) -> list[dict[str, Any]]:
    url = f"/api/v1/tasks/ws/task/{task_id}?token={token}{query}"
    out: list[dict[str, Any]] = []
    with api.client.websocket_connect(url, headers=headers) as ws:  # type: ignore[union-attr]
        while True:
            message = ws.receive_json()
            out.append(message)
            if message.get("status") in ("success", "failure", "cancelled") and message.get("type") != "snapshot":
                break
            if len(out) > 50:
                break
    return out


def test_current_step_on_the_socket_in_the_language_asked_for(api: Api) -> None:
    from vocalborn.analysis.types import STEPS

    therapist, learner = _linked(api)
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)["practice_session_id"]
    done = _attempt(api, learner, session, sentence["sentence_id"], _report(80.0, GOOD))
    zh, en = STEPS[-1][1], STEPS[-1][2]
    for who in (learner, therapist):
        stored = _messages(api, done["task_id"], who["token"])
        assert stored[0]["current_step"] == zh  # as stored, without a language asked for
        english = _messages(api, done["task_id"], who["token"], "&lang=en")
        assert english[0]["current_step"] == en
        assert not any(CJK.search(m.get("current_step") or "") for m in english)
        header = _messages(api, done["task_id"], who["token"], **{"Accept-Language": "en-US,en;q=0.9"})
        assert header[0]["current_step"] == en
        assert _messages(api, done["task_id"], who["token"], "&lang=zh-TW")[0]["current_step"] == zh
