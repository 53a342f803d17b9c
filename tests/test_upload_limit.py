"""The upload limit stops reading at the limit, even without a Content-Length."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi import HTTPException

from vocalborn.main import UploadSizeLimit


def test_the_upload_limit_stops_reading_a_chunked_body_just_past_the_limit() -> None:
    from vocalborn.config import get_settings

    limit = get_settings().max_audio_file_size + 1_048_576
    chunk = b"\x00" * 1_048_576
    total_chunks = limit // len(chunk) + 50
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:  # reads everything it is given
        while (await receive()).get("more_body"):
            pass

    scope = {"type": "http", "method": "POST", "path": "/api/v1/practice/sessions/x/records"}
    with pytest.raises(HTTPException) as refused:
        asyncio.run(UploadSizeLimit(app)(scope, receive, lambda m: None))
    assert refused.value.status_code == 413
    assert pulled == limit // len(chunk) + 1  # one chunk past the limit, not the other 49


def test_other_paths_are_not_counted() -> None:
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 1_048_576, "more_body": pulled < 200}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    asyncio.run(UploadSizeLimit(app)({"type": "http", "method": "POST", "path": "/api/v1/auth/login"}, receive, None))
    assert pulled == 200
