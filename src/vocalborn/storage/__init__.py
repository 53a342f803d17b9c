"""Where recordings live. A directory by default, behind a small interface.

Keys are chosen by the server (``kind/ab/<uuid>.<ext>``); nothing a user sends becomes a path.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[a-z]+/[0-9a-f]{2}/[0-9a-f]{32}\.[a-z0-9]{1,8}$")


class Storage(Protocol):
    def save(self, kind: str, data: bytes, extension: str) -> str: ...
    def path(self, key: str) -> Path: ...
    def read(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def save(self, kind: str, data: bytes, extension: str) -> str:
        name = uuid.uuid4().hex
        key = f"{kind}/{name[:2]}/{name}.{extension}"
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)  # readers never see half a file
        return key

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

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


def get_storage() -> LocalStorage:
    from vocalborn.config import get_settings

    return LocalStorage(get_settings().storage_dir)
