"""HTTP API of notification: the delivery log and webhook subscriptions."""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, SecurityScopes
from pydantic import BaseModel, Field
from ssu_common import (
    Connection,
    Principal,
    Problem,
    Seq,
    authorize,
    connection,
    decode_cursor,
    encode_cursor,
    mask_pii,
    refusals,
)
from ssu_common.errors import general
from ssu_contracts import DeliveryChannel, DeliveryStatus

from ssu_notification import domain, service

router = APIRouter(prefix="/v1", tags=["notification"])

READ_SCOPES = frozenset({"notification:read", "notification:admin"})
MAX_LIMIT = 500


async def _reader(request: Request) -> Principal:
    """Either notification scope reads the log; OpenAPI lists both as alternatives."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    credentials = (
        HTTPAuthorizationCredentials(scheme=scheme, credentials=token.strip())
        if scheme.lower() == "bearer" and token.strip()
        else None
    )
    principal = await authorize(SecurityScopes(), request, credentials)
    if not READ_SCOPES & principal.scopes:
        raise Problem(
            403,
            f"the key of {principal.client} lacks the scope notification:read",
            required_scopes=sorted(READ_SCOPES),
        )
    return principal


class Delivery(BaseModel):
    id: UUID
    event_id: str
    event_type: str
    audience: str
    addressee: str
    channel: DeliveryChannel
    destination: str
    language: str
    subject: str | None
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None


def _delivery(row: service.DeliveryRow) -> Delivery:
    # The log is readable by read-only clients: people's contacts are shown masked.
    pending = row.status in ("queued", "failed")
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        audience=row.audience,
        addressee=mask_pii(row.addressee),
        channel=DeliveryChannel(row.channel),
        destination=mask_pii(row.destination),
        language=row.language,
        subject=row.subject,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if pending else None,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )


def _encode_cursor(seq: int, kind: str = "d") -> str:
    return encode_cursor([kind, seq])


# The shape of each list's cursor (decode_cursor validates it).
_CURSORS: dict[str, type[tuple[str, int]]] = {
    "d": tuple[Literal["d"], Seq],
    "s": tuple[Literal["s"], Seq],
}


def _decode_cursor(cursor: str | None, kind: str = "d") -> int:
    """The position a cursor of this list wraps (a cursor of another list is refused)."""
    value = decode_cursor(cursor, _CURSORS[kind])
    return int(value[1]) if value else 0


@router.get(
    "/deliveries",
    response_model=DeliveryPage,
    openapi_extra={
        "security": [{"HTTPBearer": ["notification:read"]}, {"HTTPBearer": ["notification:admin"]}]
    },
)
async def list_deliveries(
    principal: Annotated[Principal, Depends(_reader)],
    conn: Annotated[Connection, Depends(connection)],
    event_id: UUID | None = None,
    status: DeliveryStatus | None = None,
    channel: DeliveryChannel | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> DeliveryPage:
    """The delivery log, oldest first; a regional key sees its region's deliveries only."""
    page, more = await service.list_deliveries(
        conn=conn,
        event_id=str(event_id) if event_id else None,
        status=str(status) if status else None,
        channel=str(channel) if channel else None,
        region=principal.region,
        after_seq=_decode_cursor(cursor),
        limit=limit,
    )
    return DeliveryPage(
        items=[_delivery(r) for r in page],
        next_cursor=_encode_cursor(page[-1].seq) if more and page else None,
    )


class NewSubscription(BaseModel):
    callback_url: str = Field(max_length=2000)
    event_types: list[str] = Field(min_length=1, max_length=50)
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="a Standard Webhooks secret (`whsec_` and base64); generated when omitted",
    )
    description: str | None = Field(default=None, max_length=500)


class Subscription(BaseModel):
    id: UUID
    callback_url: str
    event_types: list[str]
    description: str | None
    created_by: str
    created_at: datetime
    region: str | None = Field(description="a regional subscription gets its region's events")
    previous_secret_expires_at: datetime | None = Field(
        default=None, description="during a rotation, until when the previous secret signs too"
    )


def _subscription(row: service.SubscriptionRow) -> Subscription:
    return Subscription(
        id=row.id,
        callback_url=row.callback_url,
        event_types=row.event_types,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        region=row.region,
        previous_secret_expires_at=row.previous_expires_at,
    )


def _created(row: service.SubscriptionRow, secret: str) -> "CreatedSubscription":
    return CreatedSubscription(**_subscription(row).model_dump(), secret=secret)


class SecretRotation(BaseModel):
    secret: str | None = Field(
        default=None,
        min_length=16,
        max_length=200,
        description="the new secret (`whsec_` and base64); generated when omitted",
    )
    previous_valid_seconds: int = Field(
        default=86_400,
        ge=0,
        le=30 * 86_400,
        description="how long the current secret keeps signing beside the new one",
    )


class CreatedSubscription(Subscription):
    secret: str = Field(description="returned once, on creation; never again")


class SubscriptionList(BaseModel):
    items: list[Subscription]
    next_cursor: str | None


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=CreatedSubscription,
    responses=refusals(
        domain.CALLBACK_URL_REFUSED,
        domain.EVENT_NOT_FOR_WEBHOOKS,
        domain.WEBHOOK_SECRET_REFUSED,
        general(422),
        domain.PERSONAL_EVENTS_NEED_REGISTRY_READ,
    ),
)
async def create_subscription(
    body: NewSubscription,
    request: Request,
    response: Response,
    principal: Annotated[Principal, Security(authorize, scopes=["notification:admin"])],
    conn: Annotated[Connection, Depends(connection)],
) -> CreatedSubscription:
    """Subscribe a callback URL to event types; the body is the signed CloudEvents envelope."""
    settings = request.app.state.runtime.settings
    row, secret = await service.create_subscription(
        conn=conn,
        callback_url=body.callback_url,
        event_types=body.event_types,
        secret=body.secret,
        description=body.description,
        created_by=principal.client,
        region=principal.region,
        allow_loopback=settings.allow_loopback_webhooks,
        may_read_personal="registry:read" in principal.scopes,
    )
    created = _created(row, secret)
    response.headers["Location"] = f"/v1/subscriptions/{created.id}"
    return created


@router.post(
    "/subscriptions/{subscription_id}/secret",
    response_model=CreatedSubscription,
    responses=refusals(domain.WEBHOOK_SECRET_REFUSED, general(422)),
)
async def rotate_subscription_secret(
    subscription_id: UUID,
    body: SecretRotation,
    principal: Annotated[Principal, Security(authorize, scopes=["notification:admin"])],
    conn: Annotated[Connection, Depends(connection)],
) -> CreatedSubscription:
    """Give a subscription a new secret (returned once); the current one keeps signing beside
    it for `previous_valid_seconds`, so each delivery carries both signatures meanwhile."""
    await _visible_subscription(conn, subscription_id, principal)
    rotated = await service.rotate_secret(
        conn=conn,
        subscription_id=subscription_id,
        secret=body.secret,
        previous_valid_seconds=body.previous_valid_seconds,
    )
    if rotated is None:
        raise Problem(404, f"no subscription {subscription_id}")
    row, secret = rotated
    return _created(row, secret)


async def _visible_subscription(
    conn: Connection, subscription_id: UUID, principal: Principal
) -> service.SubscriptionRow:
    """A subscription the key may see: another region's answers 404, like a missing one."""
    row = await service.get_subscription(conn=conn, subscription_id=subscription_id)
    if row is None or not principal.sees_region(row.region):
        raise Problem(404, f"no subscription {subscription_id}")
    return row


@router.get("/subscriptions", response_model=SubscriptionList)
async def list_subscriptions(
    principal: Annotated[Principal, Security(authorize, scopes=["notification:admin"])],
    conn: Annotated[Connection, Depends(connection)],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> SubscriptionList:
    """Live subscriptions, oldest first; their secrets are never shown again. A regional key
    sees its region's."""
    rows = await service.list_subscriptions(
        conn=conn, after_seq=_decode_cursor(cursor, "s"), limit=limit + 1, region=principal.region
    )
    page = rows[:limit]
    return SubscriptionList(
        items=[_subscription(r) for r in page],
        next_cursor=_encode_cursor(page[-1].seq, "s") if len(rows) > limit else None,
    )


@router.get("/subscriptions/{subscription_id}", response_model=Subscription)
async def get_subscription(
    subscription_id: UUID,
    principal: Annotated[Principal, Security(authorize, scopes=["notification:admin"])],
    conn: Annotated[Connection, Depends(connection)],
) -> Subscription:
    return _subscription(await _visible_subscription(conn, subscription_id, principal))


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(
    subscription_id: UUID,
    principal: Annotated[Principal, Security(authorize, scopes=["notification:admin"])],
    conn: Annotated[Connection, Depends(connection)],
) -> Response:
    await _visible_subscription(conn, subscription_id, principal)
    if not await service.delete_subscription(conn=conn, subscription_id=subscription_id):
        raise Problem(404, f"no subscription {subscription_id}")
    return Response(status_code=204)
