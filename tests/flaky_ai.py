"""A small AI service on loopback that fails on purpose, for the remote engine's tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, File, Form, UploadFile
from fastapi.responses import JSONResponse


class FlakyService:
    """An AI service that answers 503 (or 400) for the next N calls, then analyses for real."""

    def __init__(self) -> None:
        self.fail_next = 0
        self.fail_status = 503
        self.calls = 0
        self.app = FastAPI()

        @self.app.post("/analyze")
        async def analyze(
            reference: UploadFile = File(), attempt: UploadFile = File(), params: str = Form("{}")
        ) -> JSONResponse:
            import json

            from vocalborn.analysis.engine import analyze as run

            self.calls += 1
            if self.fail_next > 0:
                self.fail_next -= 1
                return JSONResponse({"detail": f"injected failure {self.fail_status}"}, status_code=self.fail_status)
            report = run(await reference.read(), await attempt.read(), json.loads(params))
            return JSONResponse(report.to_dict())


@contextmanager
def running_flaky_service() -> Iterator[tuple[FlakyService, int]]:
    """Serve a FlakyService on a free loopback port in a thread; stop it afterwards."""
    from vocalborn.embedded import free_port

    service = FlakyService()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(service.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield service, port
    finally:
        server.should_exit = True
        thread.join(10)
