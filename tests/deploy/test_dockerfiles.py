"""The Dockerfile (one file, two targets: `api` and `celery`), read and then built outside Docker: the builder's `uv sync` commands run into
a fresh copy of the project laid out like the image's /app, the source tree is then removed as
in the runtime stage, and the image's commands run from that environment."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT

DOCKERFILE = ROOT / "Dockerfile"
TARGETS = ("api", "celery")  # the two images, each a stage on top of the shared runtime stage


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for arg in self.all("ENV"):
            for item in shlex.split(arg):
                key, _, value = item.partition("=")
                out[key] = value
        return out


def parse(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """Global ARGs and the stages, with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))
    )
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        keyword, _, rest = line.strip().partition(" ")
        keyword, rest = keyword.upper(), " ".join(rest.split())
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
            assert m is not None
            stages.append(Stage(m.group(1), m.group(2)))
        elif not stages:
            if keyword == "ARG":
                key, _, value = rest.partition("=")
                args[key] = value
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def exec_form(arg: str) -> list[str]:
    value = json.loads(arg)
    assert isinstance(value, list), f"not exec form: {arg}"
    return [str(v) for v in value]


def stages_by_name() -> dict[str, Stage]:
    _, stages = parse(DOCKERFILE)
    return {stage.name: stage for stage in stages if stage.name}


def test_no_syntax_frontend_line_and_one_file_for_both_images() -> None:
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not first.lower().startswith("# syntax="), "BuildKit would fetch a frontend image from a registry"
    assert not (ROOT / "Dockerfile.celery").exists()
    stages = stages_by_name()
    # both images are thin stages on the one runtime stage: builder and runtime are built once
    assert all(stages[target].base == "runtime" for target in TARGETS)
    assert parse(DOCKERFILE)[1][-1].name == "api"  # a plain `docker build .` makes the API image
    for target in TARGETS:
        assert not stages[target].all("RUN") and not stages[target].all("COPY"), "nothing built per image"


def test_the_images_are_multi_stage_uv_builds_from_the_lock_file() -> None:
    args, _ = parse(DOCKERFILE)
    stages = stages_by_name()
    assert args["PYTHON_VERSION"] in ("3.11", "3.12")
    builder, runtime = stages["builder"], stages["runtime"]
    for stage in (builder, runtime):
        assert stage.base == "python:${PYTHON_VERSION}-slim-bookworm"
    syncs = [r for r in builder.all("RUN") if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)
    assert any("--no-editable" in r for r in syncs)  # the runtime stage needs no source tree
    assert any("uv.lock" in c for c in builder.all("COPY"))
    assert any(c.startswith("--from=builder /app/.venv") for c in runtime.all("COPY"))


@pytest.mark.parametrize("kind", TARGETS)
def test_the_runtime_stage_is_small_non_root_and_healthchecked(kind: str) -> None:
    stages = stages_by_name()
    runtime, image = stages["runtime"], stages[kind]
    runs = " ".join(runtime.all("RUN") + image.all("RUN"))
    assert not re.search(r"\b(gcc|g\+\+|build-essential|clang|make)\b", runs), "no compilers in the final image"
    assert not any("uv" in c.split() for c in runtime.all("COPY") + image.all("COPY")), "no uv in the final image"
    users = runtime.all("USER") + image.all("USER")
    assert users and users[-1] not in ("root", "0")
    assert runtime.env()["PYTHONUNBUFFERED"] == "1"
    assert image.all("STOPSIGNAL") == ["SIGTERM"]
    (health,) = image.all("HEALTHCHECK")
    check = exec_form(health.split(" CMD ", 1)[1])
    assert check[:3] == ["python", "-m", "vocalborn.healthcheck"]
    assert "inspect" not in check
    if kind == "api":
        assert check[3:] == ["http", "http://127.0.0.1:8000/health/ready"]
    else:
        assert check[3:] == ["worker"]


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """/app as the runtime stage has it, made by the builder stage's own `uv sync` commands."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        pytest.skip("uv is not on PATH")
    stages = stages_by_name()
    builder = stages["builder"]
    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    env.update(builder.env())
    env.update(
        UV_PROJECT_ENVIRONMENT=str(app / ".venv"),
        UV_PYTHON=os.path.realpath(sys.executable),  # the image's interpreter is python:3.x-slim's
        UV_COMPILE_BYTECODE="0",  # the image compiles .pyc at build time; not needed to prove the install
        UV_LINK_MODE="copy",
    )
    # the builder's COPY + RUN steps, in order, with the image's /app replaced by ours
    for keyword, arg in builder.instructions:
        if keyword == "COPY" and not arg.startswith("--from"):
            _copy_from_context(arg, app)
        elif keyword == "RUN" and "uv sync" in arg:
            command = arg.split("uv sync", 1)[1]
            done = subprocess.run(
                [uv, "sync", *shlex.split(command)], cwd=app, env=env, capture_output=True, text=True, timeout=300
            )
            assert done.returncode == 0, done.stderr[-3000:]
    # the runtime stage keeps only the venv and copies its own files from the build context
    runtime = stages["runtime"]
    for entry in list(app.iterdir()):
        if entry.name != ".venv":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for arg in runtime.all("COPY"):
        if not arg.startswith("--from"):
            _copy_from_context(arg, app)
    yield app


def _copy_from_context(arg: str, app: Path) -> None:
    *sources, dest = arg.split()
    for source in sources:
        src = ROOT / source.rstrip("/")
        target = app / (src.name if dest in ("./", ".") else dest.rstrip("/").removeprefix("./"))
        if src.is_dir():
            shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, target)


def run_in_image(app: Path, argv: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: os.environ[k] for k in ("HOME", "LANG") if k in os.environ}
    clean.update(PATH=f"{app / '.venv' / 'bin'}:/usr/bin:/bin", PYTHONUNBUFFERED="1", DATA_DIR=str(tmp_path), **env)
    return subprocess.run(argv, cwd=app, env=clean, capture_output=True, text=True, timeout=120)


def test_the_built_environment_runs_the_images_commands(image_root: Path, tmp_path: Path) -> None:
    assert not (image_root / "src").exists()  # the package is installed, not linked to a source tree
    stages = stages_by_name()
    for kind in TARGETS:
        cmd = exec_form(stages[kind].all("CMD")[-1])
        assert cmd[0] == "vocalborn", kind
        done = run_in_image(image_root, [*cmd, "--help"], tmp_path)
        assert done.returncode == 0, (kind, done.stderr)
    done = run_in_image(image_root, ["python", "-m", "vocalborn.healthcheck", "--help"], tmp_path)
    assert done.returncode == 0 and "worker" in done.stdout, done.stderr


def test_the_built_environment_migrates_and_analyses(image_root: Path, tmp_path: Path) -> None:
    """alembic files are found from the installed package, and the engine's data came along."""
    done = run_in_image(image_root, ["vocalborn", "migrate"], tmp_path)
    assert done.returncode == 0 and "database is up to date" in done.stdout, done.stderr[-3000:]
    assert (tmp_path / "vocalborn.sqlite3").stat().st_size > 0
    done = run_in_image(image_root, ["vocalborn", "sample-audio", str(tmp_path / "s")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    done = run_in_image(
        image_root,
        ["vocalborn", "analyze", str(tmp_path / "s" / "reference.wav"), str(tmp_path / "s" / "attempt.mp3"), "--json"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert 0 <= json.loads(done.stdout)["overall_score"] <= 100


def test_the_worker_healthcheck_fails_without_a_registered_worker(image_root: Path, tmp_path: Path) -> None:
    env = os.environ
    done = run_in_image(
        image_root,
        ["python", "-m", "vocalborn.healthcheck", "worker"],
        tmp_path,
        CELERY_BROKER_URL=env["CELERY_BROKER_URL"],
        REDIS_URL=env["REDIS_URL"],
        REDIS_KEY_PREFIX=env["REDIS_KEY_PREFIX"] + "nobody:",
    )
    assert done.returncode == 1
    assert "no worker registered" in done.stderr
