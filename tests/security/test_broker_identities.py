"""Broker identities (SECURITY.md): a service publishes only its own routing keys and reads only
its own queues, the broker vouches for `user_id`, and a forged event reaches no state."""

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import aio_pika
import aiormq
import pytest
import pytest_asyncio
from harness import (
    AMQP_URL,
    RunningService,
    eventually,
    identity_url,
    publish_raw,
    read_dlq,
    reset_service,
    running_service,
    settings_for,
)
from ssu_billing.handlers import HANDLERS as BILLING_HANDLERS
from ssu_billing.main import build as build_billing
from ssu_billing.settings import Settings as BillingSettings
from ssu_common import REASON_HEADER, identities
from ssu_common.topology import CONSUMERS
from ssu_contracts import LicenseIssuedV1, LicenseRevokedV1, make_bin, make_event
from ssu_licensing.handlers import HANDLERS as LICENSING_HANDLERS
from ssu_notification.handlers import HANDLERS as NOTIFICATION_HANDLERS
from ssu_registry.handlers import HANDLERS as REGISTRY_HANDLERS
from ssu_registry.main import build as build_registry
from ssu_registry.settings import Settings as RegistrySettings

BIN = make_bin(date(2012, 4, 4), 41)
NUMBER = "SSU-63-2026-000041"
REVOKED = "licensing.license.revoked.v1"


def license_fields(seq: int, status: str) -> dict[str, object]:
    return {
        "license_number": NUMBER,
        "bin": BIN,
        "provider_name": "Мейірім",
        "legal_form": "ngo",
        "region": "630000000",
        "contact": {"email": "info@meyirim.kz", "language": "kk"},
        "subtypes": [{"form": "home", "category": "elderly"}],
        "sites": [{"site_id": "s1", "address": "Өскемен", "kato": "631010000", "places": None}],
        "status": status,
        "seq": seq,
        "effective_date": date(2026, 11, 2),
    }


def forged_revocation(*, source: str = "/ssu/licensing") -> bytes:
    data = LicenseRevokedV1(**license_fields(99, "revoked"), reason="forged")  # type: ignore[arg-type]
    return make_event(data, source=source, subject=NUMBER).to_bytes()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def suite() -> AsyncIterator[dict[str, RunningService]]:
    await reset_service("registry")
    await reset_service("billing")
    async with (
        running_service(build_registry(settings_for(RegistrySettings, "registry"))) as registry,  # type: ignore[arg-type]
        running_service(build_billing(settings_for(BillingSettings, "billing"))) as billing,  # type: ignore[arg-type]
    ):
        yield {"registry": registry, "billing": billing}


def test_each_service_consumes_what_the_shared_topology_declares() -> None:
    handlers = {
        "licensing": LICENSING_HANDLERS,
        "registry": REGISTRY_HANDLERS,
        "billing": BILLING_HANDLERS,
        "notification": NOTIFICATION_HANDLERS,
    }
    for service, table in handlers.items():
        assert set(table) == set(CONSUMERS.get(service, ())), service
    assert set(CONSUMERS) <= set(identities.SERVICES)


async def test_registry_credentials_cannot_publish_a_licensing_routing_key(
    suite: dict[str, RunningService],
) -> None:
    connection = await aio_pika.connect(identity_url("ssu-registry"))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("ssu.events", ensure=False)
        # Its own keys are accepted (a type nobody binds, so no consumer is disturbed).
        await exchange.publish(
            aio_pika.Message(b"{}", user_id="ssu-registry"), routing_key="registry.nothing.v1"
        )
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as refused:
            await exchange.publish(
                aio_pika.Message(forged_revocation(), user_id="ssu-registry"),
                routing_key=REVOKED,
            )
        assert "ACCESS_REFUSED" in str(refused.value)
        assert "licensing.license.revoked.v1" in str(refused.value)
        assert channel.is_closed


async def test_a_service_can_neither_claim_another_user_id_nor_read_another_queue(
    suite: dict[str, RunningService],
) -> None:
    connection = await aio_pika.connect(identity_url("ssu-registry"))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange("ssu.events", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed) as claimed:
            await exchange.publish(
                aio_pika.Message(b"{}", user_id="ssu-licensing"),
                routing_key="registry.nothing.v1",
            )
        assert "user_id property set to 'ssu-licensing'" in str(claimed.value)
        channel = await connection.channel()
        queue = await channel.get_queue("billing.events", ensure=False)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused) as read:
            await queue.get(fail=False)
        assert "billing.events" in str(read.value)


async def test_forged_revocations_reach_no_state_and_are_dead_lettered_with_their_reason(
    suite: dict[str, RunningService],
) -> None:
    registry, billing = suite["registry"], suite["billing"]
    issued = make_event(
        LicenseIssuedV1(**license_fields(1, "active")),  # type: ignore[arg-type]
        source="/ssu/licensing",
        subject=NUMBER,
    )
    await publish_raw(issued.to_bytes(), routing_key=issued.type)

    async def known(svc: RunningService, table: str) -> bool:
        sql = f"SELECT 1 FROM {table} WHERE license_number = $1"  # noqa: S608 (constant)
        return bool(await svc.pool.fetchval(sql, NUMBER))

    await eventually(lambda: known(registry, "providers"))
    await eventually(lambda: known(billing, "licenses"))

    # A user that is no service's (an integration account, a leaked admin) on licensing's key.
    by_guest = forged_revocation()
    await publish_raw(by_guest, routing_key=REVOKED, as_user="guest")
    # Licensing's own identity, claiming to be another service in the envelope.
    wrong_source = forged_revocation(source="/ssu/billing")
    await publish_raw(wrong_source, routing_key=REVOKED)
    # Registry's identity, on a key of its own that billing binds, carrying licensing's type.
    smuggled = forged_revocation()
    await publish_raw(smuggled, routing_key="registry.enrollment.ended.v1")

    ids = {json.loads(body)["id"]: body for body in (by_guest, wrong_source, smuggled)}
    registry_dead = await read_dlq("registry", expect=2)
    billing_dead = await read_dlq("billing", expect=3)
    reasons = {
        "guest": "untrusted origin: user_id 'guest' is not the identity of a service",
        "source": "untrusted origin: source '/ssu/billing' is not /ssu/licensing",
        "smuggled": (
            "untrusted origin: routing key 'registry.enrollment.ended.v1'"
            " is not the event type 'licensing.license.revoked.v1'"
        ),
    }
    by_id = {
        json.loads(by_guest)["id"]: reasons["guest"],
        json.loads(wrong_source)["id"]: reasons["source"],
        json.loads(smuggled)["id"]: reasons["smuggled"],
    }
    assert {m.message_id: m.headers[REASON_HEADER] for m in registry_dead} == {
        k: v for k, v in by_id.items() if v != reasons["smuggled"]
    }
    assert {m.message_id: m.headers[REASON_HEADER] for m in billing_dead} == by_id

    # No state: the license is as the genuine event left it, and no forged id was recorded.
    provider = await registry.pool.fetchrow(
        "SELECT status, seq FROM providers WHERE license_number = $1", NUMBER
    )
    assert dict(provider) == {"status": "active", "seq": 1}
    license_row = await billing.pool.fetchrow(
        "SELECT status, seq FROM licenses WHERE license_number = $1", NUMBER
    )
    assert dict(license_row) == {"status": "active", "seq": 1}
    for svc in (registry, billing):
        recorded = await svc.pool.fetchval(
            "SELECT count(*) FROM inbox WHERE event_id = ANY($1::uuid[])", list(ids)
        )
        assert recorded == 0

    # A genuine later event still applies: the forgeries blocked nothing.
    genuine = make_event(
        LicenseRevokedV1(**license_fields(2, "revoked"), reason="violations"),  # type: ignore[arg-type]
        source="/ssu/licensing",
        subject=NUMBER,
    )
    await publish_raw(genuine.to_bytes(), routing_key=genuine.type)

    async def revoked_in(svc: RunningService, table: str) -> object:
        sql = f"SELECT seq FROM {table} WHERE license_number = $1 AND status = 'revoked'"  # noqa: S608
        return await svc.pool.fetchval(sql, NUMBER)

    assert await eventually(lambda: revoked_in(registry, "providers")) == 2
    assert await eventually(lambda: revoked_in(billing, "licenses")) == 2


async def test_a_replayed_dead_letter_keeps_its_publisher_and_is_applied(
    suite: dict[str, RunningService],
) -> None:
    registry = suite["registry"]
    number = "SSU-63-2026-000042"
    issued = make_event(
        LicenseIssuedV1(**{**license_fields(1, "active"), "license_number": number}),  # type: ignore[arg-type]
        source="/ssu/licensing",
        subject=number,
    )
    # A dead letter as the broker keeps it: licensing's user_id, in registry's DLQ (put there
    # by the operators' identity, which alone may write to the default exchange).
    connection = await aio_pika.connect(identity_url(identities.OPS_USER))
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(
                issued.to_bytes(),
                message_id=issued.id,
                user_id="ssu-licensing",
                headers={REASON_HEADER: "failed 11 deliveries: the database was slow"},
            ),
            routing_key="registry.events.dlq",
        )
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "ssu"),
        "dlq",
        "replay",
        "registry",
        env={**os.environ, "SSU_AMQP_URL": AMQP_URL},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()

    async def known() -> object:
        sql = "SELECT status FROM providers WHERE license_number = $1"
        return await registry.pool.fetchval(sql, number)

    assert await eventually(known) == "active"
