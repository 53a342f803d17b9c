"""The mechanism under `vocalborn up` (vocalborn.supervision), on small processes: a spawned
child gets SIGTERM when its parent dies however it dies, and a Python child that does not stop on
it is killed after its budget. Fast: plain `sleep` and Python processes, no stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from tests.support import wait_until
from vocalborn.supervision import PDEATHSIG_AVAILABLE, SUPERVISOR_PID_ENV, alive, descendants

# A parent that spawns one child through supervision.spawn, prints its pid, and waits.
PARENT = textwrap.dedent(
    """
    import sys, time
    from vocalborn.supervision import spawn
    child = spawn(sys.argv[1:])
    print(child.pid, flush=True)
    time.sleep(60)
    """
)


def _parent_with(child_argv: list[str]) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, *child_argv], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    return parent, child


def test_a_spawned_child_gets_sigterm_when_its_parent_is_killed() -> None:
    assert sys.platform.startswith("linux") == PDEATHSIG_AVAILABLE
    parent, child = _parent_with(["sleep", "60"])
    try:
        assert alive(child) and descendants(parent.pid) == {child}
        with open(f"/proc/{child}/environ", "rb") as f:
            assert f"{SUPERVISOR_PID_ENV}={parent.pid}".encode() in f.read().split(b"\0")
        assert os.getsid(child) == child  # its own session: a Ctrl-C reaches the supervisor only
        parent.kill()
        parent.wait(5)
        wait_until(lambda: not alive(child), 5, 0.05, "the child of a SIGKILLed parent to exit")
    finally:
        parent.kill()
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_python_child_that_ignores_sigterm_is_killed_after_its_budget() -> None:
    stubborn = textwrap.dedent(
        """
        import signal, time
        from vocalborn.supervision import watch_supervisor
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a warm shutdown that never ends
        assert watch_supervisor(budget=1.0, poll=0.1)
        time.sleep(60)
        """
    )
    parent, child = _parent_with([sys.executable, "-c", stubborn])
    try:
        time.sleep(1.0)  # let it import and start watching
        assert alive(child)
        parent.kill()
        parent.wait(5)
        t0 = time.monotonic()
        time.sleep(0.5)
        assert alive(child)  # SIGTERM ignored: still running within its budget
        wait_until(lambda: not alive(child), 5, 0.05, "the stubborn child to be killed after its budget")
        assert time.monotonic() - t0 < 4
    finally:
        parent.kill()
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_watch_supervisor_does_nothing_without_a_supervisor() -> None:
    from vocalborn.supervision import watch_supervisor

    os.environ.pop(SUPERVISOR_PID_ENV, None)
    assert watch_supervisor() is False
    os.environ[SUPERVISOR_PID_ENV] = "1" if os.getppid() != 1 else "2"  # not our parent
    try:
        assert watch_supervisor() is False
    finally:
        del os.environ[SUPERVISOR_PID_ENV]


def test_a_standing_by_beat_schedules_nothing_and_still_writes_its_schedule_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container healthcheck of Beat reads the age of its schedule file: a standby (another
    Beat holds the lease) must keep writing it, and must send nothing."""
    import redis

    from vocalborn.beat import LeasedScheduler, last_run_key, lease_key
    from vocalborn.celery_app import celery_app
    from vocalborn.config import get_settings
    from vocalborn.healthcheck import check_beat

    monkeypatch.setenv("REDIS_KEY_PREFIX", f"vbtest-standby-{uuid.uuid4().hex[:8]}:")  # its own lease
    get_settings.cache_clear()
    client = redis.Redis.from_url(get_settings().effective_redis_url)
    client.set(lease_key(), "another-host:1:x", px=30_000)
    scheduler = LeasedScheduler(app=celery_app, schedule_filename=str(tmp_path / "celerybeat-schedule"), lazy=False)
    try:
        sent: list[str] = []
        scheduler.apply_entry = lambda entry, producer=None: sent.append(entry.name)  # type: ignore[method-assign]
        for entry in scheduler.schedule.values():  # every job due now
            entry.last_run_at = entry.default_now() - timedelta(days=1)
        scheduler.sync()
        old = time.time() - 3600
        for f in tmp_path.glob("celerybeat-schedule*"):
            os.utime(f, (old, old))
        assert scheduler.tick() == scheduler.renew_every and not scheduler.holding
        scheduler.sync()
        assert sent == []
        assert "beat alive" in check_beat(max_age=60, schedule=tmp_path / "celerybeat-schedule")

        client.delete(lease_key())  # the holder is gone: the next tick takes the lease and sends
        scheduler._renewed_at = 0.0
        while scheduler.tick() == 0:
            pass
        assert scheduler.holding and set(sent) == set(scheduler.schedule), sent
    finally:
        scheduler.close()
        client.delete(lease_key(), last_run_key())
        client.close()
        monkeypatch.undo()
        get_settings.cache_clear()
