"""Routes whose common case skips FastAPI's request handling.

Submit and status are the two requests every learner's client makes, and on this stack FastAPI's
per-request work (solving the dependencies, validating, serialising) cost about as much as the
submit itself (docs/BENCHMARKS.md, "Hot routes and one statement per batch"). A :class:`HotRoute` is an ordinary
``APIRoute`` (the same path, parameters, OpenAPI operation and error handlers) whose ``handle``
first offers the request to a *hot* function. The hot function answers only the case it can
decide alone and returns None otherwise; the route then runs FastAPI's handler, unchanged, on
the same request (a body the hot function has read is given again). So every error, every
unusual header and every edge case keeps its one implementation in the ordinary handler.

It runs inside the router, so the exception handlers (a 503 when the database is away, a
translated 429) and the middleware (request id, metrics, body-size limit) apply as before.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

# What the hot function gives back: an answer, or None and the receive the ordinary handler
# must use (the original, or one that gives again a body the hot function read).
Outcome = tuple[Response | None, Receive]
Hot = Callable[[Scope, Receive], Awaitable[Outcome]]


class HotRoute(APIRoute):
    hot: Hot  # set by each subclass (see ``hot_route``)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:  # the 405 is the ordinary handler's
            await super().handle(scope, receive, send)
            return
        response, receive = await self.hot(scope, receive)
        if response is None:
            await super().handle(scope, receive, send)
        else:
            await response(scope, receive, send)


def hot_route(hot: Hot) -> type[APIRoute]:
    """An APIRoute class whose requests are first offered to ``hot``."""
    return type(f"HotRoute_{hot.__name__}", (HotRoute,), {"hot": staticmethod(hot)})


def header(scope: Scope, name: bytes) -> bytes | None:
    """A request header's raw value (names arrive lower-case), or None."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return bytes(value)
    return None


def bearer_token(scope: Scope) -> str | None:
    """The bearer token as ``OAuth2PasswordBearer`` reads it, or None (no header, another
    scheme, nothing after the scheme): the ordinary handler then gives the 401."""
    raw = header(scope, b"authorization")
    scheme, token = get_authorization_scheme_param(raw.decode("latin-1") if raw is not None else None)
    if scheme.lower() != "bearer" or not token:
        return None
    return token


async def read_json_body(scope: Scope, receive: Receive) -> tuple[Any, Receive]:
    """The request's JSON body, parsed, and a receive that gives the body again; the body is
    ``None`` when it is not a JSON object the ordinary handler would parse the same way (another
    content type, no Content-Length, not JSON): that handler then decides, and says why."""
    content_type = header(scope, b"content-type") or b""
    length = header(scope, b"content-length")
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json" or length is None or not length.isdigit():
        return None, receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: the ordinary handler sees it too
            return None, _replay(b"".join(chunks), receive, message)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    again = _replay(body, receive)
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep: the ordinary handler's 4xx
        return None, again
    return (parsed if isinstance(parsed, dict) else None), again


def _replay(body: bytes, receive: Receive, last: Message | None = None) -> Receive:
    given = False

    async def again() -> Message:
        nonlocal given
        if not given:
            given = True
            if last is not None and not body:
                return last
            return {"type": "http.request", "body": body, "more_body": last is not None}
        if last is not None:
            return last
        return await receive()

    return again
