"""Checks before payment (issue 19): each rule of the billing run found and not found, with the
line held (not paid, not dropped) or paid, the invoice's total, held and payable amounts, four
eyes on a held line, the adjustment a late death makes, and the policies of an unconfirmed
month. Stationary care is 10,000.00 KZT a day in every test, so a line is 10,000.00 per
billable date unless said otherwise."""

import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from billing_world import (
    APPROVER,
    bank_details,
    ended,
    feed,
    invoice_of,
    license_fields,
    new_bin,
    new_iin,
    run,
    started,
    tariff,
    until_finished,
)
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_billing import domain, service, store
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_contracts import Addressee, LicenseIssuedV1, Site, make_iin

DAY = "10000.00"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


def _official(key: dict[str, str], official: str) -> dict[str, str]:
    return {**key, "X-SSU-Official": official}


async def _provider(
    svc: RunningService, *, region: str, year: int, sites: list[tuple[str, int | None]]
) -> tuple[str, str]:
    """A licensed provider with these sites (id, places), a contract and the day tariff."""
    bin_ = new_bin()
    number = f"LIC-{uuid.uuid4().hex[:10]}"
    fields = license_fields(bin_, number, seq=1, status="active", effective=date(2024, 1, 1))
    fields["region"] = region
    fields["sites"] = [
        Site(site_id=s, address="Семей", kato="631010000", places=p) for s, p in sites
    ]
    await feed(svc, LicenseIssuedV1(**fields))
    r = await svc.client.post(
        "/v1/contracts",
        headers=ADMIN,
        json={
            "number": f"C-{year}-{bin_}",
            "provider_bin": bin_,
            "region": region,
            "year": year,
            "budget": "100000000.00",
            "bank_details": bank_details(bin_),
        },
    )
    assert r.status_code == 201, r.text
    await tariff(
        svc, region=region, form="stationary", rate=DAY, unit="day", effective_from=date(2024, 1, 1)
    )
    return bin_, number


async def _enroll(
    svc: RunningService,
    bin_: str,
    number: str,
    *,
    region: str,
    start: date,
    iin: str | None = None,
    site: str = "s1",
    form: str = "stationary",
) -> str:
    e = started(
        str(uuid.uuid4()), iin or new_iin(), bin_, number, start, form=form, region=region
    ).model_copy(update={"site_id": site})
    await feed(svc, e)
    return e.enrollment_id


async def _attend(svc: RunningService, bin_: str, month: str, dates: dict[str, list[int]]) -> None:
    year, mon = (int(x) for x in month.split("-"))
    r = await svc.client.post(
        "/v1/attendance",
        headers=ADMIN,
        json={
            "provider_bin": bin_,
            "month": month,
            "enrollments": [
                {"enrollment_id": eid, "dates": [date(year, mon, d).isoformat() for d in days]}
                for eid, days in dates.items()
            ],
        },
    )
    assert r.status_code == 200 and not r.json()["rejected"], r.text


def _lines(invoice: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["enrollment_id"]: line for line in invoice["items"]}


def _failed(line: dict[str, Any]) -> dict[str, list[str]]:
    """The rules a line failed, with the dates each found."""
    return {c["rule"]: c["dates"] for c in line["checks"] if not c["passed"]}


def _money(invoice: dict[str, Any]) -> tuple[str, str, str]:
    return invoice["total"], invoice["held"], invoice["payable"]


def _days(month: str, days: list[int]) -> list[str]:
    return [f"{month}-{d:02d}" for d in days]


async def test_double_attendance_across_providers_in_one_form(svc: RunningService) -> None:
    region, year, month = "100000000", 2025, "2025-03"
    a_bin, a_lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    b_bin, b_lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    person, other = new_iin(), new_iin()
    at_a = await _enroll(svc, a_bin, a_lic, region=region, start=date(2025, 1, 1), iin=person)
    at_b = await _enroll(svc, b_bin, b_lic, region=region, start=date(2025, 3, 2), iin=person)
    # another recipient at both, in two forms: home care beside a day in stationary care
    other_a = await _enroll(svc, a_bin, a_lic, region=region, start=date(2025, 1, 1), iin=other)
    await tariff(
        svc, region=region, form="home", rate="3000.00", unit="day", effective_from=date(2024, 1, 1)
    )
    other_b = await _enroll(
        svc, b_bin, b_lic, region=region, start=date(2025, 1, 1), iin=other, form="home"
    )
    await _attend(svc, a_bin, month, {at_a: list(range(1, 11)), other_a: [1, 2, 3]})
    await _attend(svc, b_bin, month, {at_b: [5, 6, 12], other_b: [1, 2, 3]})
    await run(svc, month, region=region)

    a = await invoice_of(svc, a_bin, month)
    b = await invoice_of(svc, b_bin, month)
    # A: 10 dates, 2 of them also at B: held whole (100,000.00); the other recipient's 3 dates
    # pass (another form at B): 30,000.00 payable
    assert _failed(_lines(a)[at_a]) == {"double_attendance": _days(month, [5, 6])}
    assert _lines(a)[at_a]["hold"]["state"] == "held"
    assert _lines(a)[at_a]["hold"]["held_amount"] == "100000.00"
    assert _failed(_lines(a)[other_a]) == {}
    assert _money(a) == ("130000.00", "100000.00", "30000.00")
    # B: the later enrollment of the same IIN in the same form is also a duplicate person
    assert _failed(_lines(b)[at_b]) == {
        "double_attendance": _days(month, [5, 6]),
        "duplicate_person": _days(month, list(range(2, 32))),
    }
    assert _failed(_lines(b)[other_b]) == {}
    assert _money(b) == ("39000.00", "30000.00", "9000.00")
    check = next(c for c in _lines(a)[at_a]["checks"] if c["rule"] == "double_attendance")
    assert check["blocking"] is True
    assert check["detail"] == {"enrollment_ids": [at_b]}
    assert check["title"]["kk"] and check["title"]["ru"]
    passing = next(c for c in _lines(a)[other_a]["checks"] if c["rule"] == "double_attendance")
    assert (passing["passed"], passing["dates"], passing["blocking"]) == (True, [], True)


async def test_over_site_capacity_holds_the_later_enrollments_dates(svc: RunningService) -> None:
    region, year, month = "110000000", 2025, "2025-03"
    # s1 has 2 places; s2 has 10: 12 licensed places, so only the site's rule can find
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 2), ("s2", 10)])
    first = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1))
    second = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 2))
    third = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 3))
    elsewhere = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 4), site="s2")
    await _attend(
        svc,
        bin_,
        month,
        {first: [1, 2, 3, 4], second: [1, 2, 3, 4], third: [3, 4, 5, 6], elsewhere: [3, 4]},
    )
    await run(svc, month, region=region)
    inv = await invoice_of(svc, bin_, month)
    lines = _lines(inv)
    # on the 3rd and 4th three recipients attended s1's 2 places: the latest enrolled is found
    assert _failed(lines[third]) == {"over_site_capacity": _days(month, [3, 4])}
    assert lines[third]["hold"]["held_amount"] == "40000.00"
    assert [_failed(lines[e]) for e in (first, second, elsewhere)] == [{}, {}, {}]
    check = next(c for c in lines[third]["checks"] if c["rule"] == "over_site_capacity")
    assert check["detail"] == {"site_id": "s1", "places": 2}
    assert _money(inv) == ("140000.00", "40000.00", "100000.00")


async def test_over_licensed_places_counts_recipients_paid(svc: RunningService) -> None:
    region, year, month = "150000000", 2025, "2025-03"
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 1), ("s2", 1)])
    first = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1))
    second = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 2), site="s2")
    third = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 3), site="s2")
    # enrolled first but not attended: billed nothing, so not a recipient paid for
    idle = await _enroll(svc, bin_, lic, region=region, start=date(2024, 12, 31))
    await _attend(svc, bin_, month, {first: [1, 2], second: [1, 2], third: [3, 4, 5]})
    await run(svc, month, region=region)
    inv = await invoice_of(svc, bin_, month)
    lines = _lines(inv)
    # 2 licensed places, 3 recipients paid: the latest enrolled is held
    assert _failed(lines[third]) == {"over_licensed_places": _days(month, [3, 4, 5])}
    assert lines[third]["hold"] == {
        "state": "held",
        "held_amount": "30000.00",
        "decided_by": None,
        "decided_at": None,
        "reason": None,
    }
    assert [_failed(lines[e]) for e in (first, second, idle)] == [{}, {}, {}]
    assert lines[idle]["amount"] == "0.00"
    assert _money(inv) == ("70000.00", "30000.00", "40000.00")


async def test_duplicate_person_same_iin_twice_at_one_provider(svc: RunningService) -> None:
    region, year, month = "190000000", 2025, "2025-03"
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    twice = new_iin()
    original = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=twice)
    copy = await _enroll(svc, bin_, lic, region=region, start=date(2025, 3, 3), iin=twice)
    # the same IIN again, after the first enrollment ended: a move, not a duplicate
    moved = new_iin()
    before = started(str(uuid.uuid4()), moved, bin_, lic, date(2025, 1, 1), region=region)
    await feed(svc, before)
    await feed(svc, ended(before, date(2025, 3, 9)))
    after = await _enroll(svc, bin_, lic, region=region, start=date(2025, 3, 10), iin=moved)
    await _attend(
        svc,
        bin_,
        month,
        {original: [1, 2, 3, 4, 5], copy: [10, 11, 12], before.enrollment_id: [8, 9], after: [10]},
    )
    await run(svc, month, region=region)
    inv = await invoice_of(svc, bin_, month)
    lines = _lines(inv)
    assert _failed(lines[copy]) == {"duplicate_person": _days(month, list(range(3, 32)))}
    check = next(c for c in lines[copy]["checks"] if c["rule"] == "duplicate_person")
    assert check["detail"] == {"enrollment_ids": [original], "by": ["iin"]}
    assert [_failed(lines[e]) for e in (original, before.enrollment_id, after)] == [{}, {}, {}]
    assert _money(inv) == ("110000.00", "30000.00", "80000.00")


async def _death(svc: RunningService, iin: str, died_on: date) -> None:
    """A death as registry reports it (death19 fills this table from registry's event)."""
    await svc.pool.execute(
        "INSERT INTO deaths (iin_index, died_on) VALUES ($1, $2)",
        store.cipher().blind_index(iin),
        died_on,
    )


async def _a_day_ago(svc: RunningService) -> None:
    """All the runs read, a day before they ran (beyond months_to_correct's margin)."""
    for table, column in (
        ("attendance", "recorded_at"),
        ("enrollments", "updated_at"),
        ("tariffs", "updated_at"),
        ("license_transitions", "recorded_at"),
    ):
        await svc.pool.execute(
            f"UPDATE {table} SET {column} = {column} - interval '1 day'"  # noqa: S608
        )


async def test_dates_after_death_are_not_paid_and_an_issued_invoice_is_adjusted(
    svc: RunningService,
) -> None:
    region, year = "230000000", 2025
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    late, early, alive, later = new_iin(), new_iin(), new_iin(), new_iin()
    late_e = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=late)
    early_e = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=early)
    alive_e = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=alive)
    later_e = await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=later)
    # home care at 30,000.00 a month: 1,000.00 a date of April's 30 while alive
    await tariff(
        svc,
        region=region,
        form="home",
        rate="30000.00",
        unit="month",
        effective_from=date(2024, 1, 1),
    )
    home = new_iin()
    home_e = await _enroll(
        svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=home, form="home"
    )
    await _attend(svc, bin_, "2025-03", {late_e: list(range(1, 21)), alive_e: [1]})
    march = await run(svc, "2025-03", region=region)
    first = await invoice_of(svc, bin_, "2025-03")
    assert _lines(first)[late_e]["amount"] == "200000.00"
    assert _money(first) == ("210000.00", "0.00", "210000.00")

    # March was invoiced a day ago, with everything it read: only the deaths change it now
    await _a_day_ago(svc)
    # the register reports deaths after March was invoiced: one on 10 March, one on 15 April
    # (and one in home care, paid by the month), and one after April (its dates all paid)
    await _death(svc, late, date(2025, 3, 10))
    await _death(svc, early, date(2025, 4, 15))
    await _death(svc, later, date(2025, 5, 2))
    await _death(svc, home, date(2025, 4, 15))
    await _attend(
        svc,
        bin_,
        "2025-04",
        {
            late_e: [2, 3],
            early_e: list(range(10, 21)),
            alive_e: list(range(1, 21)),
            later_e: [1],
            home_e: [1],
        },
    )
    await run(svc, "2025-04", region=region)
    april = await invoice_of(svc, bin_, "2025-04")
    by_kind = {(line["enrollment_id"], line["kind"]): line for line in april["items"]}
    adjustment = by_kind[late_e, "adjustment"]
    # March again: 10 dates before the death (100,000.00) of 200,000.00 billed
    assert (adjustment["month"], adjustment["amount"], adjustment["computed_amount"]) == (
        "2025-03",
        "-100000.00",
        "100000.00",
    )
    assert adjustment["previously_billed"] == "200000.00"
    assert adjustment["corrects"] == {
        "invoice_id": first["id"],
        "line_no": _lines(first)[late_e]["line_no"],
    }
    assert _failed(adjustment) == {"after_death": _days("2025-03", list(range(11, 21)))}
    # a credit is never held
    assert adjustment["hold"]["state"] == "none"
    # April: nothing after the death is paid; dates before it are, held for review
    assert by_kind[late_e, "regular"]["amount"] == "0.00"
    assert _failed(by_kind[late_e, "regular"]) == {"after_death": _days("2025-04", [2, 3])}
    assert by_kind[late_e, "regular"]["hold"]["state"] == "none"
    early_line = by_kind[early_e, "regular"]
    assert (early_line["amount"], early_line["hold"]["held_amount"]) == ("60000.00", "60000.00")
    assert _failed(early_line) == {"after_death": _days("2025-04", [16, 17, 18, 19, 20])}
    assert _failed(by_kind[later_e, "regular"]) == {}
    assert by_kind[alive_e, "regular"]["amount"] == "200000.00"
    # 15 dates of 30 alive, one attended, no date reported after the death: paid
    assert by_kind[home_e, "regular"]["amount"] == "15000.00"
    assert _failed(by_kind[home_e, "regular"]) == {}
    # -100,000.00 + 0 + 60,000.00 + 200,000.00 + 10,000.00 + 15,000.00
    assert _money(april) == ("185000.00", "60000.00", "125000.00")
    assert march["held"] == "0.00"
    # the issued March invoice is unchanged
    assert _money(await invoice_of(svc, bin_, "2025-03")) == _money(first)


async def test_outside_enrollment_is_advisory_unless_set_blocking(svc: RunningService) -> None:
    region, year = "270000000", 2025
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    e = started(str(uuid.uuid4()), new_iin(), bin_, lic, date(2025, 1, 1), region=region)
    await feed(svc, e)
    await _attend(svc, bin_, "2025-03", {e.enrollment_id: list(range(1, 11))})
    # the enrollment's end arrives late: it ended on 5 March
    await feed(svc, ended(e, date(2025, 3, 5)))
    await run(svc, "2025-03", region=region)
    line = _lines(await invoice_of(svc, bin_, "2025-03"))[e.enrollment_id]
    assert (line["amount"], line["hold"]["state"]) == ("50000.00", "none")
    assert _failed(line) == {"outside_enrollment": _days("2025-03", [6, 7, 8, 9, 10])}
    assert next(c for c in line["checks"] if c["rule"] == "outside_enrollment")["blocking"] is False

    # an office that holds such lines too: the same in April, with no advisory rules
    e2 = started(str(uuid.uuid4()), new_iin(), bin_, lic, date(2025, 1, 1), region=region)
    await feed(svc, e2)
    await _attend(svc, bin_, "2025-04", {e2.enrollment_id: [1, 2, 3, 4]})
    await feed(svc, ended(e2, date(2025, 4, 2)))
    async with svc.pool.acquire() as conn:
        accepted = await service.accept_run(
            conn=conn,
            period="2025-04",
            region=region,
            started_by="dev-admin",
            policy=domain.CheckPolicy(advisory=frozenset()),
        )
    assert (await until_finished(svc, accepted.run.id))["status"] == "completed"
    inv = await invoice_of(svc, bin_, "2025-04")
    line = _lines(inv)[e2.enrollment_id]
    assert (line["amount"], line["hold"]["held_amount"]) == ("20000.00", "20000.00")
    assert _money(inv) == ("20000.00", "20000.00", "0.00")


async def _confirmation(svc: RunningService, enrollment_id: str, month: date, state: str) -> None:
    """A recipient's answer (conf19 fills this table from the confirmation flow)."""
    await svc.pool.execute(
        "INSERT INTO attendance_confirmations (enrollment_id, month, state) VALUES ($1, $2, $3)",
        enrollment_id,
        month,
        state,
    )


@pytest.mark.parametrize(
    ("region", "policy", "unconfirmed_held"),
    [
        ("310000000", domain.CheckPolicy(), "0.00"),
        ("330000000", domain.CheckPolicy(unconfirmed="hold"), "30000.03"),
        # half of 30,000.03 paid, rounded half-up: 15,000.02 paid, 15,000.01 held
        ("350000000", domain.CheckPolicy(unconfirmed="partial"), "15000.01"),
        (
            "390000000",
            domain.CheckPolicy(unconfirmed="partial", unconfirmed_share=Decimal("0.8")),
            "6000.01",
        ),
    ],
)
async def test_confirmations_disputed_held_unconfirmed_per_policy(
    svc: RunningService, region: str, policy: domain.CheckPolicy, unconfirmed_held: str
) -> None:
    year, month = 2025, "2025-03"
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    # 10,000.01 a day: a share of a line leaves a tiyn to round
    await tariff(
        svc,
        region=region,
        form="stationary",
        rate="10000.01",
        unit="day",
        effective_from=date(2025, 1, 1),
    )
    eids = [await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1)) for _ in range(4)]
    disputed, requested, confirmed, not_asked = eids
    await _attend(svc, bin_, month, {e: [1, 2, 3] for e in eids})
    first = date(2025, 3, 1)
    await _confirmation(svc, disputed, first, "disputed")
    await _confirmation(svc, requested, first, "requested")
    await _confirmation(svc, confirmed, first, "confirmed")
    async with svc.pool.acquire() as conn:
        accepted = await service.accept_run(
            conn=conn, period=month, region=region, started_by="dev-admin", policy=policy
        )
    assert (await until_finished(svc, accepted.run.id))["status"] == "completed"
    inv = await invoice_of(svc, bin_, month)
    lines = _lines(inv)
    assert {e: lines[e]["amount"] for e in eids} == dict.fromkeys(eids, "30000.03")
    assert _failed(lines[disputed]) == {"disputed_month": _days(month, [1, 2, 3])}
    assert lines[disputed]["hold"]["held_amount"] == "30000.03"
    assert _failed(lines[requested]) == {"unconfirmed_month": _days(month, [1, 2, 3])}
    assert lines[requested]["hold"]["held_amount"] == unconfirmed_held
    assert lines[requested]["hold"]["state"] == ("none" if unconfirmed_held == "0.00" else "held")
    assert [_failed(lines[e]) for e in (confirmed, not_asked)] == [{}, {}]
    held = Decimal("30000.03") + Decimal(unconfirmed_held)
    assert _money(inv) == ("120000.12", f"{held:.2f}", f"{Decimal('120000.12') - held:.2f}")


def test_the_policy_comes_from_settings() -> None:
    assert Settings().check_policy() == domain.CheckPolicy(unconfirmed="pay")
    policy = Settings(unconfirmed="partial", unconfirmed_share="0.7").check_policy()  # type: ignore[arg-type]
    assert (policy.partial_share(), domain.UNCONFIRMED_MONTH in policy.blocking()) == (
        Decimal("0.7"),
        False,
    )
    assert domain.UNCONFIRMED_MONTH in domain.CheckPolicy(unconfirmed="hold").blocking()
    assert domain.OUTSIDE_ENROLLMENT not in domain.CheckPolicy().blocking()
    with pytest.raises(ValueError, match="disputed month is always held"):
        domain.CheckPolicy(advisory=frozenset({domain.DISPUTED_MONTH}))
    assert domain.held_amount(
        amount=Decimal("30000.03"),
        failed={domain.UNCONFIRMED_MONTH},
        policy=domain.CheckPolicy(unconfirmed="partial"),
    ) == Decimal("15000.01")
    assert domain.held_amount(
        amount=Decimal("-5.00"), failed={domain.AFTER_DEATH}, policy=domain.CheckPolicy()
    ) == Decimal(0)


async def test_a_second_person_releases_or_rejects_a_held_line(svc: RunningService) -> None:
    region, year, month = "430000000", 2025, "2025-03"
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    a, b, c = [await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1)) for _ in "abc"]
    await _attend(svc, bin_, month, {a: [1, 2], b: [1, 2, 3], c: [1]})
    await _confirmation(svc, a, date(2025, 3, 1), "disputed")
    await _confirmation(svc, b, date(2025, 3, 1), "disputed")
    started_run = await run(svc, month, region=region)
    assert (started_run["held"], started_run["held_lines"]) == ("50000.00", 2)
    inv = await invoice_of(svc, bin_, month)
    assert _money(inv) == ("60000.00", "50000.00", "10000.00")
    line_a, line_b, line_c = (_lines(inv)[e]["line_no"] for e in (a, b, c))
    base = f"/v1/invoices/{inv['id']}/lines"

    # approved, the register pays what is payable
    r = await svc.client.post(
        f"/v1/runs/{started_run['id']}/approve", headers=_official(APPROVER, "inspector-4")
    )
    assert r.status_code == 200, r.text
    treasury = {"Authorization": "Bearer ssu-dev-treasury"}

    async def register_amount() -> str:
        r = await svc.client.get(f"/v1/payment-registers/{region}/{month}.csv", headers=treasury)
        assert r.status_code == 200, r.text
        rows = [row.split(",") for row in r.text.strip().splitlines()]
        return rows[1][6]

    assert await register_amount() == "10000.00"
    r = await svc.client.get(
        "/v1/reconciliation-report", headers=treasury, params={"year": year, "region": region}
    )
    period = r.json()["periods"][0]
    assert (period["issued"], period["outstanding"], period["held"]) == (
        "60000.00",
        "10000.00",
        "50000.00",
    )
    r = await svc.client.get("/v1/budgets", headers=ADMIN, params={"year": year})
    budget = next(c for c in r.json()["contracts"] if c["provider_bin"] == bin_)
    assert (budget["invoiced"], budget["held"]) == ("60000.00", "50000.00")

    # the client that ran the run cannot decide (four eyes, a kind of its own, read in Kazakh)
    r = await svc.client.post(
        f"{base}/{line_a}/release",
        headers={**ADMIN, "Accept-Language": "kk"},
        json={"reason": "ok"},
    )
    assert r.status_code == 403, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert {k: r.json()[k] for k in ("type", "title", "detail", "started_by")} == {
        "type": "/problems/run-four-eyes",
        "title": "Төрт көз",
        "detail": "төрт көз: есептеуді бастаған клиент оның ұсталған жолдарын шеше алмайды",
        "started_by": "dev-admin",
    }
    # a reason is required
    r = await svc.client.post(f"{base}/{line_a}/release", headers=APPROVER, json={"reason": ""})
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "reason"
    # a line not held has nothing to decide
    r = await svc.client.post(f"{base}/{line_c}/reject", headers=APPROVER, json={"reason": "x"})
    assert r.status_code == 409, r.text
    assert (r.json()["type"], r.json()["hold"]) == ("/problems/invoice-line-not-held", "none")
    r = await svc.client.post(f"{base}/99/reject", headers=APPROVER, json={"reason": "x"})
    assert r.status_code == 404

    official = _official(APPROVER, "inspector-4")
    reason = "the region called the guardian: attendance confirmed by phone"
    r = await svc.client.post(f"{base}/{line_a}/release", headers=official, json={"reason": reason})
    assert r.status_code == 200, r.text
    assert r.json()["line"]["hold"]["state"] == "released"
    assert r.json()["line"]["hold"]["decided_by"] == "dev-approver/inspector-4"
    assert r.json()["line"]["hold"]["reason"] == reason
    assert _money(r.json()["invoice"]) == ("60000.00", "30000.00", "30000.00")
    assert await register_amount() == "30000.00"
    # decided once
    r = await svc.client.post(
        f"{base}/{line_a}/reject",
        headers={**official, "Accept-Language": "ru"},
        json={"reason": "no"},
    )
    assert r.status_code == 409, r.text
    assert {k: r.json()[k] for k in ("type", "hold", "decided_by")} == {
        "type": "/problems/invoice-line-decided",
        "hold": "released",
        "decided_by": "dev-approver/inspector-4",
    }
    assert r.json()["detail"].startswith(f"по строке {line_a} счёта ")

    r = await svc.client.post(
        f"{base}/{line_b}/reject", headers=official, json={"reason": "not at the centre"}
    )
    assert r.status_code == 200, r.text
    invoice = r.json()["invoice"]
    assert (invoice["total"], invoice["held"], invoice["rejected"], invoice["payable"]) == (
        "60000.00",
        "0.00",
        "30000.00",
        "30000.00",
    )
    assert await register_amount() == "30000.00"
    r = await svc.client.get("/v1/budgets", headers=ADMIN, params={"year": year})
    budget = next(c for c in r.json()["contracts"] if c["provider_bin"] == bin_)
    assert (budget["invoiced"], budget["held"], budget["paid"]) == ("60000.00", "0.00", "0.00")
    r = await svc.client.get(
        "/v1/reconciliation-report", headers=treasury, params={"year": year, "region": region}
    )
    # issued 60,000.00 = paid 0 + outstanding 30,000.00 + held 0 + refused 30,000.00
    period = r.json()["periods"][0]
    assert {k: period[k] for k in ("issued", "paid", "outstanding", "held", "refused")} == {
        "issued": "60000.00",
        "paid": "0.00",
        "outstanding": "30000.00",
        "held": "0.00",
        "refused": "30000.00",
    }

    audit = await svc.pool.fetch(
        "SELECT action, reason, official FROM audit_records"
        " WHERE aggregate_type = 'invoice' AND aggregate_id = $1 AND action LIKE 'invoice_line.%'"
        " ORDER BY id",
        inv["number"],
    )
    assert [(row["action"], row["official"]) for row in audit] == [
        ("invoice_line.released", "inspector-4"),
        ("invoice_line.rejected", "inspector-4"),
    ]
    assert audit[0]["reason"].endswith(reason)
    assert "30000.00 KZT held by disputed_month" in audit[1]["reason"]


def test_the_default_policy_blocks_the_rules_marked_blocking() -> None:
    blocking = {slug for slug, rule in domain.RULES.items() if rule.blocking}
    assert set(domain.CheckPolicy().blocking()) == blocking
    assert blocking == {
        "double_attendance",
        "over_site_capacity",
        "after_death",
        "duplicate_person",
        "over_licensed_places",
        "disputed_month",
    }


async def test_a_rejected_line_is_not_taken_back_by_a_later_adjustment(
    svc: RunningService,
) -> None:
    region, year = "470000000", 2025
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    rejected_iin, released_iin = new_iin(), new_iin()
    rejected = await _enroll(
        svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=rejected_iin
    )
    released = await _enroll(
        svc, bin_, lic, region=region, start=date(2025, 1, 1), iin=released_iin
    )
    await _attend(
        svc, bin_, "2025-03", {rejected: list(range(1, 11)), released: list(range(1, 11))}
    )
    for eid in (rejected, released):
        await _confirmation(svc, eid, date(2025, 3, 1), "disputed")
    await run(svc, "2025-03", region=region)
    march = await invoice_of(svc, bin_, "2025-03")
    base = f"/v1/invoices/{march['id']}/lines"
    for eid, decision in ((rejected, "reject"), (released, "release")):
        r = await svc.client.post(
            f"{base}/{_lines(march)[eid]['line_no']}/{decision}",
            headers=APPROVER,
            json={"reason": "reviewed"},
        )
        assert r.status_code == 200, r.text
    # both die on 5 March, reported after March was invoiced
    await _a_day_ago(svc)
    await _death(svc, rejected_iin, date(2025, 3, 5))
    await _death(svc, released_iin, date(2025, 3, 5))
    await run(svc, "2025-04", region=region)
    april = await invoice_of(svc, bin_, "2025-04")
    adjustments = {
        line["enrollment_id"]: line["amount"]
        for line in april["items"]
        if line["kind"] == "adjustment"
    }
    # the released line paid 10 dates, 5 of them after the death: 50,000.00 back; the rejected
    # one paid nothing, so nothing is taken back
    assert adjustments == {released: "-50000.00"}
    assert _money(april) == ("-50000.00", "0.00", "-50000.00")


async def test_duplicate_person_by_name_and_birth_date_under_two_iins(svc: RunningService) -> None:
    region, year, month = "550000000", 2025, "2025-03"
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    born = date(1950, 5, 17)
    first_iin = make_iin(born, "female", 4801)
    second_iin = make_iin(born, "female", 4802)

    async def enroll_as(iin: str, name: str, start: date, *, guardian: bool = False) -> str:
        addressee = Addressee(name=name, phone="+77011112233", language="kk", is_guardian=guardian)
        e = started(str(uuid.uuid4()), iin, bin_, lic, start, region=region).model_copy(
            update={"addressee": addressee}
        )
        await feed(svc, e)
        return e.enrollment_id

    original = await enroll_as(first_iin, "Сәуле Ахметова", date(2025, 1, 1))
    # the same woman, born the same day, under another IIN (spelt with other case and spaces)
    again = await enroll_as(second_iin, "  СӘУЛЕ   ахметова ", date(2025, 2, 1))
    # a namesake born another day, and one whose guardian shares the name: not the same person
    namesake = await enroll_as(
        make_iin(date(1951, 5, 17), "female", 4803), "Сәуле Ахметова", date(2025, 2, 2)
    )
    guarded = await enroll_as(
        make_iin(born, "female", 4804), "Сәуле Ахметова", date(2025, 2, 3), guardian=True
    )
    await _attend(svc, bin_, month, {e: [1, 2] for e in (original, again, namesake, guarded)})
    await run(svc, month, region=region)
    lines = _lines(await invoice_of(svc, bin_, month))
    assert _failed(lines[again]) == {"duplicate_person": _days(month, list(range(1, 32)))}
    check = next(c for c in lines[again]["checks"] if c["rule"] == "duplicate_person")
    assert check["detail"] == {"enrollment_ids": [original], "by": ["name_and_birth_date"]}
    assert lines[again]["hold"]["held_amount"] == "20000.00"
    assert [_failed(lines[e]) for e in (original, namesake, guarded)] == [{}, {}, {}]


async def test_the_treasury_pays_what_is_payable(svc: RunningService) -> None:
    region, year, month = "590000000", 2025, "2025-03"
    bin_, lic = await _provider(svc, region=region, year=year, sites=[("s1", 50)])
    held, paid = [
        await _enroll(svc, bin_, lic, region=region, start=date(2025, 1, 1)) for _ in "ab"
    ]
    await _attend(svc, bin_, month, {held: [1, 2], paid: [1, 2, 3]})
    await _confirmation(svc, held, date(2025, 3, 1), "disputed")
    started_run = await run(svc, month, region=region)
    r = await svc.client.post(f"/v1/runs/{started_run['id']}/approve", headers=APPROVER)
    assert r.status_code == 200, r.text
    inv = await invoice_of(svc, bin_, month)
    treasury = {"Authorization": "Bearer ssu-dev-treasury"}
    csv_body = f"invoice_number,amount_paid,status,date\n{inv['number']},30000.00,paid,2025-04-10\n"
    r = await svc.client.post(
        f"/v1/payment-registers/{region}/{month}/reconciliation",
        headers={**treasury, "Content-Type": "text/csv"},
        content=csv_body.encode(),
    )
    assert r.status_code == 200, r.text
    # 30,000.00 of 50,000.00 billed is payable while 20,000.00 is held: paid in full
    assert [(a["status"], a["invoice_total"]) for a in r.json()["applied"]] == [
        ("paid", "30000.00")
    ]
    r = await svc.client.get("/v1/budgets", headers=ADMIN, params={"year": year})
    budget = next(c for c in r.json()["contracts"] if c["provider_bin"] == bin_)
    assert (budget["invoiced"], budget["held"], budget["paid"]) == (
        "50000.00",
        "20000.00",
        "30000.00",
    )
    # released, the held 20,000.00 is due: the invoice is paid in part again
    line = _lines(inv)[held]["line_no"]
    r = await svc.client.post(
        f"/v1/invoices/{inv['id']}/lines/{line}/release",
        headers=APPROVER,
        json={"reason": "attendance confirmed at the centre"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["invoice"]["status"], r.json()["invoice"]["payable"]) == (
        "partially_paid",
        "50000.00",
    )
