"""`vocalborn backup FILE` and `vocalborn restore FILE`: the database, the recordings and the keys
kept under the data folder, in one archive, taken while the system runs.

Consistency: the database is copied first, as one snapshot (SQLite's online backup API;
PostgreSQL: ``pg_dump --snapshot`` of a repeatable-read transaction that also counts every
table, so the counts in the manifest are the dump's own), and the files after it. A recording is
written before the row that names it is committed, so every file the snapshot refers to is
already on disk when the files are copied; files added later are extra, never missing. (A file
that retention deletes in between is the one gap: its row says it expired anyway.)

The archive (tar, gzip): ``manifest.json`` (format, time, database kind, schema revision, rows
per table, size and SHA-256 of every file), ``database.sqlite3`` or ``database.pgdump``
(custom format), and ``files/`` (``storage/`` with the recordings, ``secret_key``, ``storage_keys``,
``metrics_token`` and ``flower_credentials`` when present). Restore refuses a database or data folder that is not
empty, checks every checksum, and compares the row counts after loading.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from vocalborn import models  # noqa: F401 - registers every table
from vocalborn.cli.common import fail, load_settings
from vocalborn.config import get_settings, redact_url

FORMAT = "vocalborn-backup/1"
# Beside storage/: what the data folder must keep. storage_keys decrypt the recordings on the embedded
# default (security issue #23): a backup without them restores files nobody can read.
KEPT_FILES = ("secret_key", "storage_keys", "metrics_token", "flower_credentials")

DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="the data folder (default DATA_DIR, ./var)", show_default=False)
]


def _settings(data_dir: Path | None) -> Any:
    if data_dir is not None:
        os.environ["DATA_DIR"] = str(data_dir)
        get_settings.cache_clear()  # the CLI's configuration check read them before the option
    return load_settings()


def _pg_tool(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    path = found[-1] if found else shutil.which(name)
    if path is None:
        fail(f"{name} is not installed (PostgreSQL's client tools, e.g. apt-get install postgresql-client)")
    return str(path)


def _run_pg_tool(name: str, url: str, *options: str) -> None:
    """Run PostgreSQL's ``name`` (pg_dump, pg_restore) against ``url``; its last error line, and exit 1, on failure."""
    args, env = _libpq(url)
    done = subprocess.run([_pg_tool(name), *args, *options], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        fail(f"{name} failed: {lines[-1] if lines else done.returncode}")


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """pg_dump/pg_restore arguments and environment for a SQLAlchemy URL; the password goes in
    the environment, never on a command line."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    args = ["--dbname", str(u.database or "")]
    if u.host:
        args += ["--host", u.host]
    if u.port:
        args += ["--port", str(u.port)]
    if u.username:
        args += ["--username", u.username]
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = str(u.password)
    return args, env


def _tables() -> list[str]:
    from sqlmodel import SQLModel

    return sorted(t.name for t in SQLModel.metadata.sorted_tables)


def _counts(connection: Any, tables: list[str]) -> dict[str, int]:
    from sqlalchemy import text

    return {t: int(connection.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one()) for t in tables}


def _revision(connection: Any) -> str | None:
    from sqlalchemy import text

    try:
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
    except Exception:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _snapshot_sqlite(url: str, into: Path) -> tuple[dict[str, int], str | None]:
    from sqlalchemy import create_engine

    source = Path(url.removeprefix("sqlite:///"))
    if not source.is_file():
        fail(f"no database at {source}")
    target = into / "database.sqlite3"
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)  # online: a consistent copy while the API and workers write
    finally:
        dst.close()
        src.close()
    engine = create_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as conn:
            return _counts(conn, _tables()), _revision(conn)
    finally:
        engine.dispose()


def _snapshot_postgres(url: str, into: Path) -> tuple[dict[str, int], str | None]:
    from sqlalchemy import create_engine, text

    engine = create_engine(url, isolation_level="REPEATABLE READ")
    try:
        with engine.connect() as conn:
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            counts, revision = _counts(conn, _tables()), _revision(conn)
            _run_pg_tool(
                "pg_dump",
                url,
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                f"--snapshot={snapshot}",
                "--file",
                str(into / "database.pgdump"),
            )
            conn.rollback()
        return counts, revision
    finally:
        engine.dispose()


def backup(
    file: Annotated[Path, typer.Argument(help="the archive to write (tar.gz); refused if it exists")],
    data_dir: DataDirOption = None,
) -> None:
    """Back up the database, the recordings and the keys of the data folder into one archive,
    while the system runs."""

    settings = _settings(data_dir)
    url = settings.effective_database_url
    if file.exists():
        fail(f"{file} exists; choose a new name (a backup never overwrites one)")
    if not file.parent.is_dir():
        fail(f"no folder {file.parent}")
    started = time.monotonic()
    data = settings.data_dir.resolve()
    with tempfile.TemporaryDirectory(prefix=".vocalborn-backup-", dir=file.parent) as tmp:
        stage = Path(tmp)
        if url.startswith("sqlite"):
            kind, counts, revision = "sqlite", *_snapshot_sqlite(url, stage)
        elif url.startswith("postgresql"):
            kind, counts, revision = "postgresql", *_snapshot_postgres(url, stage)
        else:
            fail(f"cannot back up {redact_url(url)}: only SQLite and PostgreSQL")
        # the files after the snapshot: everything it refers to is on disk already
        files: dict[str, dict[str, Any]] = {}
        sources: list[Path] = [p for p in sorted((data / "storage").rglob("*")) if p.is_file()]
        sources += [data / name for name in KEPT_FILES if (data / name).is_file()]
        archive_tmp = stage / "archive.tar.gz"
        with tarfile.open(archive_tmp, "w:gz", compresslevel=1) as tar:
            database_file = stage / ("database.sqlite3" if kind == "sqlite" else "database.pgdump")
            tar.add(database_file, arcname=database_file.name)
            for path in sources:
                rel = path.relative_to(data).as_posix()
                try:
                    files[rel] = {"size": path.stat().st_size, "sha256": _sha256(path)}
                    tar.add(path, arcname=f"files/{rel}")
                except FileNotFoundError:  # deleted since the listing (retention): not in the snapshot's future
                    files.pop(rel, None)
            manifest = {
                "format": FORMAT,
                "created_at": datetime.now(UTC).isoformat(),
                "database": {
                    "kind": kind,
                    "file": database_file.name,
                    "sha256": _sha256(database_file),
                    "revision": revision,
                    "rows": counts,
                },
                "files": files,
            }
            blob = json.dumps(manifest, indent=1, sort_keys=True).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(blob), int(time.time())
            tar.addfile(info, io.BytesIO(blob))
        os.replace(archive_tmp, file)  # whole or not at all
    file.chmod(0o600)  # it holds health data and the keys
    typer.echo(
        f"backed up {kind} ({sum(counts.values())} rows in {len(counts)} tables, revision {revision}) "
        f"and {len(files)} files to {file} in {time.monotonic() - started:.1f} s"
    )


def _empty_target(settings: Any, url: str, kind: str) -> None:
    from sqlalchemy import create_engine, inspect

    data = settings.data_dir
    storage = data / "storage"
    if storage.is_dir() and any(p.is_file() for p in storage.rglob("*")):
        fail(f"{storage} is not empty: restore only into a fresh data folder")
    if kind == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        if path.exists() and path.stat().st_size > 0:
            engine = create_engine(url)
            try:
                names = inspect(engine).get_table_names()
            finally:
                engine.dispose()
            if names:
                fail(f"the database {path} is not empty ({len(names)} tables): restore only into a fresh one")
    else:
        engine = create_engine(url)
        try:
            names = inspect(engine).get_table_names()
        finally:
            engine.dispose()
        if names:
            fail(f"the database is not empty ({len(names)} tables): restore only into a fresh one")


def _extract(tar: tarfile.TarFile, name: str, dest: Path) -> None:
    """One regular file of the archive to ``dest`` (never a link, device or path of its choosing)."""
    try:
        member = tar.getmember(name)
    except KeyError:
        fail(f"the backup lacks {name}")
    source = tar.extractfile(member) if member.isfile() else None
    if source is None:
        fail(f"{name} in the backup is not a regular file")
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, dest.open("wb") as out:
        shutil.copyfileobj(source, out)


def restore(
    file: Annotated[Path, typer.Argument(help="an archive written by `vocalborn backup`")],
    data_dir: DataDirOption = None,
) -> None:
    """Restore a backup into an empty database (DATABASE_URL, or SQLite in the data folder) and an
    empty data folder; every checksum and row count is verified."""
    from sqlalchemy import create_engine

    settings = _settings(data_dir)
    url = settings.effective_database_url
    if not file.is_file():
        fail(f"no backup at {file}")
    started = time.monotonic()
    try:
        tar = tarfile.open(file, "r:gz")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        fail(f"{file} is not a vocalborn backup: {exc}")
    with tar, tempfile.TemporaryDirectory(prefix=".vocalborn-restore-") as tmp:
        try:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        except (KeyError, json.JSONDecodeError):
            fail(f"{file} has no manifest: not a vocalborn backup")
        if manifest.get("format") != FORMAT:
            fail(f"{file} is format {manifest.get('format')!r}; this version reads {FORMAT}")
        db = manifest["database"]
        kind = "sqlite" if url.startswith("sqlite") else "postgresql" if url.startswith("postgresql") else "other"
        if kind != db["kind"]:
            fail(f"the backup holds a {db['kind']} database, the target {redact_url(url)} is {kind}")
        _empty_target(settings, url, kind)
        stage = Path(tmp)
        # check everything before touching the target
        dump = stage / db["file"]
        _extract(tar, db["file"], dump)
        if _sha256(dump) != db["sha256"]:
            fail(f"{db['file']} in {file} is damaged (checksum differs)")
        files = manifest["files"]
        for rel, meta in files.items():
            if rel.startswith("/") or ".." in Path(rel).parts:
                fail(f"refusing a path outside the data folder: {rel}")
            _extract(tar, f"files/{rel}", stage / "files" / rel)
            if _sha256(stage / "files" / rel) != meta["sha256"]:
                fail(f"{rel} in {file} is damaged (checksum differs)")
        # the database
        if kind == "sqlite":
            target = Path(url.removeprefix("sqlite:///"))
            target.parent.mkdir(parents=True, exist_ok=True)
            for suffix in ("-wal", "-shm"):
                Path(f"{target}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(dump, target)
        else:
            _run_pg_tool(
                "pg_restore", url, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(dump)
            )
        # the files
        data = settings.data_dir
        for rel in files:
            dest = data / rel
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copy2(stage / "files" / rel, dest)
            dest.chmod(0o600)  # health data and keys: the data folder's files are private
        # and the proof
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                counts = _counts(conn, list(db["rows"]))
        finally:
            engine.dispose()
        if counts != db["rows"]:
            differ = {t: (db["rows"][t], counts[t]) for t in counts if counts[t] != db["rows"][t]}
            fail(f"row counts differ after the restore (backup, restored): {differ}")
    typer.echo(
        f"restored {kind} ({sum(counts.values())} rows in {len(counts)} tables, revision {db['revision']}, "
        f"counts equal) and {len(files)} files (checksums equal) from {file} in {time.monotonic() - started:.1f} s"
    )
