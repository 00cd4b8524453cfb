"""A billing run is a job (issue 14): accepted with 202 and `Location`, billed in the background
by the service's run worker, its phase and progress visible while its transaction is open."""

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
import pytest_asyncio
from billing_world import (
    APPROVER,
    attend,
    enroll,
    invoice_of,
    licensed_provider,
    run,
    tariff,
    until_finished,
)
from harness import (
    ADMIN,
    RunningService,
    eventually,
    reset_service,
    run_to_end,
    running_service,
    settings_for,
    test_dsn,
)
from ssu_billing.main import build
from ssu_billing.settings import Settings

RUNS_LOCK = "SELECT pg_advisory_lock(hashtextextended('ssu.billing.runs', 0))"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


async def _get(svc: RunningService, run_id: str) -> dict[str, Any]:
    r = await svc.client.get(f"/v1/runs/{run_id}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _providers(
    svc: RunningService, *, region: str, year: int, days: list[list[int]]
) -> list[tuple[str, str, str, int]]:
    """Providers of a region at 1,000.00 a day, each one enrollment attending these days of
    January: (bin, contract, enrollment, days attended), in the contracts' order."""
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="1000.00",
        unit="day",
        effective_from=date(year, 1, 1),
    )
    made = []
    for attended in days:
        bin_, lic, contract = await licensed_provider(svc, region=region, year=year)
        e = await enroll(svc, bin_, lic, date(year, 1, 1), region=region)
        await attend(svc, bin_, f"{year}-01", {e: attended})
        made.append((bin_, contract, e, len(attended)))
    return sorted(made, key=lambda p: p[1])


async def test_a_poller_sees_the_run_queued_then_invoicing_then_done(svc: RunningService) -> None:
    region, year = "630000000", 2025
    world = await _providers(svc, region=region, year=year, days=[[1, 2], [3, 4, 5], [6]])
    body = {"period": f"{year}-01", "region": region}
    # The worker is busy (this connection holds the runs' lock): the run waits, queued.
    holder = await asyncpg.connect(test_dsn("billing"))
    try:
        await holder.execute(RUNS_LOCK)
        r = await svc.client.post("/v1/runs", headers=ADMIN, json=body)
        assert r.status_code == 202, r.text
        accepted = r.json()
        run_id = accepted["id"]
        assert r.headers["location"] == f"/v1/runs/{run_id}"
        queued = await _get(svc, run_id)
        assert {k: queued[k] for k in ("status", "phase", "progress", "started_at", "error")} == {
            "status": "queued",
            "phase": None,
            "progress": {"done": 0, "total": None},
            "started_at": None,
            "error": None,
        }
        # Another transaction keeps invoice lines from being written: the run's transaction
        # stops after its invoices, before their lines, and a poller sees it invoicing.
        await holder.execute("BEGIN")
        await holder.execute("LOCK TABLE invoice_lines IN SHARE MODE")
        await holder.execute("SELECT pg_advisory_unlock(hashtextextended('ssu.billing.runs', 0))")

        async def invoicing() -> dict[str, Any] | None:
            got = await _get(svc, run_id)
            return got if got["phase"] == "invoices" else None

        midway = await eventually(invoicing, timeout=30)
        assert {k: midway[k] for k in ("status", "phase", "progress", "finished_at")} == {
            "status": "running",
            "phase": "invoices",
            "progress": {"done": 0, "total": 3},
            "finished_at": None,
        }
        assert midway["started_at"] is not None
        # nothing of the run is visible but its progress: its transaction is open
        r = await svc.client.get("/v1/invoices", headers=ADMIN, params={"period": f"{year}-01"})
        assert r.json()["items"] == []
        await holder.execute("ROLLBACK")
    finally:
        await holder.close()
    done = await until_finished(svc, run_id)
    assert {k: done[k] for k in ("status", "phase", "progress", "invoices", "total")} == {
        "status": "completed",
        "phase": "done",
        "progress": {"done": 3, "total": 3},
        "invoices": 3,
        "total": "6000.00",
    }
    assert done["finished_at"] == done["completed_at"]
    # the amounts are today's, to the tiyn: 1,000.00 a day attended
    totals = {c: (await invoice_of(svc, b, f"{year}-01"))["total"] for b, c, _, _ in world}
    assert totals == {c: f"{1000 * n:.2f}" for _, c, _, n in world}


async def test_progress_seen_by_polling_moves_through_the_phases(svc: RunningService) -> None:
    region, year = "110000000", 2025
    await _providers(svc, region=region, year=year, days=[[1], [2]])
    seen: list[dict[str, Any]] = []
    holder = await asyncpg.connect(test_dsn("billing"))
    try:
        await holder.execute(RUNS_LOCK)
        r = await svc.client.post(
            "/v1/runs", headers=ADMIN, json={"period": f"{year}-01", "region": region}
        )
        assert r.status_code == 202
        # the poller's first look is while the run is queued
        seen.append(await _get(svc, r.json()["id"]))
    finally:
        await holder.close()
    done = await run_to_end(
        svc.client.request,
        "/v1/runs",
        json={"period": f"{year}-01", "region": region},
        headers=ADMIN,
        expect=200,
        seen=seen,
    )
    phases = [b["phase"] for b in seen]
    assert phases[0] is None and phases[-1] == "done"
    order = [None, "loading", "amounts", "checks", "invoices", "done"]
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases)
    assert all(b["progress"]["done"] <= (b["progress"]["total"] or 0) for b in seen)
    assert (done["status"], done["total"], done["repeated"]) == ("completed", "2000.00", True)


async def test_a_failed_run_says_why_and_the_month_runs_again(svc: RunningService) -> None:
    region, year = "150000000", 2025
    [(bin_, contract, _, _)] = await _providers(svc, region=region, year=year, days=[[1, 2, 3]])
    # The invoice of this contract cannot be written (as a constraint of the database would
    # refuse it): the run fails, and so does February, accepted after January in good faith.
    await svc.pool.execute(
        "CREATE FUNCTION test_refuse_invoice() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN RAISE EXCEPTION 'invoice of % refused', NEW.contract_number; END $$"
    )
    await svc.pool.execute(
        "CREATE TRIGGER test_refuse_invoice BEFORE INSERT ON invoices FOR EACH ROW"
        f" WHEN (NEW.contract_number = '{contract}') EXECUTE FUNCTION test_refuse_invoice()"
    )
    holder = await asyncpg.connect(test_dsn("billing"))
    try:
        await holder.execute(RUNS_LOCK)
        ids = []
        for period in (f"{year}-01", f"{year}-02"):
            r = await svc.client.post(
                "/v1/runs", headers=ADMIN, json={"period": period, "region": region}
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
    finally:
        await holder.close()
        january, february = [await until_finished(svc, i) for i in ids]
        await svc.pool.execute("DROP TRIGGER test_refuse_invoice ON invoices")
        await svc.pool.execute("DROP FUNCTION test_refuse_invoice")
    assert (january["status"], january["phase"], january["progress"]) == (
        "failed",
        "invoices",
        {"done": 0, "total": 1},
    )
    assert f"invoice of {contract} refused" in january["error"]
    assert january["finished_at"] is not None and january["completed_at"] is None
    assert (february["status"], february["error"]) == (
        "failed",
        f"the run of {year}-01 (region {region}), accepted before this one, failed: months are"
        f" billed in order; run {year}-01 again, then {year}-02",
    )
    assert february["progress"] == {"done": 0, "total": None}
    r = await svc.client.get("/v1/invoices", headers=ADMIN, params={"provider": bin_})
    assert r.json()["items"] == []
    r = await svc.client.post(f"/v1/runs/{january['id']}/approve", headers=APPROVER)
    assert (r.status_code, r.json()["type"], r.json()["detail"]) == (
        409,
        "/problems/run-not-completed",
        "the run is failed: only a completed run's invoices are approved",
    )
    # the month runs again, as a new run; the failed one stays as it was
    again = await run(svc, f"{year}-01", region=region)
    assert again["id"] != january["id"] and again["total"] == "3000.00"
    assert (await _get(svc, january["id"]))["status"] == "failed"
    r = await svc.client.get("/metrics")
    assert 'ssu_billing_runs{service="billing",status="failed"} 2.0' in r.text


async def test_a_run_left_running_by_a_stopped_process_is_begun_again(
    svc: RunningService,
) -> None:
    region, year = "190000000", 2025
    await _providers(svc, region=region, year=year, days=[[7, 8]])
    other_region = "230000000"
    await _providers(svc, region=other_region, year=year, days=[[9]])
    holder = await asyncpg.connect(test_dsn("billing"))
    try:
        await holder.execute(RUNS_LOCK)
        ids = []
        for r_ in (region, other_region):
            r = await svc.client.post(
                "/v1/runs", headers=ADMIN, json={"period": f"{year}-01", "region": r_}
            )
            assert r.status_code == 202
            ids.append(r.json()["id"])
        # as a process that stopped mid-run leaves them: running, in a phase, begun before;
        # the second has been begun (and interrupted) as often as a run may be
        await holder.execute(
            "UPDATE runs SET status = 'running', phase = 'checks', attempts = $2"
            " WHERE id = $1::uuid",
            ids[0],
            1,
        )
        await holder.execute(
            "UPDATE runs SET status = 'running', phase = 'amounts', attempts = 3"
            " WHERE id = $1::uuid",
            ids[1],
        )
    finally:
        await holder.close()
    resumed, given_up = [await until_finished(svc, i) for i in ids]
    assert (resumed["status"], resumed["total"]) == ("completed", "2000.00")
    attempts = await svc.pool.fetchval("SELECT attempts FROM runs WHERE id = $1::uuid", ids[0])
    assert attempts == 2
    assert (given_up["status"], given_up["error"]) == (
        "failed",
        "interrupted 3 times: the process billing it stopped each time (see the service's log);"
        " nothing of it was kept",
    )


async def test_the_document_says_202_with_location(svc: RunningService) -> None:
    r = await svc.client.get("/openapi.json")
    post = r.json()["paths"]["/v1/runs"]["post"]
    assert post["operationId"] == "billing.post_run"
    accepted = post["responses"]["202"]
    assert accepted["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RunOut"
    }
    assert set(accepted["headers"]) == {"Location"}
    assert set(post["responses"]["200"]["headers"]) == {"Location"}
    schema = r.json()["components"]["schemas"]
    assert {"phase", "progress", "status", "started_at", "finished_at", "error"} <= set(
        schema["RunOut"]["properties"]
    )
    assert set(schema["RunProgress"]["properties"]) == {"done", "total"}
    get = r.json()["paths"]["/v1/runs/{run_id}"]["get"]["responses"]["200"]
    assert get["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RunOut"}


async def test_two_replicas_bill_each_run_once(svc: RunningService) -> None:
    year = 2025
    regions = ["270000000", "310000000", "330000000", "350000000"]
    for region in regions:
        await _providers(svc, region=region, year=year, days=[[1, 2]])
    async with running_service(build(settings_for(Settings, "billing"))) as replica:  # type: ignore[arg-type]
        holder = await asyncpg.connect(test_dsn("billing"))
        try:
            await holder.execute(RUNS_LOCK)
            ids = []
            for n, region in enumerate(regions):
                # accepted by either replica; both workers wait for the runs' lock
                r = await (svc, replica)[n % 2].client.post(
                    "/v1/runs", headers=ADMIN, json={"period": f"{year}-01", "region": region}
                )
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
        finally:
            await holder.close()
        done = [await until_finished(replica, i) for i in ids]
    assert [(d["status"], d["invoices"], d["total"]) for d in done] == [
        ("completed", 1, "2000.00")
    ] * len(regions)
    rows = await svc.pool.fetch(
        "SELECT r.attempts, count(i.id) AS invoices FROM runs r"
        " LEFT JOIN invoices i ON i.run_id = r.id WHERE r.id = ANY($1::uuid[])"
        " GROUP BY r.id, r.attempts",
        ids,
    )
    assert [(r["attempts"], r["invoices"]) for r in rows] == [(1, 1)] * len(regions)


async def test_a_retried_post_with_its_idempotency_key_gets_the_first_answer(
    svc: RunningService,
) -> None:
    body = {"period": "2025-01", "region": "390000000"}
    keyed = {**ADMIN, "Idempotency-Key": "run-390000000-2025-01"}
    first = await svc.client.post("/v1/runs", headers=keyed, json=body)
    assert first.status_code == 202, first.text
    again = await svc.client.post("/v1/runs", headers=keyed, json=body)
    assert (again.status_code, again.headers["idempotent-replayed"]) == (202, "true")
    assert again.headers["location"] == first.headers["location"]
    assert again.json() == first.json()
    done = await until_finished(svc, first.json()["id"])
    assert (done["status"], done["invoices"]) == ("completed", 0)
