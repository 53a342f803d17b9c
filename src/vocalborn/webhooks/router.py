"""``/api/v1/admin/webhooks``: endpoints (register, list, read, change, delete), their delivery
log and manual redelivery (docs/EVENTS.md, "Webhooks"). Admins only."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete
from sqlmodel import col, select

from vocalborn.auth.dependencies import AdminUser, SessionDep
from vocalborn.config import get_settings
from vocalborn.errors import FieldRejected, NotFound, error_responses
from vocalborn.events.catalogue import CATALOGUE
from vocalborn.sqltypes import utcnow
from vocalborn.webhooks import signing, targets
from vocalborn.webhooks.delivery import PENDING
from vocalborn.webhooks.models import WebhookDelivery, WebhookEndpoint

router = APIRouter(prefix="/api/v1/admin/webhooks", tags=["admin"], responses=error_responses(401, 403))


class EndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2000, description="http(s) URL the deliveries are POSTed to")
    event_types: list[str] = Field(min_length=1, max_length=50, description="catalogue types, e.g. review.saved")
    description: str | None = Field(default=None, max_length=500)


class EndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = Field(default=None, description="true re-enables (and clears the failure run)")


class EndpointPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    consecutive_failures: int
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


class EndpointCreated(EndpointPublic):
    secret: str = Field(description="whsec_<base64>: shown only now; verify signatures with it")


class DeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: uuid.UUID
    event_type: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, d: WebhookDelivery) -> DeliveryPublic:
        return cls(
            id=d.seq or 0,
            event_id=d.event_id,
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == PENDING else None,
            give_up_at=d.give_up_at,
            last_attempt_at=d.last_attempt_at,
            last_status_code=d.last_status_code,
            last_error=d.last_error,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )


def _types(values: list[str]) -> list[str]:
    unknown = sorted({v for v in values if v not in CATALOGUE})
    if unknown:
        raise FieldRejected("event_types", f"event_types: unknown event types: {', '.join(unknown)}")
    return sorted(set(values))


async def _url(url: str) -> str:
    allowed = targets.Allowed.parse(get_settings().webhook_allowed_hosts)
    try:
        await run_in_threadpool(targets.check, url.strip(), allowed)
    except targets.UnsafeTarget as exc:
        raise FieldRejected("url", str(exc)) from None
    return url.strip()


def _endpoint(db: SessionDep, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    found = db.get(WebhookEndpoint, endpoint_id)
    if found is None:
        raise NotFound("webhook endpoint not found")
    return found


@router.post(
    "",
    status_code=201,
    response_model=EndpointCreated,
    operation_id="admin_create_webhook",
    responses=error_responses(422),
)
async def create_endpoint(body: EndpointIn, admin: AdminUser, db: SessionDep) -> EndpointCreated:
    """Register an endpoint. The URL must not point at a private, loopback or link-local address
    unless WEBHOOK_ALLOWED_HOSTS allows it. The answer holds the signing secret, once."""
    types = _types(body.event_types)
    url = await _url(body.url)
    row = WebhookEndpoint(
        url=url, event_types=types, secret=signing.new_secret(), description=body.description, created_by=admin.user_id
    )
    db.add(row)
    db.commit()
    db.refresh(row)
    return EndpointCreated(**EndpointPublic.model_validate(row).model_dump(), secret=row.secret)


@router.get("", response_model=list[EndpointPublic], operation_id="admin_list_webhooks")
def list_endpoints(_admin: AdminUser, db: SessionDep) -> list[WebhookEndpoint]:
    return list(db.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.created_at), col(WebhookEndpoint.id))))


@router.get(
    "/{endpoint_id}", response_model=EndpointPublic, operation_id="admin_get_webhook", responses=error_responses(404)
)
def get_endpoint(endpoint_id: uuid.UUID, _admin: AdminUser, db: SessionDep) -> WebhookEndpoint:
    return _endpoint(db, endpoint_id)


@router.patch(
    "/{endpoint_id}",
    response_model=EndpointPublic,
    operation_id="admin_update_webhook",
    responses=error_responses(404, 422),
)
async def update_endpoint(
    endpoint_id: uuid.UUID, body: EndpointPatch, _admin: AdminUser, db: SessionDep
) -> WebhookEndpoint:
    """Change the URL, types or description; ``enabled`` true turns a disabled endpoint back on
    (its pending deliveries resume), false stops it (new events are not queued for it)."""
    row = _endpoint(db, endpoint_id)
    types = _types(body.event_types) if body.event_types is not None else None
    url = await _url(body.url) if body.url is not None else None
    if url is not None:
        row.url = url
    if types is not None:
        row.event_types = types
    if "description" in body.model_fields_set:
        row.description = body.description
    if body.enabled is True and not row.enabled:
        row.enabled, row.disabled_reason = True, None
        row.consecutive_failures, row.failing_since = 0, None
    elif body.enabled is False and row.enabled:
        row.enabled, row.disabled_reason = False, "disabled by an admin"
    row.updated_at = utcnow()
    db.add(row)
    db.commit()
    db.refresh(row)
    return row


@router.delete("/{endpoint_id}", status_code=204, operation_id="admin_delete_webhook", responses=error_responses(404))
def delete_endpoint(endpoint_id: uuid.UUID, _admin: AdminUser, db: SessionDep) -> Response:
    """Delete the endpoint and its delivery log (pending deliveries are dropped)."""
    row = _endpoint(db, endpoint_id)
    db.execute(delete(WebhookDelivery).where(col(WebhookDelivery.endpoint_id) == endpoint_id))
    db.delete(row)
    db.commit()
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/deliveries",
    response_model=list[DeliveryPublic],
    operation_id="admin_list_webhook_deliveries",
    responses=error_responses(404),
)
def list_deliveries(
    endpoint_id: uuid.UUID,
    _admin: AdminUser,
    db: SessionDep,
    status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DeliveryPublic]:
    """The endpoint's delivery log, newest first: each event once, with its attempts and the
    last answer or error."""
    _endpoint(db, endpoint_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        stmt = stmt.where(WebhookDelivery.status == status)
    stmt = stmt.order_by(col(WebhookDelivery.seq).desc()).offset(offset).limit(limit)
    return [DeliveryPublic.of(d) for d in db.exec(stmt)]


@router.post(
    "/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryPublic,
    operation_id="admin_redeliver_webhook",
    responses=error_responses(404),
)
def redeliver(endpoint_id: uuid.UUID, delivery_id: int, _admin: AdminUser, db: SessionDep) -> DeliveryPublic:
    """Send the delivery again (a dead one, or a delivered one the receiver lost): it is pending
    again now, with a fresh retry window, behind any earlier pending delivery of its learner."""
    _endpoint(db, endpoint_id)
    d = db.get(WebhookDelivery, delivery_id)
    if d is None or d.endpoint_id != endpoint_id:
        raise NotFound("webhook delivery not found")
    now = utcnow()
    d.status, d.next_attempt_at = PENDING, now
    d.give_up_at = now + timedelta(hours=get_settings().webhook_give_up_hours)
    db.add(d)
    db.commit()
    db.refresh(d)
    return DeliveryPublic.of(d)
