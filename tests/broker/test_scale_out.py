"""Scale-out on one machine: two API processes and two worker nodes share PostgreSQL, Redis and
the broker. A batch submitted through both APIs spreads over both nodes, every task succeeds
exactly once, and stopping one node mid-batch loses nothing. Runs on each broker."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

import httpx

from tests.broker.conftest import Stack
from tests.broker.scenarios import event_counts, result_counts
from tests.support import Api, recording, wait_until

BATCH = 30


def _stop_node(proc: subprocess.Popen[bytes], grace: float) -> str:
    """SIGTERM (warm shutdown), then SIGKILL of the whole process group after ``grace`` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
        return "terminated"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return "killed"


def test_a_batch_through_two_apis_spreads_over_two_workers_and_survives_losing_one(
    workers: Stack, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    stack = workers
    slow = {"ANALYSIS_STEP_DELAY_SECONDS": "0.05"}
    node_a = stack.worker("node-a", concurrency=2, **slow)
    node_b = stack.worker("node-b", concurrency=2, **slow)
    # beat heals whatever the stopped node leaves behind (republisher, reaper); with RabbitMQ it
    # cannot look into the queue, so it republishes pending tasks older than this: duplicates
    stack.beat(REPUBLISH_AFTER_SECONDS="5")
    second = stack.api_process()
    apis = [stack.api, Api(httpx.Client(base_url=f"http://127.0.0.1:{second.port}", timeout=30))]  # type: ignore[attr-defined]
    try:
        sentence = apis[0].sentence(therapist, recording())
        session = apis[0].session(learner)
        attempt = recording(voice="Male1", fmt="mp3")
        task_ids: list[str] = []
        for i in range(BATCH):
            api = apis[i % 2]
            r = api.record(learner, session["practice_session_id"], sentence["sentence_id"], attempt, "try.mp3")
            assert r.status_code == 201, r.text
            s = api.submit(learner, r.json()["practice_record_id"])
            assert s.status_code == 202, s.text
            task_ids.append(s.json()["task_id"])

        def statuses() -> list[dict[str, Any]]:
            return [apis[0].status(apis[0].admin(), t) for t in task_ids]  # admins see worker names

        # node-a has finished some work and holds more when it is told to stop
        wait_until(
            lambda: any(s["status"] == "success" and s["worker_name"].startswith("node-a") for s in statuses()),
            90,
            0.2,
            "node-a to finish a task",
        )
        assert node_a.proc is not None
        how = _stop_node(node_a.proc, grace=10)

        def all_finished() -> list[dict[str, Any]] | None:
            ss = statuses()
            return ss if all(s["status"] in ("success", "failure") for s in ss) else None

        final = wait_until(
            all_finished,
            180,
            0.5,
            f"all {BATCH} tasks to finish after node-a was {how}",
        )
    finally:
        apis[1].client.close()

    assert [s["status"] for s in final] == ["success"] * BATCH, [s for s in final if s["status"] != "success"]
    nodes = {s["worker_name"].split("@")[0].rsplit("-", 1)[0] for s in final}
    assert nodes == {"node-a", "node-b"}, nodes
    assert set(result_counts(task_ids).values()) == {1}
    assert set(event_counts(task_ids, "succeeded").values()) == {1}
    assert node_b.proc is not None and node_b.proc.poll() is None  # the survivor kept going
