"""The audit log: a record per change in the change's transaction, naming actor and official;
refused writes kept as access records; no writer waits for another."""

import asyncio

import probe_service
import pytest
from harness import ADMIN, reset_service, running_service
from ssu_common import audit

READER = {"Authorization": "Bearer ssu-dev-reader"}
BIN = "940140000385"


@pytest.fixture
async def svc():  # type: ignore[no-untyped-def]
    await reset_service("probe")
    async with running_service(probe_service.build()) as running:
        yield running


async def _records(svc) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    rows = await svc.pool.fetch(
        "SELECT client, official, aggregate_type, aggregate_id, action, reason, correlation_id"
        " FROM audit_records ORDER BY id"
    )
    return [tuple(r) for r in rows]


async def test_a_change_and_its_record_commit_together_and_roll_back_together(svc) -> None:  # type: ignore[no-untyped-def]
    official = {"X-SSU-Official": "inspector A. Seitkali", "X-Correlation-ID": "c-1"}
    r = await svc.client.post(
        "/v1/things",
        json={"bin": BIN, "places": 3, "reason": "site visit 2026-01-12"},
        headers={**ADMIN, **official},
    )
    assert r.status_code == 201
    # The change is refused after its record was written: both roll back; an access record
    # of the refusal stays.
    r = await svc.client.post(
        "/v1/things",
        json={"bin": BIN, "places": 101},
        headers={**ADMIN, "X-Correlation-ID": "c-2"},
    )
    assert r.status_code == 409
    assert await svc.pool.fetchval("SELECT count(*) FROM things WHERE id = $1", f"{BIN}/101") == 0
    r = await svc.client.post(
        "/v1/things", json={"bin": BIN, "places": 4}, headers={"X-Correlation-ID": "c-3"}
    )
    assert r.status_code == 401
    await svc.client.get("/v1/audit", headers=ADMIN)  # reads of the trail are not changes

    assert await _records(svc) == [
        (
            "dev-admin",
            "inspector A. Seitkali",
            "thing",
            f"{BIN}/3",
            "thing.created",
            "site visit 2026-01-12",
            "c-1",
        ),
        ("dev-admin", None, "route", "POST /v1/things", "request.refused", "status 409", "c-2"),
        ("anonymous", None, "route", "POST /v1/things", "request.refused", "status 401", "c-3"),
    ]

    assert (await svc.client.get("/v1/audit", headers=READER)).status_code == 403
    page = (await svc.client.get("/v1/audit", headers=ADMIN, params={"limit": 1})).json()
    first = page["items"][0]
    assert (first["client"], first["official"], first["action"], first["aggregate_id"]) == (
        "dev-admin",
        "inspector A. Seitkali",
        "thing.created",
        f"{BIN}/3",
    )
    second = (
        await svc.client.get(
            "/v1/audit", headers=ADMIN, params={"limit": 1, "cursor": page["next_cursor"]}
        )
    ).json()["items"][0]
    assert (second["client"], second["reason"]) == ("dev-admin", "status 409")
    bad = await svc.client.get("/v1/audit", headers=ADMIN, params={"cursor": "%%"})
    assert bad.status_code == 422


async def test_a_record_outside_a_transaction_is_refused(svc) -> None:  # type: ignore[no-untyped-def]
    async with svc.pool.acquire() as conn:
        with pytest.raises(audit.AuditOutsideTransaction):
            await audit.record(conn, aggregate=audit.Aggregate("thing", "x"), action="thing.x")
    assert await _records(svc) == []


async def test_writers_do_not_wait_for_each_other(svc) -> None:  # type: ignore[no-untyped-def]
    # A writer holds its transaction (and its record) open; other writes go through meanwhile.
    async with svc.pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await audit.record(conn, aggregate=audit.Aggregate("thing", "slow"), action="thing.x")
            answers = await asyncio.wait_for(
                asyncio.gather(
                    *(
                        svc.client.post("/v1/things", json={"bin": BIN, "places": n}, headers=ADMIN)
                        for n in range(5)
                    )
                ),
                timeout=5,
            )
            assert [a.status_code for a in answers] == [201] * 5
        finally:
            await tx.rollback()
    assert sorted(r[3] for r in await _records(svc)) == [f"{BIN}/{n}" for n in range(5)]


async def test_a_write_without_a_key_is_refused_before_its_body_is_read(svc) -> None:  # type: ignore[no-untyped-def]
    sent = 0

    async def body():  # type: ignore[no-untyped-def]
        nonlocal sent
        for _ in range(32):  # 32 MiB
            sent += 1_048_576
            yield b"x" * 1_048_576

    r = await svc.client.post(
        "/v1/things", content=body(), headers={"content-type": "application/json"}
    )
    assert r.status_code == 401
    assert r.json()["detail"] == "an API key is required: Authorization: Bearer <key>"
    assert sent == 0
    # With a key the 1 MiB limit still holds, and it stops reading at the limit.
    sent = 0
    r = await svc.client.post(
        "/v1/things", content=body(), headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert sent <= 2 * 1_048_576
