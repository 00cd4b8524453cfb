"""The audit trail: every write recorded with who and the correlation id; tampering detected."""

import probe_service
import pytest
from harness import ADMIN, reset_service, running_service
from ssu_common.audit import verify

READER = {"Authorization": "Bearer ssu-dev-reader"}


@pytest.fixture
async def svc():  # type: ignore[no-untyped-def]
    await reset_service("probe")
    async with running_service(probe_service.build()) as running:
        yield running


async def test_writes_are_recorded_and_readable_with_the_audit_scope(svc) -> None:  # type: ignore[no-untyped-def]
    body = {"bin": "940140000385", "places": 3}
    await svc.client.post("/v1/things", json=body, headers={**ADMIN, "X-Correlation-ID": "c-1"})
    await svc.client.post("/v1/things", json=body)  # refused without a key: recorded too
    await svc.client.get("/v1/audit", headers=ADMIN)  # reads are not writes

    assert (await svc.client.get("/v1/audit", headers=READER)).status_code == 403
    r = await svc.client.get("/v1/audit", headers=ADMIN, params={"limit": 1})
    page = r.json()
    first = page["items"][0]
    assert (first["client"], first["method"], first["route"], first["status"]) == (
        "dev-admin",
        "POST",
        "/v1/things",
        201,
    )
    assert first["correlation_id"] == "c-1"
    assert first["body_bytes"] == len(b'{"bin":"940140000385","places":3}')
    r2 = await svc.client.get(
        "/v1/audit", headers=ADMIN, params={"limit": 1, "cursor": page["next_cursor"]}
    )
    second = r2.json()["items"][0]
    assert (second["client"], second["status"]) == ("anonymous", 401)
    assert (
        await svc.client.get("/v1/audit", headers=ADMIN, params={"cursor": "%%"})
    ).status_code == 422


async def test_verify_detects_an_edited_and_a_deleted_record(svc) -> None:  # type: ignore[no-untyped-def]
    for places in (1, 2, 3, 4):
        await svc.client.post(
            "/v1/things", json={"bin": "940140000385", "places": places}, headers=ADMIN
        )
    async with svc.pool.acquire() as conn:
        assert await verify(conn) == (4, [])
        await conn.execute("UPDATE audit_log SET client = 'someone-else' WHERE id = 2")
        checked, breaks = await verify(conn)
        assert checked == 4
        assert [(b.record_id, b.problem) for b in breaks] == [(2, "the record was edited")]
        await conn.execute("UPDATE audit_log SET client = 'dev-admin' WHERE id = 2")
        await conn.execute("DELETE FROM audit_log WHERE id = 3")
        checked, breaks = await verify(conn)
        assert checked == 3
        assert [(b.record_id, b.problem) for b in breaks] == [
            (4, "a record before it was deleted or altered")
        ]
