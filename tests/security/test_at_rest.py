"""Issue 23, health data at rest on the embedded default: a generated storage key, private files,
production refusing to start without storage keys, and `vocalborn storage rotate-key` (in the
background, resumable, nothing unreadable at any moment). The whole `vocalborn up` walkthrough
is checked from outside in tests/test_readme.py."""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from tests.support import recording
from vocalborn.config import Settings, embedded_redis_url
from vocalborn.config_files import STORAGE_KEY_FILE, read_storage_key_file
from vocalborn.embedded import EmbeddedRedis
from vocalborn.security.datadir import make_private, prepare
from vocalborn.storage import MAGIC, LocalStorage, rotation

SERVER_KEYS = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "REDIS_URL",
    "SECRET_KEY",
    "ENVIRONMENT",
    "METRICS_TOKEN",
    "STORAGE_ENCRYPTION_KEYS",
    "STORAGE_ENCRYPTION_KEY",
    "STORAGE_ENCRYPTION_KEY_ID",
)


def embedded_env(data: Path, **extra: str) -> dict[str, str]:
    """The environment of the embedded default (nothing configured) on ``data``."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_KEYS}
    return dict(env, DATA_DIR=str(data), ENVIRONMENT="local", **extra)


def vocalborn(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vocalborn.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- production refuses to start without storage keys --------------------------------------------
def production_without_storage_keys(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVER_KEYS}
    password = secrets.token_hex(16)
    return dict(
        env,
        ENVIRONMENT="production",
        DATA_DIR=str(tmp_path),
        SECRET_KEY=secrets.token_hex(32),
        METRICS_TOKEN=secrets.token_hex(32),
        FLOWER_BASIC_AUTH=f"ops:{secrets.token_hex(12)}",
        # unreachable on purpose: the refusal comes before any connection
        DATABASE_URL=f"postgresql://vb:{password}@127.0.0.1:9/vb",
        CELERY_BROKER_URL=f"redis://:{password}@127.0.0.1:9/0",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["up", "--port", "9", "--no-flower"],
        ["api", "--port", "9"],
        ["worker"],
        ["beat"],
        ["migrate"],
        ["flower"],
        ["storage", "rotate-key", "--wait"],
        ["storage", "rotate"],
        ["users", "create", "--email", "a@example.com", "--name", "A", "--password", "x" * 20],
    ],
)
def test_production_without_storage_keys_is_refused_by_every_command_in_one_line(
    command: list[str], tmp_path: Path
) -> None:
    done = vocalborn(command, production_without_storage_keys(tmp_path), timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "STORAGE_ENCRYPTION_KEYS" in lines[0], done.stderr
    assert lines[0].startswith("error: invalid configuration: refusing to start in production: ")
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "vocalborn.sqlite3").exists() and not (tmp_path / STORAGE_KEY_FILE).exists()


def test_production_with_storage_keys_passes_the_check(tmp_path: Path) -> None:
    env = production_without_storage_keys(tmp_path)
    env["STORAGE_ENCRYPTION_KEYS"] = f"k1:{base64.b64encode(os.urandom(32)).decode()}"
    done = vocalborn(["storage", "rotate-key", "--status"], env)
    assert done.returncode == 0 and "no key rotation has run here" in done.stdout, done.stderr


# --- the embedded default's key and private files -------------------------------------------------
def test_the_embedded_default_generates_its_storage_key_and_writes_private_encrypted_files(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, environment="local", _env_file=None)
    keys, current = settings.storage_keyring()
    assert list(keys) == [current] and len(keys[current]) == 32
    assert mode(tmp_path / STORAGE_KEY_FILE) == 0o600
    assert settings.storage_keyring() == (keys, current)  # generated once
    # a second process sees the same key, not one of its own
    again = Settings(data_dir=tmp_path, environment="local", _env_file=None).storage_keyring()
    assert again == (keys, current)

    old_umask = os.umask(0o022)  # even with a permissive umask
    try:
        store = LocalStorage(tmp_path / "storage", keys, current)
        audio = recording()
        name = store.save("recordings", audio, "wav")
    finally:
        os.umask(old_umask)
    path = store.path(name)
    assert mode(path) == 0o600 and mode(path.parent) == 0o700
    assert path.read_bytes().startswith(MAGIC) and not path.read_bytes().startswith(b"RIFF")
    assert store.read(name) == audio
    # tests and production without keys: no generated key (production is refused instead)
    assert Settings(data_dir=tmp_path / "t", environment="test", _env_file=None).storage_keyring() == ({}, None)


def test_up_makes_an_older_installs_folder_private_and_keeps_its_plain_files_readable(tmp_path: Path) -> None:
    data = tmp_path / "var"
    (data / "storage" / "recordings" / "ab").mkdir(parents=True)
    os.chmod(data, 0o755)
    legacy = LocalStorage(data / "storage")  # an older install: no key, plain files, 0644
    old_umask = os.umask(0o022)
    try:
        name = legacy.save("recordings", recording(), "wav")
        os.chmod(legacy.path(name), 0o644)
        (data / "vocalborn.sqlite3").write_bytes(b"SQLite format 3\x00")
        os.chmod(data / "vocalborn.sqlite3", 0o644)
        outside = tmp_path / "not-ours.txt"
        outside.write_text("someone else's file")
        os.chmod(outside, 0o644)
        (data / "elsewhere").symlink_to(outside)
        settings = Settings(data_dir=data, environment="local", _env_file=None)
        prepare(settings)
        assert os.umask(0o022) == 0o077  # `up` and everything it starts create private files
    finally:
        os.umask(old_umask)
    assert mode(data) == 0o700 and mode(data / "vocalborn.sqlite3") == 0o600 and mode(legacy.path(name)) == 0o600
    assert (data / "elsewhere").is_symlink() and mode(outside) == 0o644  # a link is not followed
    assert mode(data / "metrics_token") == 0o600 and len((data / "metrics_token").read_text()) == 64
    keys, current = settings.storage_keyring()
    assert current is not None
    store = LocalStorage(data / "storage", keys, current)
    assert store.read(name) == recording() and not store.encrypted(name)  # the old plain file is read
    assert make_private(data) == 0  # nothing left to change


# --- rotate-key ----------------------------------------------------------------------------------
def fill(data: Path, plain: int, encrypted: int) -> tuple[list[str], dict[str, bytes]]:
    """An embedded folder with ``plain`` files of an older install and ``encrypted`` ones under the
    generated key; returns the names and their contents."""
    settings = Settings(data_dir=data, environment="local", _env_file=None)
    old = LocalStorage(data / "storage")
    contents: dict[str, bytes] = {}
    for i in range(plain):
        body = f"plain take {i}".encode()
        contents[old.save("recordings", body, "wav")] = body
    keys, current = settings.storage_keyring()
    store = LocalStorage(data / "storage", keys, current)
    for i in range(encrypted):
        body = f"encrypted take {i}".encode() + os.urandom(2000)
        contents[store.save("references" if i % 2 else "recordings", body, "mp3")] = body
    return sorted(contents), contents


def test_rotate_key_moves_every_file_to_a_new_key_and_drops_the_old_one(tmp_path: Path) -> None:
    data = tmp_path / "var"
    names, contents = fill(data, plain=3, encrypted=5)
    before, first = read_storage_key_file(data / STORAGE_KEY_FILE)
    done = vocalborn(["storage", "rotate-key", "--wait"], embedded_env(data))
    assert done.returncode == 0, done.stderr
    keys, current = read_storage_key_file(data / STORAGE_KEY_FILE)
    assert current != first and list(keys) == [current]  # the old key is gone, after every file moved
    assert f"old keys dropped from {data / STORAGE_KEY_FILE}: {first}" in done.stdout
    store = LocalStorage(data / "storage", keys, current)
    assert all(store.key_id_of(n) == current and store.read(n) == contents[n] for n in names)
    progress = json.loads((data / rotation.PROGRESS_FILE).read_text())
    assert progress["state"] == "done" and progress["reencrypted"] == 8 and progress["failed"] == 0
    assert mode(data / rotation.PROGRESS_FILE) == 0o600 and mode(data / STORAGE_KEY_FILE) == 0o600


def test_rotate_key_resumes_an_interrupted_rotation_where_it_stopped(tmp_path: Path) -> None:
    data = tmp_path / "var"
    names, contents = fill(data, plain=2, encrypted=6)
    settings = Settings(data_dir=data, environment="local", _env_file=None)
    progress, resumed = rotation.begin(settings)
    assert not resumed
    # half done, then the process died: the first four moved, the progress file says so
    keys, _ = settings.storage_keyring()
    store = LocalStorage(data / "storage", keys, progress.target)
    for name in names[:4]:
        store._write(name, store._encrypt(name, store.read(name)))
    progress.cursor, progress.reencrypted, progress.pid = names[3], 4, 999_999_999
    rotation.save_progress(data, progress)

    status = vocalborn(["storage", "rotate-key", "--status"], embedded_env(data))
    assert "running" in status.stdout and "stopped: run it again to resume" in status.stdout, status.stdout
    done = vocalborn(["storage", "rotate-key", "--wait"], embedded_env(data))
    assert done.returncode == 0, done.stderr
    assert f"resuming rotation to key {progress.target}" in done.stdout
    final = json.loads((data / rotation.PROGRESS_FILE).read_text())
    # the four done before were not read again: only the rest counted
    assert (final["state"], final["target"], final["reencrypted"], final["already_current"]) == (
        "done",
        progress.target,
        8,
        0,
    ), final
    keys, current = read_storage_key_file(data / STORAGE_KEY_FILE)
    assert current == progress.target and list(keys) == [current]
    store = LocalStorage(data / "storage", keys, current)
    assert all(store.read(n) == contents[n] for n in names)


def test_rotate_key_runs_in_the_background_and_every_file_stays_readable_meanwhile(tmp_path: Path) -> None:
    data = tmp_path / "var"
    names, contents = fill(data, plain=10, encrypted=60)
    settings = Settings(data_dir=data, environment="local", _env_file=None)
    started = vocalborn(["storage", "rotate-key"], embedded_env(data))
    assert started.returncode == 0 and "re-encrypting in the background (pid" in started.stdout, started.stderr

    # a reader with the keys of each moment (as every API and worker process has) reads every
    # file, over and over, while the files move and the old key goes
    failures: list[str] = []
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            for name in names:
                keys, current = settings.storage_keyring()
                try:
                    assert LocalStorage(data / "storage", keys, current).read(name) == contents[name]
                    reads += 1
                except Exception as exc:  # noqa: BLE001 - every failure is the finding
                    failures.append(f"{name}: {type(exc).__name__}: {exc}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = vocalborn(["storage", "rotate-key", "--status"], embedded_env(data)).stdout
            if ": done;" in status or ": failed;" in status:
                break
            time.sleep(0.5)
    finally:
        stop.set()
        thread.join(30)
    assert ": done;" in status and "re-encrypted 70" in status, status + (data / rotation.LOG_FILE).read_text()
    assert failures == [] and reads > len(names)
    keys, current = read_storage_key_file(data / STORAGE_KEY_FILE)
    assert list(keys) == [current]
    assert all(LocalStorage(data / "storage", keys, current).key_id_of(n) == current for n in names)
    for path in (data / "storage").rglob("*"):
        if path.is_file():
            assert path.read_bytes().startswith(MAGIC), path


def test_rotate_key_with_configured_keys_moves_files_to_the_current_one(tmp_path: Path) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    store = LocalStorage(tmp_path / "storage", {"k1": k1})
    names = [store.save("recordings", f"take {i}".encode(), "wav") for i in range(3)]
    plain = LocalStorage(tmp_path / "storage").save("references", b"old plain", "wav")
    env = dict(
        embedded_env(tmp_path),
        ENVIRONMENT="test",
        STORAGE_ENCRYPTION_KEYS=f"k1:{base64.b64encode(k1).decode()},k2:{base64.b64encode(k2).decode()}",
    )
    done = vocalborn(["storage", "rotate-key", "--wait"], env)
    assert done.returncode == 0, done.stderr
    assert "every file is on key k2; the other keys may now leave STORAGE_ENCRYPTION_KEYS" in done.stdout
    only_new = LocalStorage(tmp_path / "storage", {"k2": k2})
    assert [only_new.read(n) for n in names] == [b"take 0", b"take 1", b"take 2"]
    assert only_new.read(plain) == b"old plain" and only_new.key_id_of(plain) == "k2"


def test_rotate_key_without_any_key_outside_the_embedded_default_says_so(tmp_path: Path) -> None:
    done = vocalborn(["storage", "rotate-key", "--wait"], dict(embedded_env(tmp_path), ENVIRONMENT="test"))
    assert done.returncode == 1 and "nothing to rotate to" in done.stderr and "Traceback" not in done.stderr


# --- the bundled Redis ----------------------------------------------------------------------------
def raw(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(200)


def test_the_bundled_redis_requires_its_generated_password_and_has_no_config(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    try:
        password_file = tmp_path / "redis" / "password"
        assert mode(password_file) == 0o600 and mode(tmp_path / "redis" / "redis.conf") == 0o600
        password = password_file.read_text().strip()
        assert len(password) >= 32
        assert raw(server.port, b"PING\r\n").startswith(b"-NOAUTH")
        assert raw(server.port, b"FLUSHALL\r\n").startswith(b"-NOAUTH")
        assert raw(server.port, b"AUTH wrong-password\r\n").startswith(b"-WRONGPASS")
        client = redis.Redis.from_url(f"{server.url}/0")
        assert client.ping()
        with pytest.raises(redis.ResponseError, match="unknown command"):
            client.execute_command("CONFIG", "GET", "dir")
        # the password is on no command line (`ps` shows every user's)
        assert server.process is not None
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().decode(errors="replace")
        assert password not in cmdline
        # the settings find it for the processes `up` starts
        settings = Settings(data_dir=tmp_path, environment="local", _env_file=None)
        assert embedded_redis_url(settings, db=0) == f"redis://:{password}@127.0.0.1:{server.port}/0"
    finally:
        server.stop()
    # a restart keeps the same password
    again = EmbeddedRedis(tmp_path, port=server.port)
    assert again.password == password
