"""The page in Debian's Chromium (headless, driven by Playwright) against a running stack: an API
process and a real worker on the suite's PostgreSQL and Redis. Never a Playwright browser download."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.services import ServicesUnderTest, in_ci
from tests.support import Api, ServiceProcess, WorkerProcess, api_process

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "correct-horse-1"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (Debian package chromium; .ci/run installs it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture(scope="module")
def server(migrated: ServicesUnderTest) -> Iterator[tuple[str, Api]]:
    from vocalborn.embedded import free_port

    port = free_port()
    proc: ServiceProcess = api_process(port, migrated.data_dir)
    base = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base, timeout=30)
    try:
        yield base, Api(client)
    finally:
        client.close()
        proc.stop()


@pytest.fixture(scope="module")
def worker(migrated: ServicesUnderTest) -> Iterator[WorkerProcess]:
    # slow enough that the page shows the steps go by
    w = WorkerProcess("web", migrated.data_dir, env={"ANALYSIS_STEP_DELAY_SECONDS": "0.5"}).start()
    yield w
    w.stop()


@pytest.fixture
def playwright_driver() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _context(p: Any, chromium: Path, profile: Path) -> Any:
    context = p.chromium.launch_persistent_context(
        user_data_dir=str(profile),  # fresh every test
        executable_path=str(chromium),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport={"width": 1280, "height": 900},
        locale="zh-TW",
    )
    context.set_default_timeout(30_000)
    return context


@pytest.fixture
def browser_context(playwright_driver: Any, chromium: Path, tmp_path: Path) -> Iterator[Any]:
    context = _context(playwright_driver, chromium, tmp_path / "chromium-profile")
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def other_browser_context(playwright_driver: Any, chromium: Path, tmp_path: Path) -> Iterator[Any]:
    """A second browser (a profile of its own): another person on another machine. One browser
    holds one session (its refresh cookie), as for any site."""
    context = _context(playwright_driver, chromium, tmp_path / "chromium-profile-2")
    try:
        yield context
    finally:
        context.close()


def watch_console(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return problems
