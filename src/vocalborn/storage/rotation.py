"""`vocalborn storage rotate-key`: move every stored file to the newest key, while the service runs.

- With STORAGE_ENCRYPTION_KEYS the newest key is the current one (STORAGE_ENCRYPTION_KEY_ID, or
  the last listed): the operator adds it first, and removes the old ones after ``done``.
- On the embedded default (the key file ``DATA_DIR/storage_keys``) a new key is generated and
  appended; every process reads the key file again when it changes, so it writes new files with
  the new key at once and still reads the old ones. When every file is on the new key (and a
  last pass found none left behind), the old keys are dropped from the file.

Nothing is unreadable at any moment: a file is replaced atomically by its re-encrypted copy
(``LocalStorage._write``), and no key is dropped before no file needs it. Progress is kept in
``DATA_DIR/storage-rotation.json`` (the key being rotated to, the last file done, the counts), so
a rotation stopped half-way (Ctrl-C, a reboot) continues where it was: running the command again
resumes it rather than starting another one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vocalborn.config_files import STORAGE_KEY_FILE, add_storage_key, keep_only_storage_key, write_private_file
from vocalborn.storage import KINDS, LocalStorage, MissingKey
from vocalborn.supervision import alive

log = logging.getLogger(__name__)

PROGRESS_FILE = "storage-rotation.json"
LOG_FILE = "storage-rotation.log"
# After a new key is written, every process picks it up on its next storage access; this pause
# lets a request that read the keys just before finish with them before files start moving.
SETTLE_SECONDS = 2.0


@dataclass
class Progress:
    target: str  # the key id every file moves to
    state: str = "running"  # running | done | failed
    cursor: str = ""  # the last storage key handled, in sorted order
    reencrypted: int = 0
    already_current: int = 0
    failed: int = 0
    failed_keys: list[str] = field(default_factory=list)
    pid: int = 0
    started_at: float = 0.0
    updated_at: float = 0.0
    retired: list[str] = field(default_factory=list)  # key ids dropped from the key file at the end

    def line(self) -> str:
        return (
            f"rotation to key {self.target}: {self.state}; re-encrypted {self.reencrypted}, "
            f"already current {self.already_current}, failed {self.failed}"
        )


def progress_path(data_dir: Path) -> Path:
    return data_dir / PROGRESS_FILE


def read_progress(data_dir: Path) -> Progress | None:
    try:
        raw: dict[str, Any] = json.loads(progress_path(data_dir).read_text())
    except (FileNotFoundError, ValueError):
        return None
    known = {k: v for k, v in raw.items() if k in Progress.__dataclass_fields__}
    return Progress(**known)


def save_progress(data_dir: Path, progress: Progress) -> None:
    progress.updated_at = time.time()
    write_private_file(progress_path(data_dir), json.dumps(asdict(progress), indent=1).encode())


def all_keys(storage: LocalStorage) -> list[str]:
    return sorted(k for kind in KINDS for k in storage.iter_keys(kind))


def begin(settings: Any) -> tuple[Progress, bool]:
    """The rotation to run: the unfinished one (resumed), or a new one. Returns (progress,
    resumed). Raises MissingKey when there is no key to rotate to, RuntimeError when another
    rotation is running."""

    data_dir = settings.data_dir
    previous = read_progress(data_dir)
    if previous is not None and previous.state in ("running", "failed"):
        if previous.state == "running" and previous.pid != os.getpid() and alive(previous.pid):
            raise RuntimeError(f"a rotation is already running (pid {previous.pid}): {previous.line()}")
        keys, current = settings.storage_keyring()
        if previous.target in keys and previous.target == current:
            if previous.state == "failed":  # once more over everything, same key
                previous = Progress(target=previous.target, started_at=previous.started_at)
            previous.state = "running"
            previous.pid = os.getpid()
            return previous, True
    keys, current = settings.storage_keyring()
    if settings.encryption_keys():
        if current is None:
            raise MissingKey("no STORAGE_ENCRYPTION_KEYS configured: nothing to rotate to")
        target = current
    elif settings.environment == "local":
        target = add_storage_key(data_dir / STORAGE_KEY_FILE)
        time.sleep(SETTLE_SECONDS)
    else:
        raise MissingKey("no STORAGE_ENCRYPTION_KEYS configured: nothing to rotate to")
    now = time.time()
    return Progress(target=target, pid=os.getpid(), started_at=now), False


def run(settings: Any, progress: Progress, report: Callable[[Progress], None] | None = None) -> Progress:
    """Re-encrypt every file after ``progress.cursor`` that is not on the target key, saving the
    progress as it goes; then a last pass over everything, then (key file only) drop old keys."""

    data_dir = settings.data_dir
    save_progress(data_dir, progress)
    last_save = time.monotonic()

    def storage() -> LocalStorage:
        keys, _current = settings.storage_keyring()
        if progress.target not in keys:
            raise MissingKey(f"key {progress.target!r} is not configured any more; the rotation cannot go on")
        return LocalStorage(settings.storage_dir, keys, progress.target)

    def one_pass(start_after: str, count: bool) -> int:
        nonlocal last_save
        moved = 0
        for key in all_keys(storage()):
            if key <= start_after:
                continue
            store = storage()
            try:
                if store.key_id_of(key) == progress.target:
                    progress.already_current += 1 if count else 0
                else:
                    store._write(key, store._encrypt(key, store.read(key)))
                    moved += 1
                    progress.reencrypted += 1
            except FileNotFoundError:
                pass  # deleted meanwhile (erasure, retention)
            except Exception as exc:
                progress.failed += 1
                if len(progress.failed_keys) < 100:
                    progress.failed_keys.append(key)
                log.error("could not re-encrypt %s: %s: %s", key, type(exc).__name__, exc)
            if count:
                progress.cursor = key
            if time.monotonic() - last_save > 1.0:
                save_progress(data_dir, progress)
                last_save = time.monotonic()
                if report:
                    report(progress)
        return moved

    one_pass(progress.cursor, count=True)
    # Files written meanwhile by a process that still held the old keys: a last pass finds them.
    if progress.failed == 0:
        time.sleep(SETTLE_SECONDS if settings.encryption_keys() == {} else 0)
        one_pass("", count=False)
    if progress.failed:
        progress.state = "failed"
    else:
        progress.state = "done"
        key_file = data_dir / STORAGE_KEY_FILE
        if not settings.encryption_keys() and key_file.exists():
            keys, _current = settings.storage_keyring()
            progress.retired = [k for k in keys if k != progress.target]
            if progress.retired:
                keep_only_storage_key(key_file, progress.target)
    save_progress(data_dir, progress)
    if report:
        report(progress)
    return progress


def start_in_background(data_dir: Path, argv: list[str], env: dict[str, str]) -> int:
    """Start ``argv`` detached from this terminal (its own session), output to the log file."""
    import subprocess

    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = data_dir / LOG_FILE
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with contextlib.closing(os.fdopen(fd, "ab")) as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return proc.pid
