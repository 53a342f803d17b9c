"""``METRICS_TOKEN``: the bearer token Prometheus sends to the API's and the workers' /metrics.

`vocalborn up` generates one into DATA_DIR/metrics_token (mode 0600) when METRICS_TOKEN is
unset (``Settings.effective_metrics_token``). With neither (tests running the processes alone),
the endpoints are open; production requires METRICS_TOKEN."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Iterable
from typing import Any

from vocalborn.config import get_settings


def token_ok(authorization: str | None, token: str | None = None) -> bool:
    token = token if token is not None else get_settings().effective_metrics_token()
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def protect_wsgi(app: Callable[..., Iterable[bytes]], token: str | None) -> Callable[..., Iterable[bytes]]:
    """Wrap prometheus_client's WSGI app: 401 without the right bearer token."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not token_ok(environ.get("HTTP_AUTHORIZATION"), token or ""):
            start_response("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")])
            return [b"metrics need 'Authorization: Bearer <METRICS_TOKEN>'\n"]
        return app(environ, start_response)

    return guarded


def start_metrics_server(port: int, host: str, registry: Any, token: str | None) -> tuple[Any, threading.Thread]:
    """prometheus_client's start_http_server, with the token check in front."""
    from wsgiref.simple_server import make_server

    from prometheus_client.exposition import ThreadingWSGIServer, _get_best_family, _SilentHandler, make_wsgi_app

    class Server(ThreadingWSGIServer):
        pass

    Server.address_family, addr = _get_best_family(host, port)
    httpd = make_server(addr, port, protect_wsgi(make_wsgi_app(registry), token), Server, handler_class=_SilentHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    return httpd, thread
