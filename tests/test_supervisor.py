"""`vocalborn up` as a supervisor (issue 28), with real processes: nothing it started outlives it
(SIGKILL, SIGHUP, SIGQUIT, SIGTERM), one `up` per data folder, `status` and `stop`, an analysis in
flight survives a stop, a worker's pool children die with it, and two Beats on one broker send
each maintenance job once per interval."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.support import Api, ServiceProcess, WorkerProcess, recording, wait_until
from tests.test_readme import SUITE_KEYS
from vocalborn.embedded import free_port
from vocalborn.supervision import SUPERVISOR_PID_ENV, alive, descendants

pytestmark = pytest.mark.worker

CLI = [sys.executable, "-m", "vocalborn.cli"]
# Everything a child of `up` needs to stop after its parent died: the graceful stop, then the hard
# stop of what is still running after the budget. Nothing here holds work that long.
GONE_WITHIN = 10.0


def _embedded_env(**extra: str) -> dict[str, str]:
    """The embedded default (SQLite and the bundled Redis under --data-dir), as a new user runs it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SUITE_KEYS and not k.startswith(("TASK_", "RETRY_", "REPUBLISH_", "REAPER_", "BROKER_"))
    }
    env.pop(SUPERVISOR_PID_ENV, None)
    env.update(extra)
    return env


def tagged_with(up_pid: int) -> set[int]:
    """Every process whose environment names ``up_pid`` as its supervisor (what `up` started,
    and what those forked), found in /proc whether or not it still has `up` as its parent."""
    tag = f"{SUPERVISOR_PID_ENV}={up_pid}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if tag in f.read().split(b"\0"):
                    found.add(int(entry))
        except OSError:
            continue
    return {p for p in found if alive(p)}


def lock_holders(data: Path) -> set[int]:
    """Every process with the data folder's lock file open (`up` and all it started hold it;
    redis-server rewrites its environment for its process title, so this finds it where the
    environment tag cannot)."""
    target = str(data / "up.lock")
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if any(os.readlink(f"/proc/{entry}/fd/{fd}") == target for fd in fds):
                found.add(int(entry))
        except OSError:
            continue
    return found


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Up:
    """One `vocalborn up` on a data folder of the test's own, on free ports."""

    def __init__(self, data: Path, log_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.data = data
        self.port = port or free_port()
        self.env = env or _embedded_env()
        self.log_path = log_dir / f"up-{uuid.uuid4().hex[:6]}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started: set[int] = set()

    def argv(self, port: int) -> list[str]:
        return [*CLI, "up", "--port", str(port), "--data-dir", str(self.data), "--no-flower"]

    def start(self, timeout: float = 90) -> Up:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(
            [*self.argv(self.port), "--worker-metrics-port", "0", "--concurrency", "2"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def ready() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
            return "ready." in self.log()  # the worker is consuming

        wait_until(ready, timeout, 0.3, "vocalborn up to serve and its worker to be ready")
        self.started = self.processes()
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.data / "up.json").read_text()))

    def processes(self) -> set[int]:
        """What this `up` started and what those started: its descendants and its tagged ones."""
        assert self.proc is not None
        return descendants(self.proc.pid) | tagged_with(self.proc.pid)

    def ports(self) -> list[int]:
        return [int(p) for p in self.state()["ports"].values()]

    def wait_all_gone(self, pids: set[int], timeout: float = GONE_WITHIN) -> float:
        t0 = time.monotonic()
        wait_until(lambda: not [p for p in pids if alive(p)], timeout, 0.1, f"the processes of up to exit: {pids}")
        return time.monotonic() - t0

    def finish(self) -> None:
        """Whatever the test did: nothing of this run is left (SIGKILL by pid as a last resort)."""
        if self.proc is not None:
            left = self.processes() | self.started
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            for pid in left:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
            self._log.close()


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[list[Up]]:
    made: list[Up] = []
    yield made
    for up in made:
        up.finish()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=env or _embedded_env(), capture_output=True, text=True, timeout=timeout)


# A fast engine that takes ~5 s (five steps of 1 s): long enough to be in flight. Test timings
# for healing (lease 3 s, republish after 1 s), as the fault drills use.
IN_FLIGHT_ENV = {
    "AI_ENGINE": "noop",
    "ANALYSIS_STEP_DELAY_SECONDS": "1",
    "TASK_HEARTBEAT_SECONDS": "0.5",
    "TASK_LEASE_SECONDS": "3",
    "REPUBLISH_AFTER_SECONDS": "1",
    "REPUBLISH_INTERVAL_SECONDS": "1",
    "REAPER_INTERVAL_SECONDS": "1",
}


def submit_and_hold(port: int) -> tuple[dict[str, Any], str]:
    """A learner's analysis, submitted through the API and running (processing) on return."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        api = Api(client)
        therapist, learner = api.register("therapist"), api.register("learner")
        ready = api.ready_record(therapist, learner, attempt=recording(voice="Male1"))
        r = api.submit(learner, ready["record"]["practice_record_id"])
        assert r.status_code == 202, r.text
        task_id = str(r.json()["task_id"])
        api.wait_for(learner, task_id, {"processing"}, timeout=60)
    return learner, task_id


def succeeds_once(port: int, learner: dict[str, Any], task_id: str) -> None:
    """The task ends `success`, with one `succeeded` event and one result."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        api = Api(client)
        learner["headers"] = {"Authorization": f"Bearer {api.login(learner['email'], 'correct-horse-1')}"}
        done = api.wait_for(learner, task_id, {"success", "failure", "cancelled"}, timeout=60)
        assert done["status"] == "success", done
        kinds = Counter(e["event_type"] for e in api.events(learner, task_id))
        assert kinds["succeeded"] == 1 and kinds["failed"] == 0, kinds
        result = client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"])
        assert result.status_code == 200, result.text


def test_a_second_up_is_refused_and_a_killed_up_leaves_nothing(tmp_path: Path, ups: list[Up]) -> None:
    data = tmp_path / "var"
    first = Up(data, tmp_path, env=_embedded_env(**IN_FLIGHT_ENV))
    ups.append(first)
    first.start()
    assert first.proc is not None
    pids = first.started
    names = {c["name"] for c in first.state()["children"]}
    assert names == {"api", "worker", "beat", "relay", "consumers", "mail", "redis", "nats"}, first.state()
    assert len(pids) >= 6, pids  # api, worker and its 2 pool children, beat, redis-server
    assert {c["pid"] for c in first.state()["children"]} <= pids
    assert (data / "up.json").stat().st_mode & 0o777 == 0o600
    for child in first.state()["children"]:  # each holds the folder's lock until it exits
        fds = [os.readlink(f"/proc/{child['pid']}/fd/{fd}") for fd in os.listdir(f"/proc/{child['pid']}/fd")]
        assert str(data / "up.lock") in fds, (child, fds)

    holders = lock_holders(data)
    assert holders == pids | {first.proc.pid}, (holders, pids)

    # a second `up` on the same folder, other ports: refused at once, naming the first; nothing of it runs
    t0 = time.monotonic()
    second = subprocess.Popen(
        [*first.argv(free_port()), "--worker-metrics-port", "0"],
        env=first.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    out, err = second.communicate(timeout=30)
    assert second.returncode == 1, out + err
    assert time.monotonic() - t0 < 10
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert f"pid {first.proc.pid}" in lines[0] and str(first.port) in lines[0] and "started" in lines[0], lines
    assert "is starting" not in out
    assert not tagged_with(second.pid) and lock_holders(data) == holders

    # another folder, the same API port: refused, naming the process that holds it and its stack
    api_pid = next(c["pid"] for c in first.state()["children"] if c["name"] == "api")
    other = run_cli(
        *("up", "--port", str(first.port), "--data-dir", str(tmp_path / "other"), "--no-flower"), env=first.env
    )
    assert other.returncode == 1 and f"port {first.port} is already in use" in other.stderr, other.stderr
    assert f"by pid {api_pid}" in other.stderr and f"vocalborn stop --data-dir {data}" in other.stderr, other.stderr
    assert first.proc.poll() is None and all(alive(p) for p in pids)  # the first one untouched

    # SIGKILL of `up` (an OOM kill) with an analysis in flight: every process it started exits
    # (the worker's warm shutdown, its Redis gone too), its ports are free
    learner, task_id = submit_and_hold(first.port)
    ports = first.ports()
    first.proc.kill()
    took = first.wait_all_gone(pids)
    assert all(port_free(p) for p in ports), ports
    assert run_cli("status", "--data-dir", str(data)).returncode == 1

    # a new `up` on the same folder starts at once, on the same port
    again = Up(data, tmp_path, env=first.env, port=first.port)
    ups.append(again)
    again.start()
    assert again.proc is not None
    assert "already in use" not in again.log()
    succeeds_once(again.port, learner, task_id)  # finished before, or redelivered now: once

    # SIGQUIT: the same graceful stop as Ctrl-C (SIGHUP: the next test)
    pids = again.started
    again.proc.send_signal(signal.SIGQUIT)
    assert again.proc.wait(GONE_WITHIN) == 0, again.log()[-3000:]
    again.wait_all_gone(pids, timeout=2)
    assert "stopping (SIGQUIT)" in again.log() and "stopped." in again.log()
    assert not (data / "up.json").exists()

    # a child dies (the worker, SIGKILLed): `up` stops the rest and exits 1, leaving nothing
    third = Up(data, tmp_path, env=first.env, port=first.port)
    ups.append(third)
    third.start()
    assert third.proc is not None
    pids = third.started
    worker = next(c["pid"] for c in third.state()["children"] if c["name"] == "worker")
    os.kill(worker, signal.SIGKILL)
    assert third.proc.wait(GONE_WITHIN) == 1, third.log()[-3000:]
    third.wait_all_gone(pids, timeout=2)
    assert "worker exited with code -9; stopping the rest" in third.log()
    print(f"SIGKILL of up: its {len(pids)} processes gone in {took:.1f} s")


def test_status_and_stop_and_an_analysis_in_flight_during_sighup_succeeds_once(tmp_path: Path, ups: list[Up]) -> None:
    data = tmp_path / "var"
    env = _embedded_env(**IN_FLIGHT_ENV)
    nothing = run_cli("stop", "--data-dir", str(data), env=env)
    assert nothing.returncode == 1 and "no vocalborn up runs" in nothing.stderr, nothing

    first = Up(data, tmp_path, env=env)
    ups.append(first)
    first.start()
    assert first.proc is not None
    status = run_cli("status", "--data-dir", str(data), env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"pid {first.proc.pid}" in status.stdout
    for child in first.state()["children"]:
        assert f"pid {child['pid']}" in status.stdout
    assert f"port {first.port}" in status.stdout and "healthy (/health)" in status.stdout
    assert "healthy (ping)" in status.stdout  # the bundled Redis

    learner, task_id = submit_and_hold(first.port)
    pids, ports = first.started, first.ports()
    first.proc.send_signal(signal.SIGHUP)  # a closed terminal, a dropped SSH session
    assert first.proc.wait(GONE_WITHIN) == 0, first.log()[-3000:]
    first.wait_all_gone(pids, timeout=2)
    assert all(port_free(p) for p in ports), ports

    second = Up(data, tmp_path, env=env, port=first.port)
    ups.append(second)
    second.start()
    succeeds_once(second.port, learner, task_id)

    # `vocalborn stop`: graceful, waits for every process, says what it did
    assert second.proc is not None
    pids = second.started
    stopped = run_cli("stop", "--data-dir", str(data), env=env, timeout=60)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"pid {second.proc.pid}" in stopped.stdout and "stopped" in stopped.stdout
    assert not [p for p in pids if alive(p)]
    assert second.proc.wait(5) == 0
    after = run_cli("status", "--data-dir", str(data), env=env)
    assert after.returncode == 1 and "no vocalborn up runs" in after.stdout


# Beside the whole suite its task never reached `processing` within 60 s (twice, cause not found;
# alone, and beside other modules, it passes): it runs in a session of its own (.ci/run).
@pytest.mark.isolated
def test_a_sigkilled_worker_takes_its_busy_pool_children_with_it(
    api: Api, migrated: object, therapist: dict[str, Any], learner: dict[str, Any], tmp_path: Path
) -> None:
    """A busy pool child must not run its analysis to the end on its own (no time limit applies
    any more: the parent enforced it) holding the data folder meanwhile: it gets SIGKILL
    (Celery's prefork sets PR_SET_PDEATHSIG in its children; supervision covers other kernels),
    and its task is redelivered (the fault drills' node SIGKILL covers that part)."""
    worker = WorkerProcess(
        f"orphans-{uuid.uuid4().hex[:6]}",
        tmp_path,
        concurrency=1,
        env={"AI_ENGINE": "noop", "ANALYSIS_STEP_DELAY_SECONDS": "4"},  # a 20 s analysis
    ).start()
    try:
        assert worker.proc is not None
        record_id = api.ready_record(therapist, learner)["record"]["practice_record_id"]
        task_id = api.submit(learner, record_id).json()["task_id"]
        api.wait_for(learner, task_id, {"processing"}, timeout=60)  # a worker starting on a busy machine
        pool = descendants(worker.proc.pid)
        assert pool, "no pool child"
        worker.proc.kill()  # the main process only, as the OOM killer would
        worker.proc.wait(10)
        t0 = time.monotonic()
        wait_until(lambda: not [p for p in pool if alive(p)], 5, 0.1, f"the busy pool child {pool} to exit")
        assert time.monotonic() - t0 < 5
        assert api.status(learner, task_id)["status"] == "processing"  # it did not run to the end
    finally:
        left = descendants(worker.proc.pid) if worker.proc else set()
        worker.stop(timeout=5)
        for pid in left:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _sent(client: redis.Redis, queue: str) -> Counter[str]:
    """Maintenance jobs waiting in the queue, by job (nobody consumes it in this test)."""
    counts: Counter[str] = Counter()
    for raw in client.lrange(queue, 0, -1):
        counts[json.loads(raw)["headers"]["task"].rsplit(".", 1)[-1]] += 1
    return counts


def test_two_beats_on_one_broker_send_each_job_once_per_interval(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    queue = f"maintenance_beatlease_{run}"
    common = {
        "MAINTENANCE_QUEUE": queue,
        "REDIS_KEY_PREFIX": f"vbtest-beat-{run}:",
        "REPUBLISH_INTERVAL_SECONDS": "1",
        "REAPER_INTERVAL_SECONDS": "1",
        "HEALTH_CHECK_INTERVAL_SECONDS": "1",
        "CLEANUP_INTERVAL_SECONDS": "2",
        "BEAT_LEASE_SECONDS": "3",
    }
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    beats: list[ServiceProcess] = []
    try:
        for n in (1, 2):
            env = dict(common, DATA_DIR=str(tmp_path / f"beat{n}"))  # each its own schedule file, as on two hosts
            beats.append(ServiceProcess(f"beat{n}", ["beat"], tmp_path, env).start())

        def both_decided() -> bool:
            logs = [b.log() for b in beats]
            return sum("holding the schedule lease" in log for log in logs) == 1 and any(
                "holds the schedule lease" in log for log in logs
            )

        wait_until(both_decided, 60, 0.2, "one Beat to hold the lease and the other to wait")
        leader, standby = beats if "holding the schedule lease" in beats[0].log() else beats[::-1]

        window = 6.0
        before = _sent(client, queue)
        time.sleep(window)
        ran = _sent(client, queue) - before
        for job, every in (("republish_stranded_tasks", 1), ("reap_stalled_tasks", 1), ("health_check", 1)):
            # one Beat: about window/every runs; two would send about twice as many
            assert window / every - 3 <= ran[job] <= window / every + 1, ran
        assert ran["cleanup_expired_tasks"] <= window / 2 + 1, ran

        # the holder hangs (SIGSTOP): the other takes over once the lease lapses; when the first
        # wakes up it finds the lease gone and schedules nothing
        assert leader.proc is not None and standby.proc is not None
        os.kill(leader.proc.pid, signal.SIGSTOP)
        try:
            wait_until(
                lambda: "holding the schedule lease" in standby.log(), 3 + 1 + 8, 0.2, "the standby to take over"
            )
        finally:
            os.kill(leader.proc.pid, signal.SIGCONT)
        wait_until(
            lambda: "holds the schedule lease" in leader.log(), 10, 0.2, "the woken Beat to notice it lost the lease"
        )
        before = _sent(client, queue)
        time.sleep(window)
        ran = _sent(client, queue) - before
        assert window - 3 <= ran["health_check"] <= window + 1, ran

        # the new holder is killed: the first one sees its pid gone on this host and takes over at once
        standby.proc.kill()
        standby.proc.wait(10)
        wait_until(lambda: "took the schedule lease over" in leader.log(), 3 + 5, 0.2, "the first Beat to take over")
        before = _sent(client, queue)
        time.sleep(3)
        assert 1 <= (_sent(client, queue) - before)["health_check"] <= 4
    finally:
        for b in beats:
            b.stop(timeout=10)
        client.delete(queue, f"vbtest-beat-{run}:beat:lease", f"vbtest-beat-{run}:beat:last-run")
        client.close()


def test_status_and_stop_of_what_a_killed_up_left_behind(tmp_path: Path) -> None:
    """The lock outlives `up` while its last children stop: status says so, stop stops them."""
    data = tmp_path / "var"
    data.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftover = subprocess.Popen(  # holds the folder's lock, as a child of the dead `up` would
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            f"fd = os.open({str(data / 'up.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert leftover.stdout is not None and leftover.stdout.readline().strip() == "locked"
        state = {"pid": dead.pid, "started_at": time.time(), "ports": {"api": 1}, "children": []}
        state["children"] = [{"name": "worker", "pid": leftover.pid, "port": None}]
        (data / "up.json").write_text(json.dumps(state))

        status = run_cli("status", "--data-dir", str(data))
        assert status.returncode == 2, status.stdout + status.stderr
        assert f"vocalborn up (pid {dead.pid}) is gone" in status.stdout and f"pid {leftover.pid}" in status.stdout

        stopped = run_cli("stop", "--data-dir", str(data), "--timeout", "10")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        assert "its last 1 process(es)" in stopped.stdout and "stopped" in stopped.stdout
        assert leftover.wait(5) == -signal.SIGTERM
        assert run_cli("status", "--data-dir", str(data)).returncode == 1
    finally:
        if leftover.poll() is None:
            leftover.kill()
            leftover.wait()
