"""Faults: a worker SIGKILLed mid-analysis, a broker that is down at submit time.

Each test starts and stops its own processes, by PID.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import select

from tests.services import ServicesUnderTest
from tests.support import Api, ServiceProcess, WorkerProcess, api_process, recording, wait_until

pytestmark = pytest.mark.worker


def _count_results(task_id: str) -> int:
    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult

    with open_session() as db:
        return len(db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == uuid.UUID(task_id))).all())


def test_a_worker_killed_mid_analysis_loses_nothing(
    api: Api, migrated: ServicesUnderTest, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    slow = {"ANALYSIS_STEP_DELAY_SECONDS": "1.0"}
    victim = WorkerProcess("victim", migrated.data_dir, concurrency=1, env=slow).start()
    beat = ServiceProcess("beat", ["beat"], migrated.data_dir).start()
    try:
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        task_id = api.submit(learner, record_id).json()["task_id"]
        running = wait_until(
            lambda: (s := api.status(api.admin(), task_id))["progress"] >= 20 and s["status"] == "processing" and s,
            60,
            0.1,
            "the analysis to be half-way",
        )
        assert running["worker_name"].startswith("victim@")
        victim.kill()  # SIGKILL, main process and pool child alike

        rescuer = WorkerProcess("rescuer", migrated.data_dir, concurrency=1).start()
        try:
            final = api.wait_for(api.admin(), task_id, {"success", "failure"}, timeout=90)
        finally:
            rescuer.stop()
        assert final["status"] == "success", final
        assert final["worker_name"].startswith("rescuer@")
        assert _count_results(task_id) == 1

        events = api.events(api.admin(), task_id)
        kinds = [e["event_type"] for e in events]
        assert kinds[0] == "submitted" and kinds[-1] == "succeeded"
        started = [e for e in events if e["event_type"] == "started"]
        assert [e["attempt"] for e in started] == [1, 2]
        assert started[0]["worker_name"].startswith("victim@") and started[1]["worker_name"].startswith("rescuer@")
        assert events[-1]["attempt"] == 2
        # the history explains the gap: the reaper requeued it, or the rescuer took it over
        healed = [e for e in events if e["event_type"] == "queued" or (e["event_type"] == "started" and e["message"])]
        assert healed, kinds
        assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    finally:
        victim.stop()
        beat.stop()


def test_a_publish_that_fails_at_submit_still_succeeds_once_the_broker_is_back(
    migrated: ServicesUnderTest, tmp_path: Any
) -> None:
    """The API's broker is down when the learner submits: the task is accepted (pending in the
    database), and once the broker is back, Beat's republisher sends it and a worker runs it."""
    from vocalborn.embedded import EmbeddedRedis, free_port

    broker = EmbeddedRedis(tmp_path)
    broker.start()
    env = {
        "CELERY_BROKER_URL": f"{broker.url}/0",
        "CELERY_RESULT_BACKEND": f"{broker.url}/1",
        "REDIS_URL": f"{broker.url}/0",
    }
    port = free_port()
    api_proc = api_process(port, migrated.data_dir, env)
    processes: list[Any] = [api_proc]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            api = Api(client)
            therapist, learner = api.register("therapist"), api.register("learner")
            record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]

            broker.stop()  # the broker goes away
            r = api.submit(learner, record_id)
            assert r.status_code == 202, r.text
            task_id = r.json()["task_id"]
            assert api.status(learner, task_id)["status"] == "pending"
            assert "stays pending and will be republished" in api_proc.log()

            broker.start()  # ... and comes back on the same port
            processes.append(WorkerProcess("after-outage", migrated.data_dir, env=env).start())
            processes.append(ServiceProcess("beat-after-outage", ["beat"], migrated.data_dir, env))
            processes[-1].start()
            final = api.wait_for(learner, task_id, {"success", "failure"}, timeout=90)
            assert final["status"] == "success", final
            kinds = [e["event_type"] for e in api.events(learner, task_id)]
            assert kinds[:2] == ["submitted", "queued"] and kinds[-1] == "succeeded"
            assert _count_results(task_id) == 1
    finally:
        for proc in reversed(processes):
            proc.stop()
        broker.stop()


def test_recordings_stay_valid_inputs(migrated: ServicesUnderTest) -> None:
    # guards the fixtures the fault tests rely on: a real, decodable recording of a few seconds
    from vocalborn.analysis.decode import probe_audio

    info = probe_audio(recording(voice="Male1", fmt="mp3"))
    assert info.format == "mp3" and 1.0 < info.duration_seconds < 10.0
