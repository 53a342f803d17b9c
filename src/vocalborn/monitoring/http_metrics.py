"""The API process's metrics registry, and its HTTP metrics: every request counted and timed by
its route's whole template (``HttpMetricsMiddleware``); monitoring/api.py serves them."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.process_collector import ProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vocalborn.monitoring import catalog

# No *_created series: Prometheus does not need them and they double the lines of every counter.
disable_created_metrics()
REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

_requests = catalog.BY_NAME["http_requests_total"]
_latency = catalog.BY_NAME["http_request_duration_seconds"]
HTTP_REQUESTS = Counter(_requests.base_name, _requests.help, _requests.labels, registry=REGISTRY)
HTTP_DURATION = Histogram(
    _latency.base_name, _latency.help, _latency.labels, buckets=catalog.HTTP_BUCKETS, registry=REGISTRY
)


class HttpMetricsMiddleware:
    """Counts and times every HTTP request by route template, never by raw path (a scanner's
    random URLs would otherwise make a new series each)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception ends as a 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            counter, histogram = _series(str(scope.get("method", "GET")), route_template(scope), status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)


_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def _series(method: str, route: str, status: int) -> tuple[Any, Any]:
    """The counter and histogram children of one (method, route, status), resolved once: the
    labels lookup takes a lock and builds a tuple per call, on every request otherwise."""
    key = (method, route, status)
    found = _SERIES.get(key)
    if found is None:
        found = (
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            HTTP_DURATION.labels(method=method, route=route),
        )
        _SERIES[key] = found
    return found


def route_template(scope: Scope) -> str:
    """The matched route's whole template. A route of a router included in another (FastAPI
    keeps them nested) knows only its own part (``/links/invitations``): its full path
    (``/api/v1/links/invitations``) comes from the app's routing tree, read once (issue #26)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not path:
        return "unmatched"
    full = _FULL_PATHS.get(id(route))
    if full is None and scope.get("app") is not None:
        _FULL_PATHS.update(_full_paths(getattr(scope["app"], "routes", [])))
        full = _FULL_PATHS.setdefault(id(route), str(path))
    return full or str(path)


_FULL_PATHS: dict[int, str] = {}


def _full_paths(routes: Any, prefix: str = "") -> dict[int, str]:
    out: dict[int, str] = {}
    for route in routes:
        inner = getattr(route, "original_router", None)
        context = getattr(route, "include_context", None)
        if inner is not None and context is not None:  # FastAPI's nested include
            out.update(_full_paths(inner.routes, prefix + str(getattr(context, "prefix", "") or "")))
        elif getattr(route, "path", None) is not None:
            out[id(route)] = prefix + str(route.path)
    return out
