"""The consumer: inbox deduplication, dead letters with a reason, and it keeps going."""

import json
import uuid
from datetime import date

import probe_service
import pytest
from harness import eventually, publish_raw, read_dlq, reset_service, running_service
from ssu_common import REASON_HEADER
from ssu_contracts import RecipientRegisteredV1, make_event

ROUTING = "registry.recipient.registered.v1"


def registered(name: str) -> bytes:
    data = RecipientRegisteredV1(
        iin="791028302728",
        full_name=name,
        birth_date=date(1979, 10, 28),
        category="adult_disability",
        region="630000000",
        language="ru",
    )
    return make_event(data, source="/ssu/registry", subject="791028302728").to_bytes()


@pytest.fixture(scope="module")
async def svc():  # type: ignore[no-untyped-def]
    await reset_service("probe")
    async with running_service(probe_service.build()) as running:
        yield running


async def effects(svc, note: str) -> int:  # type: ignore[no-untyped-def]
    return int(await svc.pool.fetchval("SELECT count(*) FROM effects WHERE note = $1", note))


async def test_same_event_delivered_twice_has_one_effect(svc) -> None:  # type: ignore[no-untyped-def]
    body = registered("twice")
    await publish_raw(body, routing_key=ROUTING)
    await publish_raw(body, routing_key=ROUTING)
    await publish_raw(registered("after-twice"), routing_key=ROUTING)
    await eventually(lambda: effects(svc, "after-twice"))
    assert await effects(svc, "twice") == 1


async def test_malformed_and_mistyped_messages_are_dead_lettered_and_the_next_is_handled(
    svc,  # type: ignore[no-untyped-def]
) -> None:
    good = json.loads(registered("x"))
    mistyped = {**good, "id": str(uuid.uuid4()), "data": {**good["data"], "birth_date": 123}}
    await publish_raw(b"{not json", routing_key=ROUTING)
    await publish_raw(json.dumps(mistyped).encode(), routing_key=ROUTING)
    await publish_raw(registered("after-poison"), routing_key=ROUTING)
    await eventually(lambda: effects(svc, "after-poison"))

    dead = await read_dlq("probe", expect=2)
    reasons = [m.headers[REASON_HEADER] for m in dead]
    assert reasons[0].startswith("invalid message:")
    assert "birth_date" in reasons[1]
    assert [m.headers["x-ssu-original-routing-key"] for m in dead] == [ROUTING, ROUTING]
    assert dead[0].body == b"{not json"


async def test_domain_refusal_is_dead_lettered_with_its_reason(svc) -> None:  # type: ignore[no-untyped-def]
    await publish_raw(registered("refuse me"), routing_key=ROUTING)
    dead = await read_dlq("probe", expect=1)
    assert dead[0].headers[REASON_HEADER] == "refused: this recipient is refused by a domain rule"
    assert await effects(svc, "refuse me") == 0


async def test_huge_message_is_dead_lettered_unparsed(svc) -> None:  # type: ignore[no-untyped-def]
    await publish_raw(b'{"x": "' + b"a" * 2_000_000 + b'"}', routing_key=ROUTING)
    await publish_raw(registered("after-huge"), routing_key=ROUTING)
    await eventually(lambda: effects(svc, "after-huge"))
    dead = await read_dlq("probe", expect=1)
    assert dead[0].headers[REASON_HEADER] == "invalid message: larger than 1048576 bytes"


async def test_a_failing_event_in_a_batch_is_retried_alone_and_applied_once(svc) -> None:  # type: ignore[no-untyped-def]
    # Fails on the batch's fast path and again on its careful redo: left out of the batch,
    # nacked, and applied on its redelivery.
    probe_service.FAIL_TIMES["flaky"] = 2
    bodies = [registered(f"batch-{i}") for i in range(5)]
    bodies.insert(2, registered("flaky"))
    for body in bodies:
        await publish_raw(body, routing_key=ROUTING)
    await eventually(lambda: effects(svc, "flaky"), timeout=20)
    for i in range(5):
        assert await eventually(lambda i=i: effects(svc, f"batch-{i}")) == 1
    assert await effects(svc, "flaky") == 1
    # The failed attempt's writes were rolled back with its savepoint.
    assert await effects(svc, "half-done") == 0
    metrics = (await svc.client.get("/metrics")).text
    assert (
        'ssu_events_total{event_type="registry.recipient.registered.v1",outcome="retried",'
        'service="probe"} 1.0' in metrics
    )


async def test_a_domain_problem_is_dead_lettered_at_once_with_its_reason(svc) -> None:  # type: ignore[no-untyped-def]
    await publish_raw(registered("conflict me"), routing_key=ROUTING)
    dead = await read_dlq("probe", expect=1)
    assert dead[0].headers[REASON_HEADER] == (
        "refused: Problem: the recipient is already enrolled for this form"
    )
    assert await effects(svc, "conflict me") == 0


async def test_a_constraint_violation_is_dead_lettered_at_once_with_its_reason(svc) -> None:  # type: ignore[no-untyped-def]
    await publish_raw(registered("duplicate me"), routing_key=ROUTING)
    dead = await read_dlq("probe", expect=1)
    reason = dead[0].headers[REASON_HEADER]
    assert reason.startswith("refused: UniqueViolationError: duplicate key value"), reason


async def test_a_statement_timeout_is_retried_then_dead_lettered_and_holds_nothing_up(
    svc,  # type: ignore[no-untyped-def]
) -> None:
    await publish_raw(registered("too slow"), routing_key=ROUTING)
    await publish_raw(registered("after-slow"), routing_key=ROUTING)
    # Not "database down": the next event is applied while the slow one is retried.
    assert await eventually(lambda: effects(svc, "after-slow"), timeout=10) == 1
    # The queue allows 1 + delivery_limit (5) deliveries; the last one says why.
    dead = await read_dlq("probe", expect=1, timeout=30)
    assert dead[0].headers[REASON_HEADER] == (
        "failed 6 deliveries: QueryCanceledError: canceling statement due to statement timeout"
    )
    assert await effects(svc, "too slow") == 0
