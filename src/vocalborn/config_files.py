"""Files under DATA_DIR that stand in for settings in the embedded default: the storage keys and
the metrics token (created on first use, private to the user), read with a cache keyed by the
file's identity. Imports nothing of the app."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from vocalborn.config_secrets import parse_encryption_keys

STORAGE_KEY_FILE = "storage_keys"  # under DATA_DIR: the embedded default's storage keys, one ID:BASE64 a line
METRICS_TOKEN_FILE = "metrics_token"  # under DATA_DIR: the embedded default's metrics token
_file_cache: dict[Path, tuple[tuple[int, int, int], bytes]] = {}


def read_cached(path: Path) -> bytes:
    """A small file's bytes, read again only when it changed (a stat per call): running
    processes see a new storage key as soon as ``rotate-key`` writes it."""
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
    cached = _file_cache.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    data = path.read_bytes()
    _file_cache[path] = (stamp, data)
    return data


def write_private_file(path: Path, data: bytes, exclusive: bool = False) -> bool:
    """Write ``data`` to ``path`` with mode 0600, atomically (a temporary file, then a rename).
    ``exclusive``: only if ``path`` does not exist yet (two processes generating a key at once
    end up with the same one); returns whether this call wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        os.replace(tmp, path)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def read_storage_key_file(path: Path) -> tuple[dict[str, bytes], str | None]:
    """The key file's keys (in order) and its current one (the last)."""
    raw = read_cached(path).decode()
    keys = parse_encryption_keys(",".join(line.strip() for line in raw.splitlines() if line.strip()), None)
    return keys, (list(keys)[-1] if keys else None)


def add_storage_key(path: Path) -> str:
    """Append a new random key to the key file (creating it), making it the current one."""
    import base64
    import time

    keys = read_storage_key_file(path)[0] if path.exists() else {}
    key_id = "k" + time.strftime("%Y%m%d%H%M%S", time.gmtime())
    while key_id in keys:
        key_id = "k" + secrets.token_hex(6)
    keys[key_id] = secrets.token_bytes(32)
    text = "".join(f"{k}:{base64.b64encode(v).decode()}\n" for k, v in keys.items()).encode()
    if len(keys) == 1:
        if not write_private_file(path, text, exclusive=True):
            return read_storage_key_file(path)[1] or key_id  # another process made it first
    else:
        write_private_file(path, text)
    return key_id


def keep_only_storage_key(path: Path, key_id: str) -> None:
    """Rewrite the key file with ``key_id`` alone (after every file has moved to it)."""
    import base64

    keys = read_storage_key_file(path)[0]
    write_private_file(path, f"{key_id}:{base64.b64encode(keys[key_id]).decode()}\n".encode())
