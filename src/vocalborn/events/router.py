"""``GET /asyncapi.json``: the AsyncAPI document of the integration events (public: it holds
the message shapes, ids only, nothing of any user)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vocalborn.events.contract import asyncapi

router = APIRouter(tags=["events"])


@router.get(
    "/asyncapi.json",
    operation_id="asyncapi",
    summary="The AsyncAPI 3.0 document of the integration events (NATS JetStream stream VOCALBORN)",
)
def asyncapi_document() -> dict[str, Any]:
    return asyncapi()
