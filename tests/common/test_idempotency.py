"""Idempotency-Key on POST (issue 14), through a real service (registry) on its real database:
a retry replays the first answer, another request under the key is refused, a key still being
answered is a 409, a 5xx is not kept, keys are forgotten after 24 hours."""

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_common.idempotency import KEEP_FOR
from ssu_contracts import make_iin
from ssu_registry.main import build
from ssu_registry.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

OTHER_CLIENT = {"Authorization": "Bearer ssu-dev-east-kz"}


def person(serial: int, name: str = "Айгерим Сейтқали") -> dict[str, Any]:
    return {
        "iin": make_iin(date(1955, 5, 17), "female", serial),
        "full_name": name,
        "birth_date": "1955-05-17",
        "category": "elderly",
        "region": "630000000",
        "language": "kk",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        yield running


async def kept(svc: RunningService) -> list[tuple[str, str, int | None]]:
    async with svc.pool.acquire() as conn:
        rows = await conn.fetch("SELECT key, state, status FROM idempotency_keys ORDER BY key")
    return [(r["key"], r["state"], r["status"]) for r in rows]


async def test_a_retry_replays_the_first_answer(svc: RunningService) -> None:
    c = svc.client
    key = {**ADMIN, "Idempotency-Key": "retry-1"}
    first = await c.post("/v1/recipients", json=person(101), headers=key)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await c.post("/v1/recipients", json=person(101), headers=key)
    # Without the key the same body is a 200 ("already registered"); with it, the first 201.
    assert (again.status_code, again.json(), again.headers["idempotent-replayed"]) == (
        201,
        first.json(),
        "true",
    )
    assert again.headers["content-type"] == first.headers["content-type"]
    plain = await c.post("/v1/recipients", json=person(101), headers=ADMIN)
    assert plain.status_code == 200, plain.text
    assert await kept(svc) == [("retry-1", "done", 201)]


async def test_another_request_under_the_key_is_refused(svc: RunningService) -> None:
    c = svc.client
    key = {**ADMIN, "Idempotency-Key": "retry-2"}
    assert (await c.post("/v1/recipients", json=person(102), headers=key)).status_code == 201
    r = await c.post("/v1/recipients", json=person(103), headers=key)
    assert r.status_code == 422, r.text
    assert r.json()["errors"] == [
        {
            "field": "header.idempotency-key",
            "message": "was used with another request; use a new key for a new request",
        }
    ]
    # Not created under the reused key.
    r = await c.get(f"/v1/recipients/{person(103)['iin']}", headers=ADMIN)
    assert r.status_code == 404
    # Keys are per client: another client's same key is its own.
    r = await c.post(
        "/v1/recipients", json=person(104), headers={**OTHER_CLIENT, "Idempotency-Key": "retry-2"}
    )
    assert r.status_code == 201, r.text


async def test_a_key_still_being_answered_is_a_conflict_and_a_bad_key_is_refused(
    svc: RunningService,
) -> None:
    c = svc.client
    key = {**ADMIN, "Idempotency-Key": "in-flight"}
    first = await c.post("/v1/recipients", json=person(105), headers=key)
    assert first.status_code == 201
    async with svc.pool.acquire() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET state = 'in_progress' WHERE key = 'in-flight'"
        )
    r = await c.post("/v1/recipients", json=person(105), headers=key)
    assert (r.status_code, r.headers["retry-after"]) == (409, "1"), r.text
    r = await c.post(
        "/v1/recipients", json=person(106), headers={**ADMIN, "Idempotency-Key": "with space"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "header.idempotency-key"


async def test_refusals_are_kept_and_keys_are_forgotten_after_a_day(svc: RunningService) -> None:
    c = svc.client
    key = {**ADMIN, "Idempotency-Key": "refused"}
    bad = {**person(107), "birth_date": "1990-01-01"}  # does not match the IIN
    first = await c.post("/v1/recipients", json=bad, headers=key)
    assert first.status_code == 422
    again = await c.post("/v1/recipients", json=bad, headers=key)
    assert (again.status_code, again.json()) == (422, first.json())
    async with svc.pool.acquire() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET created_at = clock_timestamp() - $1::interval"
            " WHERE key = 'refused'",
            KEEP_FOR,
        )
    await svc.runtime.prune()
    assert "refused" not in [k for k, _, _ in await kept(svc)]
