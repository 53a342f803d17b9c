"""A NATS connection for a long-running process: reconnects for ever (every 0.25 s), and keeps
the client library's own disconnect/reconnect chatter at debug level (the callers log what
matters to them)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("vocalborn.nats")


async def _quiet(exc: Exception) -> None:
    log.debug("nats: %s", exc)


async def _nothing() -> None:
    return None


async def reconnecting(url: str, name: str) -> Any:
    """``nats.connect`` to ``url`` as ``name`` (shown by the server's connection list)."""
    import nats

    return await nats.connect(
        url,
        name=name,
        connect_timeout=2,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        error_cb=_quiet,
        disconnected_cb=_nothing,
        reconnected_cb=_nothing,
        closed_cb=_nothing,
    )
