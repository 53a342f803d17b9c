"""The OpenAPI documents the errors each operation answers, in one shape (issue #11, defect 9:
almost no error status was documented, and rejected audio answered ``detail`` as a string where
the schema said an array)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import jsonschema
import pytest

from tests.support import Api, recording

EXPECTED = {
    ("post", "/api/v1/tasks/analysis/submit"): {"401", "403", "404", "413", "422", "503"},
    ("post", "/api/v1/practice/sessions/{session_id}/records"): {"401", "404", "413", "415", "422", "503"},
    ("post", "/api/v1/practice/sentences"): {"401", "403", "413", "415", "422", "503"},
    ("get", "/api/v1/practice/records/{record_id}/audio"): {"401", "404", "410", "503"},
    ("get", "/api/v1/practice/sentences/{sentence_id}/audio"): {"401", "404", "410", "503"},
    ("get", "/api/v1/tasks/analysis/{task_id}/result"): {"401", "404", "409", "503"},
    ("delete", "/api/v1/tasks/analysis/{task_id}"): {"401", "403", "404", "409", "503"},
    ("post", "/api/v1/admin/tasks/{task_id}/retry"): {"401", "403", "404", "409", "503"},
    ("post", "/api/v1/auth/register"): {"403", "413", "422", "429", "503"},
}


def _zipped(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("take.mp3", data)
    return buf.getvalue()


def _schema(api: Api) -> dict[str, Any]:
    r = api.client.get("/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "components": spec["components"]} if "$ref" in schema else schema


def test_each_operation_documents_its_errors(api: Api) -> None:
    spec = _schema(api)
    for (method, path), codes in EXPECTED.items():
        documented = set(spec["paths"][path][method]["responses"])
        assert codes <= documented, (method, path, sorted(codes - documented))
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if op.get("security"):
                assert "401" in op["responses"], (method, path)
            for code, entry in op["responses"].items():
                if code.startswith(("4", "5")):
                    ref = entry["content"]["application/json"]["schema"]["$ref"]
                    want = "ValidationErrorResponse" if code == "422" else "ErrorResponse"
                    assert ref.endswith(want), (method, path, code, ref)


def test_a_rejected_recording_answers_in_the_documented_shape(
    api: Api, therapist: dict[str, Any], learner: dict[str, Any]
) -> None:
    spec = _schema(api)
    path = "/api/v1/practice/sessions/{session_id}/records"
    documented = spec["paths"][path]["post"]["responses"]
    ready = api.ready_record(therapist, learner)
    cases = {
        422: b"this is not audio at all" * 50,
        415: _zipped(recording(voice="Male1", fmt="mp3")),
    }
    for expected, data in cases.items():
        r = api.record(learner, ready["session"]["practice_session_id"], ready["sentence"]["sentence_id"], data)
        body = r.json()
        assert r.status_code == expected, r.text
        schema = documented[str(r.status_code)]["content"]["application/json"]["schema"]
        jsonschema.validate(body, _resolve(spec, schema))
        if r.status_code == 422:
            assert isinstance(body["detail"], list) and body["detail"][0]["loc"] == ["body", "audio"]
            assert body["message"].startswith("audio:")


def test_a_nul_character_in_a_text_is_a_422_not_a_500(api: Api, services: Any) -> None:
    """Found by schemathesis: PostgreSQL cannot store NUL in a text column (it was a 500)."""
    if services.database_kind != "postgresql":
        pytest.skip("SQLite stores NUL characters")
    r = api.client.post(
        "/api/v1/auth/register",
        json={"email": "nul@example.com", "password": "correct-horse-1", "name": "a\x00b", "role": "learner"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "value_not_storable"
