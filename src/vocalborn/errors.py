"""The shape of every error the API returns, and the helper that documents it in OpenAPI.

Two shapes, one per kind of problem:

* ``ErrorResponse``: ``{"detail": "one sentence a person can read"}`` for 401, 403, 404, 409,
  410, 413, 415, 500 and 503 (503 also carries ``Retry-After``);
* ``ValidationErrorResponse``: ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}],
  "message": "..."}`` for every 422: a request that does not fit the schema, and a recording
  whose content we refuse (``loc`` then names the form field, ``type`` is ``audio_rejected``).

Routes list what they can answer with ``responses=error_responses(401, 404, ...)``.

Services raise ``DomainError`` subclasses (they know no HTTP); ``main.py`` has one handler that
answers each with its ``status_code`` and the message in the caller's language.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, Field

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------------------------
# domain errors: raised by services, answered by one handler (main.py)
# --------------------------------------------------------------------------------------------
class DomainError(Exception):
    """A rule of the domain the request broke. ``status_code`` is its HTTP answer; the message
    is one sentence a person can read (translated by the handler)."""

    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self, message: str) -> dict[str, Any]:
        """The JSON answer, given the message in the caller's language."""
        return {"detail": message}


class NotFound(DomainError):
    """No such resource, or not one this user may see (never reveal which)."""

    status_code = 404


class Forbidden(DomainError):
    status_code = 403


class Conflict(DomainError):
    """The resource is not in a state that allows this."""

    status_code = 409


class Gone(DomainError):
    """It existed but can no longer be used (an invitation used or expired)."""

    status_code = 410


class NotReady(Conflict):
    """A task has no result (yet, or ever): says why, and a failure's reason."""

    _STATES = {
        "pending": "is waiting in the queue",
        "retry": "will be tried again shortly",
        "processing": "is still running",
        "failure": "failed",
        "cancelled": "was cancelled",
    }

    def __init__(self, status: str, error_message: str | None = None) -> None:
        message = f"no result: the analysis {self._STATES.get(status, f'is {status}')}"
        if status == "failure" and error_message:
            message += f": {error_message}"
        super().__init__(message)
        self.status = status


class TooManyActive(DomainError):
    """The learner already has the maximum of analyses waiting or running."""

    status_code = 429
    headers = {"Retry-After": "30"}

    def __init__(self, count: int) -> None:
        super().__init__(f"you already have {count} analyses waiting; submit more when some have finished")
        self.count = count


class AudioRejected(DomainError):
    """An upload we will not store: 413 (too large), 415 (format) or 422 (content), naming the field."""

    def __init__(self, status_code: int, message: str, field: str = "audio") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.field = field

    def body(self, message: str) -> dict[str, Any]:
        if self.status_code == 422:  # the same shape as any other 422 (the documented one)
            return validation_error(self.field, message)
        return {"detail": message}


class FieldRejected(DomainError):
    """A field that fits its type but not its meaning (a blank sentence, a NUL in a text): 422 in
    the documented validation shape, naming the field."""

    status_code = 422

    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind

    def body(self, message: str) -> dict[str, Any]:
        return validation_error(self.field, message, self.kind)


class IdempotencyKeyReused(DomainError):
    """The same Idempotency-Key came with a different body."""

    status_code = 422

    def body(self, message: str) -> dict[str, Any]:
        out = validation_error("Idempotency-Key", message, "idempotency_key_reused")
        out["detail"][0]["loc"] = ["header", "Idempotency-Key"]
        return out


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


def raises(*codes: int) -> Callable[[F], F]:
    """Mark a FastAPI dependency with the error statuses it answers with (a role check: 403; a
    rate limit: 429), so that every route using it documents them (see ``document_errors``)."""

    def mark(dependency: F) -> F:
        dependency.__dict__.setdefault("_vocalborn_errors", set()).update(codes)
        return dependency

    return mark


def _dependency_errors(dependant: Any) -> set[int]:
    codes: set[int] = set(getattr(dependant.call, "_vocalborn_errors", ()) or ())
    for sub in dependant.dependencies:
        codes |= _dependency_errors(sub)
    return codes


def _api_routes(routes: Any) -> Any:
    """Every APIRoute, also inside included routers (which newer FastAPI includes lazily)."""
    from fastapi.routing import APIRoute

    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def validation_error(field: str, message: str, kind: str = "audio_rejected") -> dict[str, Any]:
    """The body of a 422 for one field, in the same shape as a schema validation error."""
    loc = ["body", field] if field else ["body"]
    return {"detail": [{"loc": loc, "msg": message, "type": kind}], "message": message}


def _schema_refs(schema: dict[str, Any]) -> None:
    """Point every ``$defs`` reference of a pydantic schema at components/schemas."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            schema["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in schema.values():
            if isinstance(value, dict | list):
                _schema_refs(value)  # type: ignore[arg-type]  # a dict or a list, checked just above
    elif isinstance(schema, list):
        for item in schema:
            _schema_refs(item)


def document_errors(app: Any) -> None:
    """Complete every operation's documented errors from what applies to every route alike, so
    a route added later is documented too: 401 where a bearer token is read, 404 where a path
    names a resource, 413 where there is a body, 422 (in our shape) where there is input, 503
    wherever the database is used. Route-specific ones (403, 409, 410, 415) are declared on the
    route with ``error_responses``."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        raised = {
            route.operation_id or route.unique_id: _dependency_errors(route.dependant)
            for route in _api_routes(app.routes)
        }
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ErrorResponse, ValidationErrorResponse):
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in body.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components[model.__name__] = body
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        for path, operations in schema.get("paths", {}).items():
            for _method, op in operations.items():
                responses = op.setdefault("responses", {})
                wanted = sorted(raised.get(op.get("operationId", ""), ()))
                if op.get("security"):
                    wanted.append(401)
                if "{" in path:
                    wanted.append(404)
                if op.get("requestBody"):
                    wanted += [400, 413]  # 400: a body that cannot be parsed at all (multipart)
                if op.get("parameters") or op.get("requestBody"):
                    wanted.append(422)
                if not path.startswith(("/health", "/metrics")) or path == "/health/ready":
                    wanted.append(503)
                for code, entry in error_responses(*wanted).items():
                    responses.setdefault(str(code), _entry_schema(entry))
                for code, entry in list(responses.items()):
                    if code == "422":
                        responses[code] = _entry_schema(error_responses(422)[422])
                    elif code.isdigit() and int(code) >= 400 and "schema" not in _json_content(entry):
                        documented = _entry_schema(error_responses(int(code))[int(code)])
                        if "example" in _json_content(entry):  # keep a route's own example
                            documented["content"]["application/json"]["example"] = _json_content(entry)["example"]
                        responses[code] = {
                            **entry,
                            **documented,
                            "description": entry.get("description") or documented["description"],
                        }
        _schema_refs(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _json_content(entry: dict[str, Any]) -> dict[str, Any]:
    content: dict[str, Any] = entry.get("content", {}).get("application/json", {})
    return content


def _entry_schema(entry: dict[str, Any]) -> dict[str, Any]:
    out = {
        "description": entry["description"],
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{entry['model'].__name__}"}}},
    }
    if "headers" in entry:
        out["headers"] = entry["headers"]
    return out
