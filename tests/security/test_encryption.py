"""Recordings at rest: AES-256-GCM with the key id in the header, old keys kept for reading,
`vocalborn storage rotate`, and transparent to the API's audio endpoints and the worker."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from tests.security.conftest import Pair, address, login, register
from tests.services import ServicesUnderTest
from tests.support import WorkerProcess, recording
from vocalborn.config import Settings
from vocalborn.db import open_session
from vocalborn.practice.models import PracticeRecord
from vocalborn.storage import MAGIC, LocalStorage, MissingKey

pytestmark = pytest.mark.worker


def key() -> bytes:
    return os.urandom(32)


def b64(k: bytes) -> str:
    return base64.b64encode(k).decode()


def test_round_trip_header_and_associated_data(tmp_path: Path) -> None:
    k1 = key()
    store = LocalStorage(tmp_path, {"k1": k1})
    audio = recording(voice="Male1", fmt="mp3")
    name = store.save("recordings", audio, "mp3")
    raw = store.path(name).read_bytes()
    assert raw.startswith(MAGIC + b"\x02k1") and audio[:64] not in raw and len(raw) == len(audio) + 6 + 1 + 2 + 12 + 16
    assert store.read(name) == audio and store.key_id_of(name) == "k1" and store.encrypted(name)
    # a file moved under another name does not decrypt (the name is the associated data)
    other = store.save("recordings", b"x", "mp3")
    store.path(other).write_bytes(raw)
    with pytest.raises(InvalidTag):
        store.read(other)
    # a flipped bit is refused, not returned
    store.path(name).write_bytes(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(InvalidTag):
        store.read(name)
    # plain files written before encryption are still read as they are
    plain = LocalStorage(tmp_path).save("recordings", audio, "mp3")
    assert store.read(plain) == audio and not store.encrypted(plain)


def test_rotation_keeps_old_files_readable_then_moves_them_to_the_new_key(tmp_path: Path) -> None:
    k1, k2 = key(), key()
    old = LocalStorage(tmp_path, {"k1": k1})
    plain = LocalStorage(tmp_path).save("references", b"plain reference", "wav")
    names = [old.save("recordings", f"take {i}".encode(), "wav") for i in range(3)]
    both = LocalStorage(tmp_path, {"k1": k1, "k2": k2}, "k2")
    newer = both.save("recordings", b"new take", "wav")
    assert both.key_id_of(newer) == "k2" and all(both.key_id_of(n) == "k1" for n in names)
    assert [both.read(n) for n in names] == [b"take 0", b"take 1", b"take 2"]

    report = both.rotate()
    assert (report.reencrypted, report.already_current, report.failed) == (4, 1, 0)  # 3 old + the plain one
    assert all(both.key_id_of(n) == "k2" for n in [*names, newer, plain])
    only_new = LocalStorage(tmp_path, {"k2": k2})
    assert only_new.read(plain) == b"plain reference" and only_new.read(names[0]) == b"take 0"
    assert both.rotate().reencrypted == 0  # idempotent
    with pytest.raises(MissingKey, match="k2"):
        LocalStorage(tmp_path, {"k1": k1}).read(names[0])


def test_the_cli_rotates_and_the_settings_refuse_bad_keys(tmp_path: Path) -> None:
    k1, k2 = key(), key()
    LocalStorage(tmp_path / "storage", {"k1": k1}).save("recordings", b"abc", "wav")
    env = dict(os.environ, DATA_DIR=str(tmp_path), STORAGE_ENCRYPTION_KEYS=f"k1:{b64(k1)},k2:{b64(k2)}")
    done = subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", "storage", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1, already current 0, failed 0" in done.stdout
    for bad, words in (
        ("k1:" + b64(os.urandom(16)), "AES-256 needs 32"),
        ("k1:not base64!", "not valid base64"),
        ("nokey", "ID:BASE64"),
    ):
        with pytest.raises(ValueError, match=words):
            Settings(storage_encryption_keys=bad, _env_file=None).encryption_keys()
    with pytest.raises(ValueError, match="not among the keys"):
        Settings(
            storage_encryption_keys=f"k1:{b64(k1)}", storage_encryption_key_id="k9", _env_file=None
        ).encryption_keys()
    assert Settings(storage_encryption_key=b64(k1), _env_file=None).encryption_keys() == {"k1": k1}


def test_encrypted_recordings_are_transparent_to_the_api_and_the_worker(
    start_pair: Callable[[dict[str, str]], Pair], migrated: ServicesUnderTest
) -> None:
    keys = {"STORAGE_ENCRYPTION_KEYS": f"old:{b64(key())},cur:{b64(key())}", "STORAGE_ENCRYPTION_KEY_ID": "cur"}
    pair = start_pair(keys)
    users: dict[str, dict[str, Any]] = {}
    for role in ("therapist", "learner"):
        who = f"enc-{role}-{os.urandom(4).hex()}@example.com"
        assert register(pair.a, who, "pw-long-enough-1", role=role, headers=address(who)).status_code == 202
        token = login(pair.a, who, "pw-long-enough-1").json()["access_token"]
        users[role] = {"email": who, "token": token, "headers": {"Authorization": f"Bearer {token}"}}
    worker = WorkerProcess(
        "enc",
        migrated.data_dir,
        env={**keys, "TASK_QUEUE": pair.procs[0].extra_env["TASK_QUEUE"], "WORKER_METRICS_PORT": "0"},
    ).start()
    try:
        ready = pair.a.ready_record(users["therapist"], users["learner"])
        record = ready["record"]
        storage = LocalStorage(migrated.data_dir / "storage", {})

        with open_session() as db:
            stored = db.get(PracticeRecord, uuid.UUID(record["practice_record_id"]))
            assert stored is not None
            raw = storage.path(stored.audio_key).read_bytes()
        attempt = recording(voice="Male1", fmt="mp3")
        assert raw.startswith(MAGIC + b"\x03cur") and attempt[:64] not in raw
        r = pair.b.client.get(
            f"/api/v1/practice/records/{record['practice_record_id']}/audio", headers=users["learner"]["headers"]
        )
        assert r.status_code == 200 and r.content == attempt
        ref = pair.b.client.get(
            f"/api/v1/practice/sentences/{ready['sentence']['sentence_id']}/audio", headers=users["learner"]["headers"]
        )
        assert ref.status_code == 200 and ref.content == recording()
        task_id = pair.a.submit(users["learner"], record["practice_record_id"]).json()["task_id"]
        final = pair.a.wait_for(users["learner"], task_id, {"success", "failure"}, timeout=90)
        assert final["status"] == "success", final  # the worker decrypted both recordings
        result = pair.b.client.get(
            f"/api/v1/tasks/analysis/{task_id}/result", headers=users["learner"]["headers"]
        ).json()
        assert 0 <= result["overall_score"] <= 100
    finally:
        worker.stop()
    # the worker's decrypted copies are gone
    assert (
        list(Path(tempfile.gettempdir()).glob("vb-*.mp3")) == []
        and list(Path(tempfile.gettempdir()).glob("vb-*.wav")) == []
    )
