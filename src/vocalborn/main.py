"""The FastAPI application. Never imports the worker module."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from vocalborn import __version__
from vocalborn.activity.router import router as activity_router
from vocalborn.auth.router import router as auth_router
from vocalborn.config import get_settings
from vocalborn.db import get_engine
from vocalborn.drills.router import router as drills_router
from vocalborn.errors import DomainError, document_errors
from vocalborn.errors import validation_error as field_validation_error
from vocalborn.events.admin import router as events_admin_router
from vocalborn.events.router import router as events_router
from vocalborn.i18n import request_language, scope_language, translate, translate_detail, without_pydantic_prefix
from vocalborn.kit.fastdb import close_pool
from vocalborn.kit.redis import get_redis
from vocalborn.learning.router import router as learning_router
from vocalborn.logs import log_context, setup_logging
from vocalborn.monitoring.api import install_metrics
from vocalborn.notify.accounts import router as accounts_router
from vocalborn.notify.router import router as notify_router
from vocalborn.notify.router import shutdown_notification_hub
from vocalborn.outage.router import router as bulk_retry_router
from vocalborn.practice.router import router as practice_router
from vocalborn.process import freeze_startup_objects
from vocalborn.reports.router import router as reports_router
from vocalborn.security.router import router as security_router
from vocalborn.tasks.api.admin import router as admin_router
from vocalborn.tasks.api.router import router as tasks_router
from vocalborn.tasks.api.ws import router as ws_router
from vocalborn.tasks.api.ws import shutdown_hub
from vocalborn.tasks.submission import fastpath
from vocalborn.tasks.submission.hotroute import header as request_header
from vocalborn.web.router import mount_web
from vocalborn.webhooks.router import router as webhooks_router

log = logging.getLogger("vocalborn.api")

# A reference or an attempt: a new sentence, a recording, a drill assigned with its reference (issue #26).
UPLOAD_ROUTE = re.compile(r"/api/v1/(practice/(sentences|sessions/[^/]+/records)|learners/[^/]+/drills)")
# What a database that is down, frozen or out of connections raises; each becomes 503 JSON.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    psycopg.OperationalError,  # the fast paths' asyncio pool (fastdb): down, frozen, pool timeout
    psycopg.InterfaceError,
)
CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
NO_STORE = (b"cache-control", b"no-store")
NOSNIFF = (b"x-content-type-options", b"nosniff")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    setup_logging(settings.log_level, settings.log_format)
    log.info(
        "VocalBorn API %s starting (database %s)", __version__, get_engine().url.render_as_string(hide_password=True)
    )
    freeze_startup_objects()
    yield
    fastpath.cancel_background()  # status re-reads and queue counts: before their pool closes
    await shutdown_notification_hub()
    await shutdown_hub()  # closes open task sockets (1001) and the progress subscription
    await close_pool()


def is_upload(method: str, path: str) -> bool:
    """The routes that take a recording (multipart, up to MAX_AUDIO_FILE_SIZE)."""
    return method == "POST" and UPLOAD_ROUTE.fullmatch(path) is not None


def _too_large(detail: str, scope: dict[str, Any]) -> JSONResponse:
    """The 413 answered before the body is read, in the caller's language (?lang / Accept-Language)."""
    return JSONResponse({"detail": translate(detail, scope_language(scope) or "en")}, status_code=413)


class BodySizeLimit:
    """Counts the bytes of a request body as they arrive and stops at the limit, whatever the
    client says (or does not say, with chunked encoding) in Content-Length. Uploads may carry a
    recording (MAX_AUDIO_FILE_SIZE); every other body is small JSON or a form
    (MAX_JSON_BODY_BYTES). Pure ASGI: nothing is buffered here, and Starlette never spools more
    than the limit to disk."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        length = request_header(scope, b"content-length") or b""
        if is_upload(scope["method"], scope["path"]):
            file_limit = settings.max_audio_file_size
            limit = file_limit + 1_048_576  # room for the form fields around the file
            detail = f"the upload is larger than the limit of {file_limit} bytes per file"
            if length.isdigit() and int(length) > limit:  # refused before reading the body
                told = f"the upload is {int(length)} bytes; the limit is {file_limit} bytes per file"
                await _too_large(told, scope)(scope, receive, send)
                return
        else:
            limit = settings.max_json_body_bytes
            detail = f"the request body is larger than the limit of {limit} bytes"
            if length.isdigit() and int(length) > limit:
                await _too_large(detail, scope)(scope, receive, send)
                return
        seen = 0

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # FastAPI re-raises an HTTPException met while reading the body: a JSON 413.
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counting_receive, send)


class RequestContext:
    """Gives every HTTP request an id (the client's ``X-Request-ID`` if it is short and plain:
    it is stored in a 64-character column and written to every log line; otherwise a new one),
    puts it in the log context and in ``request.state.request_id``, returns it as
    ``X-Request-ID``, and logs responses of 500 and above. Every ``/api/`` answer (JSON, audio,
    exports) also says ``Cache-Control: no-store`` (unless the route chose otherwise) and
    ``X-Content-Type-Options: nosniff``. Pure ASGI, unlike
    ``@app.middleware("http")``, which runs each request in a task of its own and costs a
    multiple of what this does (docs/BENCHMARKS.md)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = (request_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = given if CLIENT_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        api = scope["path"].startswith("/api/")

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), header]
                if api:
                    # Health data: no cache (browser, proxy) keeps an answer, and no browser
                    # guesses a type other than the one declared (an upload served as HTML).
                    if not any(k.lower() == b"cache-control" for k, _ in headers):
                        headers.append(NO_STORE)
                    headers.append(NOSNIFF)
                message["headers"] = headers
                status = int(message["status"])
                if status >= 500:
                    elapsed = (time.perf_counter() - started) * 1000
                    log.error("%s %s -> %s in %.1f ms", scope["method"], scope["path"], status, elapsed)
            await send(message)

        with log_context(request_id=request_id):
            await self.app(scope, receive, send_with_id)


def _install_offline_docs(app: FastAPI) -> None:
    """/docs with Swagger UI from the swagger-ui-bundle wheel, so it works without internet.

    That Swagger UI (4.x) renders OpenAPI 3.0 only, so the page reads a copy of the schema
    labelled 3.0; clients keep the real 3.1 schema at /openapi.json."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get("/docs/openapi.json", include_in_schema=False)
    async def docs_schema() -> JSONResponse:
        return JSONResponse({**app.openapi(), "openapi": "3.0.3"})

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/docs/openapi.json",
            title=f"{app.title} - API docs",
            swagger_js_url="/docs/static/swagger-ui-bundle.js",
            swagger_css_url="/docs/static/swagger-ui.css",
            swagger_favicon_url="/docs/static/favicon-32x32.png",
        )


def _install_health(app: FastAPI) -> None:
    """/health and /health/ready, as the first routes: Starlette tries routes in order, and a
    load balancer's probe should not be matched against every other route first (it cost about
    0.3 ms a request, most of /health's time)."""

    @app.get("/health", tags=["health"], operation_id="health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], operation_id="readiness")
    def ready() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
        try:
            get_redis().ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "degraded", "checks": checks}, status_code=200 if ok else 503)


# --------------------------------------------------------------------------------------------
# errors: each kind answered once, here, in the caller's language (errors.py has the shapes)
# --------------------------------------------------------------------------------------------
async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's list of problems, plus one sentence a person can read. Never echoes the input
    back: it may be a password, or megabytes."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    details = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        msg = without_pydantic_prefix(str(err.get("msg")))
        if err.get("type") == "json_invalid":
            position = next((p for p in err.get("loc", ()) if isinstance(p, int)), None)
            msg = "the body is not valid JSON" + (f" (near character {position})" if position is not None else "")
            where = ""
        problems.append(f"{where}: {msg}" if where else msg)
        details.append({k: v for k, v in err.items() if k not in ("input", "ctx", "url")} | {"msg": msg})
    lang = request_language(request)
    return JSONResponse(
        {"detail": jsonable_encoder(details), "message": "; ".join(translate(p, lang) for p in problems)},
        status_code=422,
    )


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    """Services raise DomainError subclasses; each carries its status (errors.py)."""
    assert isinstance(exc, DomainError)
    message = translate(exc.message, request_language(request))
    return JSONResponse(exc.body(message), status_code=exc.status_code, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's own handling, with the message in the caller's language (English by default)."""
    from fastapi.exception_handlers import http_exception_handler

    assert isinstance(exc, StarletteHTTPException)
    exc.detail = translate_detail(exc.detail, request_language(request))
    if exc.status_code == 422 and isinstance(exc.detail, str):
        # A route's own 422 has the documented shape of every other 422: a list of issues.
        body = field_validation_error("", exc.detail, "value_error")
        body["detail"][0]["loc"] = ["request"]
        return JSONResponse(body, status_code=422, headers=exc.headers)
    return await http_exception_handler(request, exc)


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    """Down, frozen, out of connections or over a deadline: the same answer, at once."""
    log.error("database unavailable: %s: %s", type(exc).__name__, getattr(exc, "orig", None) or exc)
    return JSONResponse(
        {"detail": translate("the database is unavailable; try again shortly", request_language(request))},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def _unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    """A value that fits the schema but not the column (a NUL character in a text, say): bad
    input, not a bug. The driver's text is not echoed (it carries the SQL)."""
    log.warning("refused a value the database cannot store on %s: %s", request.url.path, type(exc).__name__)
    message = "a value in the request cannot be stored (for example a NUL character in a text)"
    return JSONResponse(field_validation_error("", message, "value_not_storable"), status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug, not bad input; still JSON, and with the id that finds the traceback in the log."""
    request_id = getattr(request.state, "request_id", None)
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(
        {"detail": "internal error; it has been logged", "request_id": request_id},
        status_code=500,
        headers={"X-Request-ID": request_id or ""},
    )


def _install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_down)
    for unstorable in (DataError, psycopg.DataError):
        app.add_exception_handler(unstorable, _unstorable_value)
    app.add_exception_handler(Exception, _unexpected)


def create_app() -> FastAPI:
    app = FastAPI(
        docs_url=None,  # served below from local files: the default page loads Swagger UI from a CDN
        title="VocalBorn Tasks",
        version=__version__,
        description=(
            "Asynchronous speech-practice analysis: upload, submit, watch, read the scores; history, "
            "progress, linking, therapist reviews and practice sets. Error messages and suggestions "
            "come in English or Traditional Chinese: `?lang=en|zh-TW` or `Accept-Language`."
        ),
        lifespan=lifespan,
        # Our metrics are Prometheus (/metrics). FastAPI's own OpenTelemetry hooks, with no
        # provider configured, would still look up the environment on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    _install_health(app)
    # Starlette tries routes in order: the ones every waiting client polls come first.
    app.include_router(tasks_router)
    app.include_router(ws_router)
    app.include_router(auth_router)
    app.include_router(practice_router)
    app.include_router(learning_router)
    app.include_router(reports_router)
    app.include_router(drills_router)
    app.include_router(bulk_retry_router)  # before admin_router: /retry is not a task id
    app.include_router(admin_router)
    app.include_router(security_router)
    app.include_router(events_router)
    app.include_router(events_admin_router)
    app.include_router(notify_router)
    app.include_router(accounts_router)
    app.include_router(webhooks_router)
    app.include_router(activity_router)
    app.add_middleware(BodySizeLimit)
    document_errors(app)  # before the docs page copies the schema
    _install_offline_docs(app)
    install_metrics(app)  # GET /metrics and the HTTP metrics middleware
    mount_web(app)  # the waiting page at /, its files under /web/

    app.add_middleware(RequestContext)  # outermost: every response, even a 413, has its id

    _install_error_handlers(app)
    return app


app = create_app()
