"""Issue #22 through the real pipeline: a worker process (remote engine kind) analyses against a
loopback AI service that runs the local engine and writes the contract's verdicts and a pitch
profile the test chooses (tests/verdicts.py). The worker passes each learner's pitch baseline from
their earlier attempts; the completeness and the verdicts reach the result, the history and
`vocalborn submit` in both languages."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import verdicts
from tests.services import ServicesUnderTest
from tests.support import SENTENCE, Api, WorkerProcess, api_process, recording

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def ai_service() -> Iterator[tuple[verdicts.FeedbackService, int]]:
    with verdicts.running_feedback_service() as running:
        yield running


@pytest.fixture(scope="module")
def remote_worker(
    migrated: ServicesUnderTest, ai_service: tuple[verdicts.FeedbackService, int]
) -> Iterator[WorkerProcess]:
    env = {"AI_ENGINE": "remote", "AI_SERVICE_URL": f"http://127.0.0.1:{ai_service[1]}", "AI_SERVICE_TIMEOUT": "60"}
    w = WorkerProcess("feedback", migrated.data_dir, concurrency=1, env=env).start()
    yield w
    w.stop()


def _attempt(api: Api, learner: dict[str, Any], session_id: str, sentence_id: str) -> tuple[str, dict[str, Any]]:
    r = api.record(learner, session_id, sentence_id, recording(voice="Male1", fmt="mp3"), "try.mp3")
    assert r.status_code == 201, r.text
    task_id = api.submit(learner, r.json()["practice_record_id"]).json()["task_id"]
    final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=120)
    assert final["status"] == "success", final
    return task_id, final


def test_the_worker_passes_each_learners_baseline_and_the_verdicts_reach_the_api(
    api: Api,
    therapist: dict[str, Any],
    learner: dict[str, Any],
    ai_service: tuple[verdicts.FeedbackService, int],
    remote_worker: WorkerProcess,
) -> None:
    service = ai_service[0]
    service.params.clear()
    service.profiles[:] = [
        {"median_hz": 210.0, "spread_semitones": 3.0, "voiced_seconds": 2.0},
        {"median_hz": 180.0, "spread_semitones": 5.0, "voiced_seconds": 3.0},
        {"median_hz": 190.0, "spread_semitones": 4.0, "voiced_seconds": 1.0},
        {"median_hz": 120.0, "spread_semitones": 2.0, "voiced_seconds": 2.0},
    ]
    sentence = api.sentence(therapist, recording())
    session = api.session(learner)
    tasks = [_attempt(api, learner, session["practice_session_id"], sentence["sentence_id"])[0] for _ in range(3)]
    other = api.register("learner")
    other_session = api.session(other)
    _attempt(api, other, other_session["practice_session_id"], sentence["sentence_id"])

    sent = service.params
    assert len(sent) == 4 and all(p["text"] == SENTENCE for p in sent)
    assert "pitch_baseline" not in sent[0]  # nothing earlier yet
    assert sent[1]["pitch_baseline"] == {"median_hz": 210.0, "spread_semitones": 3.0}
    # weighted by voiced seconds: 180 Hz over 3 s outweighs 210 Hz over 2 s
    assert sent[2]["pitch_baseline"] == {"median_hz": 180.0, "spread_semitones": 5.0}
    assert "pitch_baseline" not in sent[3]  # another learner: never someone else's voice

    result = api.client.get(f"/api/v1/tasks/analysis/{tasks[-1]}/result", headers=learner["headers"]).json()
    assert result["completeness_score"] == verdicts.COMPLETENESS
    da = result["detailed_analysis"]
    assert da["characters"] == verdicts.characters() and da["insertions"] == verdicts.INSERTIONS
    assert da["completeness_score"] == verdicts.COMPLETENESS
    assert da["pitch_profile"] == {"median_hz": 190.0, "spread_semitones": 4.0, "voiced_seconds": 1.0}
    assert da["pitch_analysis"]["time"]  # the local engine's own analysis is all there
    items = api.client.get("/api/v1/tasks/analysis", headers=learner["headers"]).json()["items"]
    assert {i["task_id"]: i["completeness_score"] for i in items if i["task_id"] in tasks} == {
        t: verdicts.COMPLETENESS for t in tasks
    }


def test_the_submit_command_prints_the_verdicts_in_both_languages(
    api: Api,
    migrated: ServicesUnderTest,
    ai_service: tuple[verdicts.FeedbackService, int],
    remote_worker: WorkerProcess,
    tmp_path: Path,
) -> None:
    from vocalborn.embedded import free_port

    therapist = api.register("therapist")
    learner = api.register("learner", email=f"submit-{uuid.uuid4().hex[:8]}@example.com")
    sentence = api.sentence(therapist, recording())
    attempt = tmp_path / "attempt.mp3"
    attempt.write_bytes(recording(voice="Male1", fmt="mp3"))
    port = free_port()
    proc = api_process(port, migrated.data_dir)
    try:
        env = dict(
            os.environ,
            VOCALBORN_URL=f"http://127.0.0.1:{port}",
            VOCALBORN_EMAIL=learner["email"],
            VOCALBORN_PASSWORD="correct-horse-1",
        )
        out = {}
        for lang in ("en", "zh-TW"):
            done = subprocess.run(
                [sys.executable, "-m", "vocalborn.cli", "submit", str(attempt), "--sentence", sentence["sentence_id"]]
                + ["--lang", lang],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            out[lang] = done.stdout
    finally:
        proc.stop()
    en, zh = out["en"], out["zh-TW"]
    assert "今天天[氣]很好，我們去+[公][園]散步。" in en and "今天天[氣]很好，我們去+[公][園]散步。" in zh
    assert "Completeness" in en and "92.31" in en and "完整度" in zh and "92.31" in zh
    lines = {
        line.split()[0]: line.split()[1:] for line in en.splitlines() if line.startswith("  ") and "  " in line[3:6]
    }
    assert lines["氣"] == ["qì", "wrong", "tone", "heard", "tone", "2"]
    assert lines["園"] == ["yuán", "omitted"]
    assert "+ 2.61-2.83 s, after 去" in en and "聲調不對" in zh and "聽到第 2 聲" in zh and "漏念" in zh
