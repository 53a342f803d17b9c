"""The embedded default's data folder holds health data (recordings, the SQLite database) and its
secrets (keys, the Redis password, the metrics token): no other local user may read any of it.

`vocalborn up` calls ``prepare`` before it starts anything: umask 077 for itself and every
process it starts (so the SQLite file and its -wal/-shm, Redis's files, logs and recordings are
created 0600 in 0700 folders), the folder and whatever an older install left in it made private,
the storage key and the metrics token generated when they are not configured."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from vocalborn.config_files import METRICS_TOKEN_FILE, STORAGE_KEY_FILE, write_private_file


def make_private(root: Path) -> int:
    """chmod the folder tree: folders 0700, files 0600 (symbolic links are left alone and not
    followed). Returns how many modes it changed."""
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name, mode in [(dirpath, 0o700)] + [(os.path.join(dirpath, f), 0o600) for f in filenames]:
            try:
                st = os.lstat(name)
                if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
                    continue
                os.chmod(name, mode)
                changed += 1
            except FileNotFoundError:
                continue
        dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
    return changed


def prepare(settings) -> Path:
    """Make the data folder private and its generated secrets exist; returns its absolute path."""
    os.umask(0o077)
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    make_private(data)
    if settings.environment == "local" and not settings.encryption_keys():
        settings.storage_keyring()  # generates DATA_DIR/storage_keys on first use
    if not settings.metrics_token:
        token_file = data / METRICS_TOKEN_FILE
        if not token_file.exists():
            write_private_file(token_file, secrets.token_hex(32).encode(), exclusive=True)
    return data


def secrets_lines(settings, data: Path, redis_password_file: Path | None, api_url: str) -> list[str]:
    """What `up` prints about the generated secrets: where they are, never their values."""
    lines = []
    if redis_password_file is not None:
        lines.append(f"Redis:     password in {redis_password_file} (mode 0600; CONFIG disabled)")
    if not settings.metrics_token:
        token = data / METRICS_TOKEN_FILE
        lines.append(
            f"Scrape:    metrics need the token in {token}: "
            f'curl -H "Authorization: Bearer $(cat {token})" {api_url}/metrics '
            "(Prometheus: authorization.credentials_file, see monitoring/prometheus.yml)"
        )
    if settings.environment == "local" and not settings.encryption_keys():
        lines.append(f"Storage:   recordings encrypted with the key in {data / STORAGE_KEY_FILE} (mode 0600)")
    return lines
