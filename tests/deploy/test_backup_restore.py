"""The restore drill: `vocalborn backup` taken while analyses are being submitted and run by a real
worker, restored with `vocalborn restore` into a fresh database and a fresh data folder; the row
counts and every file's checksum equal the backup's, every recording the restored database
names is there, and a result and its recording read back through a real API process running on
the restored data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.services import ServicesUnderTest
from tests.support import Api, WorkerProcess, api_process, recording

pytestmark = pytest.mark.worker


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vocalborn.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def fresh_database(migrated: ServicesUnderTest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind as the suite's."""
    if migrated.database_kind != "postgresql" or migrated._pg_admin_url is None:
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    name = f"vb_restore_{uuid.uuid4().hex[:8]}"
    admin = create_engine(migrated._pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(migrated._pg_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_backup_taken_under_load_restores_whole(
    api: Api, migrated: ServicesUnderTest, fresh_database: str, tmp_path: Path
) -> None:
    therapist = api.register("therapist")
    learner = api.register("learner", password="restore-drill-1")
    worker = WorkerProcess(f"backup{uuid.uuid4().hex[:6]}", migrated.data_dir, concurrency=1).start()
    try:
        attempt = recording(voice="Male1", fmt="mp3")
        ready = api.ready_record(therapist, learner, attempt)
        record_id = ready["record"]["practice_record_id"]
        task_id = api.submit(learner, record_id).json()["task_id"]
        api.wait_for(learner, task_id, {"success"}, timeout=120)
        result = api.client.get(f"/api/v1/tasks/analysis/{task_id}/result", headers=learner["headers"]).json()

        # the backup runs while more recordings arrive and more analyses are submitted and run
        archive = tmp_path / "drill.tar.gz"
        proc = _cli("backup", str(archive))
        uploads = 0
        while (proc.poll() is None or uploads < 3) and uploads < 40:
            r = api.record(learner, ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"], attempt)
            assert r.status_code == 201, r.text
            uploads += 1
            # 429 once the learner's submit budget is spent: an answer under load, not a fault
            assert api.submit(learner, r.json()["practice_record_id"]).status_code in (200, 202, 429)
            time.sleep(0.1)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        assert "backed up" in out
    finally:
        worker.stop()

    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    rows = manifest["database"]["rows"]
    assert rows["ai_analysis_results"] >= 1 and rows["practice_records"] >= 2
    assert oct(archive.stat().st_mode & 0o777) == "0o600"

    restored = tmp_path / "restored-data"
    proc = _cli("restore", str(archive), "--data-dir", str(restored), env={"DATABASE_URL": fresh_database})
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert "counts equal" in out and "checksums equal" in out

    # counts and checksums, checked here as well, not only by the command
    engine = create_engine(fresh_database)
    try:
        with engine.connect() as conn:
            for table, count in rows.items():
                assert conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one() == count, table
            keys = [k for (k,) in conn.execute(text("SELECT audio_key FROM practice_records"))]
            keys += [k for (k,) in conn.execute(text("SELECT reference_audio_key FROM sentences"))]
            mine = [
                k
                for (k,) in conn.execute(
                    text("SELECT audio_key FROM practice_records WHERE user_id = :u"),
                    {"u": uuid.UUID(learner["user"]["user_id"])},
                )
            ]
    finally:
        engine.dispose()
    for rel, meta in manifest["files"].items():
        assert _sha256(restored / rel) == meta["sha256"], rel
    # consistent: every recording the restored database names came along. The suite's database is
    # shared: other tests' processes write their recordings under their own data folders, so the
    # check covers every named recording this data folder holds, and all of this drill's learner's.
    assert len(mine) >= 2, mine
    source = migrated.data_dir / "storage"
    missing = [k for k in keys if (source / k).is_file() and not (restored / "storage" / k).is_file()]
    missing += [k for k in mine if not (restored / "storage" / k).is_file()]
    assert not missing, missing[:5]

    # a result and its recording, read back through the API on the restored data
    from vocalborn.embedded import free_port

    port = free_port()
    server = api_process(
        port, tmp_path, env={"DATABASE_URL": fresh_database, "DATA_DIR": str(restored), "WORKER_METRICS_PORT": "0"}
    )
    try:
        base = f"http://127.0.0.1:{port}"
        login = httpx.post(
            f"{base}/api/v1/auth/login", data={"username": learner["email"], "password": "restore-drill-1"}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        again = httpx.get(f"{base}/api/v1/tasks/analysis/{task_id}/result", headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["overall_score"] == result["overall_score"]
        assert again.json()["result_id"] == result["result_id"]
        audio = httpx.get(f"{base}/api/v1/practice/records/{record_id}/audio", headers=headers)
        assert audio.status_code == 200, audio.text[:300]
        assert audio.content == attempt
    finally:
        server.stop()


def test_restore_refuses_a_database_that_is_not_empty(migrated: ServicesUnderTest, tmp_path: Path) -> None:
    archive = tmp_path / "small.tar.gz"
    proc = _cli("backup", str(archive))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    proc = _cli("restore", str(archive), "--data-dir", str(tmp_path / "fresh"))  # the suite's own database
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.strip().splitlines()[-1].startswith("error: the database") and "not empty" in err
    proc = _cli("backup", str(archive))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "exists" in err


def test_restore_refuses_a_damaged_archive(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"not a backup")
    proc = _cli("restore", str(bad), "--data-dir", str(tmp_path / "d"))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "not a vocalborn backup" in err and "Traceback" not in err
