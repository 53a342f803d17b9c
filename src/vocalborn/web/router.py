"""The waiting page: plain HTML, JS and CSS from ``static/``, no build step, no CDN."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Everything the page needs comes from this origin; recordings play from blob: URLs. The live
# progress socket goes to the page's own host: connect-src names its ws:/wss: origin (older
# browsers do not count them as 'self'), never any ws host.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'{sockets}; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# A host[:port] as a browser sends it (a name, IPv4 or [IPv6]); anything else gets 'self' alone.
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")

router = APIRouter(include_in_schema=False)


def content_security_policy(host: str | None) -> str:
    """The page's policy for a page served to ``host`` (the request's Host header)."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return CONTENT_SECURITY_POLICY.format(sockets=sockets)


@router.get("/")
def index(request: Request) -> FileResponse:
    return FileResponse(
        STATIC_DIR / "index.html",
        media_type="text/html; charset=utf-8",
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host")),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def mount_web(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/web/``."""
    app.include_router(router)
    app.mount("/web", StaticFiles(directory=STATIC_DIR), name="web")
