from __future__ import annotations

import io
import json
import logging

import pytest

from vocalborn.logs import JsonFormatter, _ContextFilter, log_context


@pytest.fixture
def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("vocalborn.test-logs")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_tokens_in_logged_urls_are_redacted(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    secret = "eyJhbGciOiJIUzI1NiJ9.payload.signature"
    logger.info('%s - "WebSocket %s" [accepted]', "127.0.0.1:5000", f"/api/v1/tasks/ws/task/abc?after=3&token={secret}")
    logger.info(f"GET /x?token={secret}&y=1")
    out = stream.getvalue()
    assert secret not in out
    assert out.count("token=***") == 2 and "after=3" in out


def test_json_lines_carry_the_context(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    with log_context(task_id="t-1", attempt=2, request_id="r-9"):
        logger.warning("something happened")
    line = json.loads(stream.getvalue())
    assert line["message"] == "something happened" and line["level"] == "WARNING"
    assert (line["task_id"], line["attempt"], line["request_id"]) == ("t-1", 2, "r-9")
