"""Where recordings live. A directory by default, behind a small interface.

Keys are chosen by the server (``kind/ab/<uuid>.<ext>``); nothing a user sends becomes a path.

With STORAGE_ENCRYPTION_KEYS (or STORAGE_ENCRYPTION_KEY) set, files are written with
AES-256-GCM: ``VBENC1`` | key-id length (1 byte) | key id | 12-byte nonce | ciphertext+tag, the
storage key as associated data (a file cannot be swapped for another). Reading picks the key by
the id in the header, so old keys keep working while ``vocalborn storage rotate-key``
re-encrypts (``storage/rotation.py``). Plain files (written before encryption was turned on, or by
an embedded install older than its generated key) are still read as they are.

Without STORAGE_ENCRYPTION_KEYS the embedded default (ENVIRONMENT=local) generates a key of its
own in ``DATA_DIR/storage_keys`` (``Settings.storage_keyring``). Files are written 0600 in 0700
folders.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vocalborn.config import get_settings

_KEY = re.compile(r"^[a-z]+/[0-9a-f]{2}/[0-9a-f]{32}\.[a-z0-9]{1,8}$")
MAGIC = b"VBENC1"
KINDS = ("recordings", "references")


class Storage(Protocol):
    def save(self, kind: str, data: bytes, extension: str) -> str: ...
    def path(self, key: str) -> Path: ...
    def read(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class MissingKey(Exception):
    """A file is encrypted with a key id that is not configured any more."""


@dataclass
class RotationReport:
    reencrypted: int = 0
    already_current: int = 0
    failed: int = 0


class LocalStorage:
    def __init__(self, root: Path, keys: dict[str, bytes] | None = None, current_key_id: str | None = None) -> None:
        self.root = root
        self.keys = dict(keys or {})
        self.current_key_id = current_key_id or (list(self.keys)[-1] if self.keys else None)

    # --- encryption --------------------------------------------------------------------------
    def _encrypt(self, key: str, data: bytes) -> bytes:
        if self.current_key_id is None:
            return data
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        key_id = self.current_key_id.encode()
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.current_key_id]).encrypt(nonce, data, key.encode())
        return MAGIC + bytes([len(key_id)]) + key_id + nonce + sealed

    def _decrypt(self, key: str, blob: bytes) -> bytes:
        if not blob.startswith(MAGIC):
            return blob
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        n = blob[len(MAGIC)]
        start = len(MAGIC) + 1
        key_id = blob[start : start + n].decode()
        nonce = blob[start + n : start + n + 12]
        if key_id not in self.keys:
            raise MissingKey(f"{key} is encrypted with key {key_id!r}, which is not in STORAGE_ENCRYPTION_KEYS")
        return AESGCM(self.keys[key_id]).decrypt(nonce, blob[start + n + 12 :], key.encode())

    def key_id_of(self, key: str) -> str | None:
        """The key id in a file's header; None for a plain file."""
        with open(self.path(key), "rb") as fh:
            head = fh.read(len(MAGIC) + 17)
        if not head.startswith(MAGIC):
            return None
        n = head[len(MAGIC)]
        return head[len(MAGIC) + 1 : len(MAGIC) + 1 + n].decode()

    def encrypted(self, key: str) -> bool:
        try:
            return self.key_id_of(key) is not None
        except FileNotFoundError:
            return bool(self.keys)

    # --- files -------------------------------------------------------------------------------------
    def _write(self, key: str, data: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = target.with_suffix(target.suffix + f".{uuid.uuid4().hex[:8]}.part")
        # 0600 whatever the umask: recordings are health data, no other local user reads them
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)  # readers never see half a file

    def save(self, kind: str, data: bytes, extension: str) -> str:
        name = uuid.uuid4().hex
        key = f"{kind}/{name[:2]}/{name}.{extension}"
        self._write(key, self._encrypt(key, data))
        return key

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def read(self, key: str) -> bytes:
        return self._decrypt(key, self.path(key).read_bytes())

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def iter_keys(self, kind: str) -> list[str]:
        base = self.root / kind
        if not base.exists():
            return []
        return [
            f"{kind}/{p.parent.name}/{p.name}"
            for p in base.glob("*/*")
            if _KEY.match(f"{kind}/{p.parent.name}/{p.name}")
        ]

    @contextlib.contextmanager
    def plaintext_path(self, path: Path) -> Iterator[Path]:
        """A path to the plain audio of a stored file: the file itself when it is not encrypted,
        otherwise a private temporary copy, removed afterwards. For readers that need a file
        (the analysis engine)."""
        try:
            key = path.relative_to(self.root).as_posix()
        except ValueError:
            key = ""
        if not _KEY.match(key) or not path.exists() or not self.encrypted(key):
            yield path
            return
        fd, tmp = tempfile.mkstemp(prefix="vb-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(self.read(key))
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def rotate(self) -> RotationReport:
        """Re-encrypt every file not written with the current key (plain files included)."""
        report = RotationReport()
        if self.current_key_id is None:
            raise MissingKey("no STORAGE_ENCRYPTION_KEYS configured: nothing to rotate to")
        for kind in KINDS:
            for key in self.iter_keys(kind):
                try:
                    if self.key_id_of(key) == self.current_key_id:
                        report.already_current += 1
                        continue
                    self._write(key, self._encrypt(key, self.read(key)))
                    report.reencrypted += 1
                except FileNotFoundError:
                    continue  # deleted meanwhile
                except Exception:
                    report.failed += 1
        return report


def get_storage() -> LocalStorage:
    """The storage with the keys of this moment: STORAGE_ENCRYPTION_KEYS, or the embedded
    default's key file (read again when ``rotate-key`` changes it)."""

    settings = get_settings()
    keys, current = settings.storage_keyring()
    return LocalStorage(settings.storage_dir, keys, current)
