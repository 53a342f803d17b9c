"""The upload limit stops reading at the limit, even without a Content-Length."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi import HTTPException

from vocalborn.config import get_settings
from vocalborn.main import BodySizeLimit


def test_the_upload_limit_stops_reading_a_chunked_body_just_past_the_limit() -> None:
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
        asyncio.run(BodySizeLimit(app)(scope, receive, lambda m: None))
    assert refused.value.status_code == 413
    assert pulled == limit // len(chunk) + 1  # one chunk past the limit, not the other 49


def test_other_bodies_stop_at_the_small_json_limit() -> None:
    """Issue #11, defect 8: a 100 MB JSON body was parsed before the 422."""

    limit = get_settings().max_json_body_bytes
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": b"x" * 16_384, "more_body": pulled < 6400}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass

    scope = {"type": "http", "method": "POST", "path": "/api/v1/tasks/analysis/submit", "headers": []}
    with pytest.raises(HTTPException) as refused:
        asyncio.run(BodySizeLimit(app)(scope, receive, None))
    assert refused.value.status_code == 413
    assert pulled == limit // 16_384 + 1


def test_a_large_json_body_gets_a_413_json_answer(api: Any) -> None:
    limit = get_settings().max_json_body_bytes
    body = b'{"practice_record_id": "' + b"x" * (limit * 4) + b'"}'
    # declared length: refused before reading
    r = api.client.post("/api/v1/tasks/analysis/submit", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"], r.text

    def chunks() -> Any:  # no Content-Length: counted while it streams
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    r = api.client.post("/api/v1/tasks/analysis/submit", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "limit" in r.json()["detail"], r.text
    # small bodies are untouched
    r = api.client.post("/api/v1/tasks/analysis/submit", json={"practice_record_id": str(uuid.uuid4())})
    assert r.status_code == 401


def test_the_422_and_413_bodies_speak_the_callers_language_without_pydantics_prefix(api: Any) -> None:
    weak = {"email": f"p-{uuid.uuid4().hex[:8]}@example.com", "password": "password", "name": "P", "role": "learner"}
    for lang in ("en", "zh-TW"):
        r = api.client.post(f"/api/v1/auth/register?lang={lang}", json=weak)
        assert r.status_code == 422, r.text
        assert "Value error" not in r.text and r.json()["message"].startswith("password: ")
        assert all("Value error" not in d["msg"] for d in r.json()["detail"])
    assert "密碼" in r.json()["message"]
    limit = get_settings().max_audio_file_size
    big = b"x" * 16
    for lang, word in (("en", "limit"), ("zh-TW", "上限")):
        r = api.client.post(
            f"/api/v1/practice/sessions/{uuid.uuid4()}/records?lang={lang}",
            content=big,
            headers={"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(limit * 2)},
        )
        assert r.status_code == 413 and word in r.json()["detail"], r.text
