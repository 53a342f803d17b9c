"""An analysis service that can be taken down (connection refused) and brought back on the same
port, and helpers shared by the outage tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import uvicorn

from tests.flaky_ai import FlakyService
from tests.services import ServicesUnderTest


class OutageService:
    """tests.flaky_ai.FlakyService served on a fixed loopback port, with ``down()`` (the port
    refuses connections: a network error for the remote engine) and ``up()``."""

    def __init__(self) -> None:
        from vocalborn.embedded import free_port

        self.service = FlakyService()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def up(self) -> None:
        if self._server is not None:
            return
        server = uvicorn.Server(uvicorn.Config(self.service.app, host="127.0.0.1", port=self.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the test AI service did not start"
            time.sleep(0.05)
        self._server, self._thread = server, thread

    def down(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        assert self._thread is not None
        self._thread.join(15)
        self._server = self._thread = None


@pytest.fixture(scope="module")
def outage_service() -> Iterator[OutageService]:
    s = OutageService()
    s.up()
    yield s
    s.down()


def reset_circuit(services: ServicesUnderTest) -> None:
    """The suite's workers share one circuit (its keys are under the suite's prefix)."""
    prefix = services.env["REDIS_KEY_PREFIX"]
    client = redis.Redis.from_url(services.redis_url)
    try:
        client.delete(f"{prefix}ai_circuit:failures", f"{prefix}ai_circuit:open")
    finally:
        client.close()


def stored_result(task_id: str) -> dict[str, Any]:
    """The result row as the database holds it."""
    import uuid

    from sqlmodel import select

    from vocalborn.db import open_session
    from vocalborn.tasks.models import AIAnalysisResult

    with open_session() as db:
        row = db.exec(select(AIAnalysisResult).where(AIAnalysisResult.task_id == uuid.UUID(task_id))).one()
        return {"engine_fallback": row.engine_fallback, "analysis_model_version": row.analysis_model_version}
