"""The shape of every error the API returns, and the helper that documents it in OpenAPI.

Two shapes, one per kind of problem:

* ``ErrorResponse``: ``{"detail": "one sentence a person can read"}`` for 401, 403, 404, 409,
  410, 413, 415, 500 and 503 (503 also carries ``Retry-After``);
* ``ValidationErrorResponse``: ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}],
  "message": "..."}`` for every 422: a request that does not fit the schema, and a recording
  whose content we refuse (``loc`` then names the form field, ``type`` is ``audio_rejected``).

Routes list what they can answer with ``responses=error_responses(401, 404, ...)``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    detail: str = Field(description="what went wrong, in one sentence")
    request_id: str | None = Field(default=None, description="only on 500: finds the traceback in the log")


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. ['body', 'practice_record_id'] or ['body', 'audio']")
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    detail: list[ValidationIssue]
    message: str = Field(description="the issues in one sentence")


_DESCRIPTIONS = {
    400: "the request cannot be understood",
    401: "no valid bearer token",
    403: "authenticated, but this role or user may not do this",
    404: "no such resource, or not one this user may see",
    409: "the resource is not in a state that allows this",
    410: "the resource existed but its stored file is gone",
    413: "the body (or the uploaded file) is larger than the limit",
    415: "the uploaded recording is in a format we do not accept",
    422: "the request does not fit the schema, or the recording is refused",
    429: "too many requests; try again later",
    503: "a backing service (database, broker) is unavailable; retry after Retry-After seconds",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error status codes, with the one shared error model."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "model": ValidationErrorResponse if code == 422 else ErrorResponse,
            "description": _DESCRIPTIONS.get(code, "error"),
        }
        if code == 503:
            entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
        out[code] = entry
    return out


def validation_error(field: str, message: str, kind: str = "audio_rejected") -> dict[str, Any]:
    """The body of a 422 for one field, in the same shape as a schema validation error."""
    return {"detail": [{"loc": ["body", field], "msg": message, "type": kind}], "message": message}
