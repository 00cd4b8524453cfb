"""Certified social workers (issue 18): named workers with certificates, the requirement kind
`certified_share` judged on the decision date, in approval, amendments and the impact
simulation."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService
from licensing_world import (
    OFFICIAL,
    READER,
    almaty_today,
    application,
    licensing_service,
    submit,
)
from pydantic import ValidationError
from ssu_common import FieldCipher, ServiceKeys, generate_key, load_keys, reseal_batch
from ssu_contracts import RecipientCategory, ServiceForm
from ssu_licensing import domain, store
from ssu_licensing.domain import Profile, RequirementSet, Worker

# The service tests share one loop with the module's service; the pure ones need none.
service_test = pytest.mark.asyncio(loop_scope="session")

ON = date(2026, 3, 1)
DAY = timedelta(days=1)


def share_set(*requirements: dict[str, Any], non_core_blocking: bool = False) -> RequirementSet:
    return RequirementSet.model_validate(
        {
            "version": "t",
            "title": "test",
            "non_core_blocking": non_core_blocking,
            "requirements": [
                {
                    "id": f"r{i}",
                    "kind": "certified_share",
                    "title_kk": "сертификатталған әлеуметтік қызметкерлер",
                    "title_ru": "сертифицированные социальные работники",
                    "core": True,
                    "role": "social_worker",
                    "min_share_percent": "50.00",
                    **r,
                }
                for i, r in enumerate(requirements, 1)
            ],
        }
    )


def staff(fte: str, *workers: Worker) -> Profile:
    return Profile(
        subtypes=[(ServiceForm.STATIONARY, RecipientCategory.ELDERLY)],
        site_places=[20],
        staffing={"social_worker": Decimal(fte)},
        equipment=frozenset(),
        area_m2=Decimal("100.00"),
        step_free_access=True,
        workers=workers,
    )


def worker(fte: str, valid: tuple[date, date] | None, role: str = "social_worker") -> Worker:
    return Worker(
        role=role,
        fte=Decimal(fte),
        certified_from=valid[0] if valid else None,
        certified_until=valid[1] if valid else None,
    )


def judged(p: Profile, **requirement: Any) -> tuple[bool, str, str]:
    [f] = domain.evaluate(share_set(requirement), p, on=ON)
    return f.met, f.expected, f.actual


VALID = (ON - 300 * DAY, ON + 300 * DAY)
EXPIRED = (ON - 700 * DAY, ON - DAY)  # expired the day before the decision
NOT_YET = (ON + DAY, ON + 700 * DAY)  # issued the day after the decision
FROM_TODAY = (ON, ON + 700 * DAY)  # issued on the decision date
UNTIL_TODAY = (ON - 700 * DAY, ON)  # expires on the decision date


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # 2.00 valid; expired, not yet valid and uncertified FTE do not count
        (
            staff(
                "5.00",
                worker("2.00", VALID),
                worker("1.00", EXPIRED),
                worker("1.00", NOT_YET),
                worker("0.50", None),
            ),
            (
                False,
                "social_worker certified >= 50.00 % of FTE",
                "social_worker certified 40.00 % (2.00 of 5.00 FTE)",
            ),
        ),
        # a certificate issued on, or expiring on, the decision date is valid on it
        (
            staff("4.00", worker("1.00", FROM_TODAY), worker("1.00", UNTIL_TODAY)),
            (
                True,
                "social_worker certified >= 50.00 % of FTE",
                "social_worker certified 50.00 % (2.00 of 4.00 FTE)",
            ),
        ),
        # FTE nobody named holds counts as uncertified; 1 of 3 is shown rounded
        (
            staff("3.00", worker("1.00", VALID)),
            (
                False,
                "social_worker certified >= 50.00 % of FTE",
                "social_worker certified 33.33 % (1.00 of 3.00 FTE)",
            ),
        ),
        # certified workers of another role do not count for this one
        (
            staff("2.00", worker("2.00", VALID, role="nurse")),
            (
                False,
                "social_worker certified >= 50.00 % of FTE",
                "social_worker certified 0.00 % (0.00 of 2.00 FTE)",
            ),
        ),
        # no FTE of the role: met (a staff_ratio requirement asks whether there must be some)
        (
            staff("0", worker("1.00", VALID, role="nurse")),
            (True, "social_worker certified >= 50.00 % of FTE", "no social_worker staff"),
        ),
    ],
)
def test_certified_share_counts_the_fte_certified_on_the_decision_date(
    p: Profile, expected: tuple[bool, str, str]
) -> None:
    assert judged(p) == expected


def test_the_same_staff_meets_or_misses_the_share_by_the_date_judged() -> None:
    p = staff("2.00", worker("1.00", (date(2025, 3, 1), date(2026, 2, 28))))
    req = share_set({})
    [before] = domain.evaluate(req, p, on=date(2026, 2, 28))
    [after] = domain.evaluate(req, p, on=date(2026, 3, 1))
    [early] = domain.evaluate(req, p, on=date(2025, 2, 28))
    assert (before.met, before.actual) == (
        True,
        "social_worker certified 50.00 % (1.00 of 2.00 FTE)",
    )
    assert (after.met, after.actual) == (False, "social_worker certified 0.00 % (0.00 of 2.00 FTE)")
    assert (early.met, early.actual) == (False, after.actual)


def test_a_share_requirement_can_be_core_or_not() -> None:
    p = staff("2.00", worker("0.50", VALID))
    lenient = share_set({"core": True}, {"core": False}, non_core_blocking=False)
    strict = share_set({"core": True}, {"core": False}, non_core_blocking=True)
    assert [
        (f.requirement_id, f.kind, f.core, f.blocking, f.met)
        for f in domain.evaluate(lenient, p, on=ON)
    ] == [
        ("r1", "certified_share", True, True, False),
        ("r2", "certified_share", False, False, False),
    ]
    assert [f.blocking for f in domain.evaluate(strict, p, on=ON)] == [True, True]
    only_advice = share_set({"core": False}, non_core_blocking=False)
    assert domain.passes(domain.evaluate(only_advice, p, on=ON))
    assert not domain.passes(domain.evaluate(lenient, p, on=ON))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"min_share_percent": "0"}, "min_share_percent"),
        ({"min_share_percent": "100.01"}, "min_share_percent"),
        ({"min_share_percent": "50.001"}, "min_share_percent"),
        ({"role": "astronaut"}, "role"),
    ],
)
def test_a_share_requirement_refuses_bad_values(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        share_set(change)
    assert field in [str(e["loc"][-1]) for e in info.value.errors()]
    assert share_set({"min_share_percent": "100"}).requirements[0].kind == "certified_share"


# through the service


TODAY = almaty_today()
SET = {
    "version": "cert.1",
    "title": "Сертифицированные социальные работники (2025)",
    "non_core_blocking": False,
    "effective_from": TODAY.isoformat(),
    "requirements": [
        {
            "id": "staff.social_worker.places",
            "kind": "staff_ratio",
            "core": True,
            "role": "social_worker",
            "fte": "1.00",
            "per_places": 10,
            "title_kk": "Әрбір 10 орынға кемінде 1 әлеуметтік қызметкер",
            "title_ru": "Не менее 1 социального работника на каждые 10 мест",
        },
        {
            "id": "cert.social_worker",
            "kind": "certified_share",
            "core": True,
            "role": "social_worker",
            "min_share_percent": "60.00",
            "title_kk": "Әлеуметтік қызметкерлердің кемінде 60 %-ы сертификатталған",
            "title_ru": "Не менее 60 % социальных работников сертифицированы",
        },
        {
            "id": "cert.caregiver",
            "kind": "certified_share",
            "core": False,
            "role": "caregiver",
            "min_share_percent": "50.00",
            "title_kk": "Күтушілердің кемінде 50 %-ы сертификатталған",
            "title_ru": "Не менее 50 % сиделок сертифицированы",
        },
    ],
}
NAME = "Жанар Серікқызы Әбдірахманова"


def certificate(issued_on: date, expires_on: date, number: str = "СР-0001") -> dict[str, Any]:
    return {
        "number": number,
        "issuing_body": "Центр сертификации социальных работников ВКО",
        "issued_on": issued_on.isoformat(),
        "expires_on": expires_on.isoformat(),
    }


def certified_application(first_expires_on: date, **overrides: Any) -> dict[str, Any]:
    """Filed 90 days ago: 3.00 FTE of social workers, 2.50 of them certified until
    `first_expires_on` (1.00) or for years (1.50), 0.50 without a certificate; one caregiver
    certified of 4.00 FTE."""
    since = TODAY - timedelta(days=400)
    body = application(
        submitted_on=(TODAY - timedelta(days=90)).isoformat(),
        staffing=[
            {"role": "social_worker", "fte": "3.00"},
            {"role": "caregiver", "fte": "4.00"},
            {"role": "nurse", "fte": "1.00"},
        ],
        workers=[
            {
                "role": "social_worker",
                "fte": "1.00",
                "full_name": NAME,
                "certificate": certificate(since, first_expires_on),
            },
            {
                "role": "social_worker",
                "fte": "1.50",
                "full_name": "Асқар Болатұлы Нұрланов",
                "certificate": certificate(since, TODAY + timedelta(days=1000), "СР-0002"),
            },
            {"role": "social_worker", "fte": "0.50", "full_name": "Ольга Ивановна Петрова"},
            {
                "role": "caregiver",
                "fte": "1.00",
                "full_name": "Гүлнар Қайратқызы",
                "certificate": certificate(since, TODAY + timedelta(days=1000), "СР-0003"),
            },
        ],
    )
    body.update(overrides)
    return body


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc():  # type: ignore[no-untyped-def]
    async with licensing_service() as running:
        r = await running.client.post("/v1/requirement-sets", json=SET, headers=ADMIN)
        assert (r.status_code, r.json()["status"]) == (201, "in_force"), r.text
        yield running


def by_id(findings: list[dict[str, Any]]) -> dict[str, tuple[bool, bool, str]]:
    return {f["requirement_id"]: (f["met"], f["blocking"], f["actual"]) for f in findings}


async def approve(svc: RunningService, app_id: str, effective_date: date | None = None) -> Any:
    body = {"effective_date": effective_date.isoformat()} if effective_date else None
    return await svc.client.post(f"/v1/applications/{app_id}/approve", json=body, headers=OFFICIAL)


@service_test
async def test_a_license_is_judged_on_its_issue_date(svc: RunningService) -> None:
    expires = TODAY - timedelta(days=30)
    app = await submit(svc, certified_application(expires))
    # At filing (90 days ago) every certificate was valid: 2.50 of 3.00 FTE.
    assert app["requirement_set"] == "cert.1"
    assert by_id(app["findings"]) == {
        "staff.social_worker.places": (True, True, "social_worker 3.00 FTE"),
        "cert.social_worker": (True, True, "social_worker certified 83.33 % (2.50 of 3.00 FTE)"),
        "cert.caregiver": (False, False, "caregiver certified 25.00 % (1.00 of 4.00 FTE)"),
    }
    # Issued today, the first certificate has expired: 1.50 of 3.00 is under 60 %.
    r = await approve(svc, app["id"])
    assert r.status_code == 409, r.text
    assert [(f["requirement_id"], f["expected"], f["actual"]) for f in r.json()["unmet"]] == [
        (
            "cert.social_worker",
            "social_worker certified >= 60.00 % of FTE",
            "social_worker certified 50.00 % (1.50 of 3.00 FTE)",
        )
    ]
    # Issued by an order dated 31 days ago, the day before it expired: issued. The non-core
    # caregivers' share is a finding that does not block (the set's policy).
    r = await approve(svc, app["id"], TODAY - timedelta(days=31))
    assert r.status_code == 201, r.text
    assert r.json()["issued_on"] == (TODAY - timedelta(days=31)).isoformat()
    stored = (await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)).json()
    assert by_id(stored["findings"])["cert.social_worker"] == (
        True,
        True,
        "social_worker certified 83.33 % (2.50 of 3.00 FTE)",
    )
    assert stored["status"] == "approved"


@service_test
async def test_workers_are_sealed_at_rest_and_kept_out_of_logs_and_trail(
    svc: RunningService, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    app = await submit(svc, certified_application(TODAY + timedelta(days=100)))
    r = await approve(svc, app["id"])
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    # The application shows its workers to a reader.
    shown = (await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)).json()
    assert [(w["full_name"], w["fte"]) for w in shown["workers"]][:1] == [(NAME, "1.00")]
    assert shown["workers"][0]["certificate"] == certificate(
        TODAY - timedelta(days=400), TODAY + timedelta(days=100)
    )
    # At rest they are one sealed token (the name's bytes nowhere in it), as the contact is.
    stored = await svc.pool.fetchval("SELECT workers FROM applications WHERE id = $1", app["id"])
    licensed = await svc.pool.fetchval("SELECT workers FROM licenses WHERE number = $1", number)
    for token in (stored, licensed):
        assert isinstance(token, bytes)
        assert token[:1] == b"\x01"
        assert NAME.encode() not in token
        assert "СР-0001".encode() not in token
    trail = await svc.client.get("/v1/decisions", params={"subject": f"license:{number}"})
    assert trail.status_code == 401  # the trail needs a key; with one it has no names either
    trail = await svc.client.get(
        "/v1/decisions", params={"subject": f"application:{app['id']}"}, headers=READER
    )
    assert trail.status_code == 200
    assert NAME not in trail.text
    assert NAME not in capsys.readouterr().out
    # The public registry shows no staff at all.
    public = (await svc.client.get(f"/v1/licenses/{number}")).json()
    assert "workers" not in public


@service_test
async def test_an_expired_certificate_is_a_finding_at_the_next_amendment(
    svc: RunningService,
) -> None:
    # Issued 60 days ago with every certificate valid; the first one expired yesterday.
    app = await submit(svc, certified_application(TODAY - timedelta(days=1)))
    r = await approve(svc, app["id"], TODAY - timedelta(days=60))
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    issued = await svc.pool.fetchrow(
        "SELECT requirement_set, findings, findings_on FROM licenses WHERE number = $1", number
    )
    assert (issued["requirement_set"], issued["findings_on"]) == (
        "cert.1",
        TODAY - timedelta(days=60),
    )
    # The amendment (a branch of 5 places: 25 places, 3.00 FTE still enough) is judged today.
    r = await svc.client.post(
        f"/v1/licenses/{number}/sites",
        json={"address": "Өскемен, Гагарин 7", "kato": "631010000", "places": 5},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    amended = r.json()
    assert (amended["requirement_set"], amended["findings_on"]) == ("cert.1", TODAY.isoformat())
    assert by_id(amended["findings"]) == {
        "staff.social_worker.places": (True, True, "social_worker 3.00 FTE"),
        "cert.social_worker": (False, True, "social_worker certified 50.00 % (1.50 of 3.00 FTE)"),
        "cert.caregiver": (False, False, "caregiver certified 25.00 % (1.00 of 4.00 FTE)"),
    }
    assert (amended["passes"], amended["unmet_blocking"]) == (False, ["cert.social_worker"])
    # The amendment stands (the branch exists); the finding is the department's to act on.
    assert (amended["status"], amended["seq"], len(amended["sites"])) == ("active", 2, 2)
    kept = await svc.pool.fetchrow(
        "SELECT findings, findings_on FROM licenses WHERE number = $1", number
    )
    assert kept["findings_on"] == TODAY
    trail = await svc.client.get(
        "/v1/decisions",
        params={"subject": f"license:{number}", "action": "license.amended"},
        headers=READER,
    )
    [decision] = trail.json()["items"]
    assert by_id(decision["detail"]["findings"]) == by_id(amended["findings"])


@service_test
async def test_a_certificate_expiring_on_the_amendment_date_still_counts(
    svc: RunningService,
) -> None:
    app = await submit(svc, certified_application(TODAY))
    r = await approve(svc, app["id"], TODAY - timedelta(days=60))
    assert r.status_code == 201, r.text
    r = await svc.client.post(
        f"/v1/licenses/{r.json()['number']}/sites",
        json={"address": "Өскемен, Гагарин 9", "kato": "631010000", "places": 5},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    assert by_id(r.json()["findings"])["cert.social_worker"] == (
        True,
        True,
        "social_worker certified 83.33 % (2.50 of 3.00 FTE)",
    )
    assert (r.json()["passes"], r.json()["unmet_blocking"]) == (True, [])


@service_test
async def test_staffing_without_workers_stays_valid_and_counts_as_uncertified(
    svc: RunningService,
) -> None:
    app = await submit(
        svc,
        application(
            staffing=[
                {"role": "social_worker", "fte": "2.00"},
                {"role": "caregiver", "fte": "4.00"},
            ]
        ),
    )
    assert app["workers"] == []
    assert by_id(app["findings"])["cert.social_worker"] == (
        False,
        True,
        "social_worker certified 0.00 % (0.00 of 2.00 FTE)",
    )
    assert app["unmet_blocking"] == ["cert.social_worker"]


def _one_worker(**change: Any) -> dict[str, Any]:
    w = {
        "role": "social_worker",
        "fte": "1.00",
        "full_name": NAME,
        "certificate": certificate(date(2025, 3, 1), date(2030, 3, 1)),
    }
    w.update(change)
    return w


@service_test
@pytest.mark.parametrize(
    ("workers", "field"),
    [
        (
            [_one_worker(certificate=certificate(date(2025, 3, 1), date(2025, 3, 1)))],
            "workers.0.certificate.expires_on",
        ),
        (
            [_one_worker(certificate=certificate(date(2025, 3, 1), date(2025, 2, 1)))],
            "workers.0.certificate.expires_on",
        ),
        ([_one_worker(fte="0")], "workers.0.fte"),
        ([_one_worker(fte="0.555")], "workers.0.fte"),
        ([_one_worker(role="astronaut")], "workers.0.role"),
        ([_one_worker(full_name="")], "workers.0.full_name"),
        ([_one_worker(certificate={"number": "1"})], "workers.0.certificate.issuing_body"),
        # a role the staffing table has no FTE of (it has social_worker 2.00, caregiver 4.00, ...)
        ([_one_worker(role="psychologist")], "workers.0.role"),
        # named workers hold more FTE than the table declares: the one crossing it is named
        ([_one_worker(), _one_worker(fte="1.50")], "workers.1.fte"),
    ],
)
async def test_bad_workers_are_422_problems_naming_the_field(
    svc: RunningService, workers: list[dict[str, Any]], field: str
) -> None:
    r = await svc.client.post("/v1/applications", json=application(workers=workers), headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in [e["field"] for e in r.json()["errors"]], r.json()


@service_test
async def test_the_messages_of_the_staffing_checks(svc: RunningService) -> None:
    r = await svc.client.post(
        "/v1/applications",
        json=application(workers=[_one_worker(), _one_worker(fte="1.50")]),
        headers=ADMIN,
    )
    assert r.json()["errors"] == [
        {
            "field": "workers.1.fte",
            "message": "the workers named as social_worker hold 2.50 FTE, more than the 2.00 FTE"
            " of the staffing table",
        }
    ]
    r = await svc.client.post(
        "/v1/applications",
        json=application(
            workers=[_one_worker(certificate=certificate(date(2025, 3, 1), date(2025, 3, 1)))]
        ),
        headers=ADMIN,
    )
    [error] = r.json()["errors"]
    assert (error["field"], error["message"]) == (
        "workers.0.certificate.expires_on",
        "Value error, must be after issued_on (2025-03-01)",
    )


@service_test
async def test_the_impact_simulation_reports_the_share(svc: RunningService) -> None:
    app = await submit(svc, certified_application(TODAY + timedelta(days=10)))
    r = await approve(svc, app["id"])
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    pending = await submit(svc, certified_application(TODAY - timedelta(days=1)))
    draft = {
        "version": "cert.2",
        "title": "90 % сертифицированы",
        "non_core_blocking": True,
        "requirements": [
            {
                "id": "cert.social_worker.90",
                "kind": "certified_share",
                "core": True,
                "role": "social_worker",
                "min_share_percent": "90",
                "title_kk": "Әлеуметтік қызметкерлердің кемінде 90 %-ы сертификатталған",
                "title_ru": "Не менее 90 % социальных работников сертифицированы",
            }
        ],
    }
    r = await svc.client.post("/v1/requirement-sets", json=draft, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await svc.client.post("/v1/requirement-sets/cert.2/impact", headers=ADMIN)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["version"], report["in_force"]) == ("cert.2", "cert.1")
    licensee = next(row for row in report["licensees"] if row["key"] == number)
    assert (licensee["passes_in_force"], licensee["passes_simulated"]) == (True, False)
    assert licensee["unmet_blocking_in_force"] == []
    assert licensee["unmet_blocking_simulated"] == ["cert.social_worker.90"]
    assert licensee["unmet_simulated"] == [
        {
            "requirement_id": "cert.social_worker.90",
            "kind": "certified_share",
            "blocking": True,
            "expected": "social_worker certified >= 90.00 % of FTE",
            "actual": "social_worker certified 83.33 % (2.50 of 3.00 FTE)",
        }
    ]
    # A pending application whose certificate expired yesterday: judged today, under both.
    row = next(row for row in report["applications"] if row["key"] == pending["id"])
    assert row["unmet_blocking_in_force"] == ["cert.social_worker"]
    assert row["unmet_simulated"] == [
        {
            "requirement_id": "cert.social_worker.90",
            "kind": "certified_share",
            "blocking": True,
            "expected": "social_worker certified >= 90.00 % of FTE",
            "actual": "social_worker certified 50.00 % (1.50 of 3.00 FTE)",
        }
    ]


async def _reseal_all(svc: RunningService, cipher: FieldCipher) -> None:
    for table in store.SEALED:
        while True:
            async with svc.pool.acquire() as conn, conn.transaction():
                step = await reseal_batch(conn, cipher, table, batch=500)
            if step.remaining == 0:
                break


@service_test
async def test_a_key_rotation_reseals_the_workers(svc: RunningService) -> None:
    app = await submit(svc, certified_application(TODAY + timedelta(days=100)))
    settings = svc.runtime.settings
    keys = load_keys(service="licensing", keys_file=settings.keys_file, keys_json=settings.keys)
    both = {**keys.data_keys, "rotated": generate_key()}
    rotated = FieldCipher(ServiceKeys(current="rotated", data_keys=both, index_key=keys.index_key))
    await _reseal_all(svc, rotated)
    token = await svc.pool.fetchval("SELECT workers FROM applications WHERE id = $1", app["id"])
    try:
        assert FieldCipher.key_id_of(token) == "rotated"
        opened = rotated.open(token, column="workers")
        assert opened is not None and NAME in opened
    finally:
        # Back under the service's own key, which the running service holds.
        back = ServiceKeys(current=keys.current, data_keys=both, index_key=keys.index_key)
        await _reseal_all(svc, FieldCipher(back))
    shown = (await svc.client.get(f"/v1/applications/{app['id']}", headers=READER)).json()
    assert shown["workers"][0]["full_name"] == NAME


def _renewed_workers(first: dict[str, Any]) -> list[dict[str, Any]]:
    body = certified_application(TODAY - timedelta(days=1))
    return [first, *body["workers"][1:]]


@service_test
async def test_a_renewed_certificate_is_declared_by_a_staffing_amendment(
    svc: RunningService,
) -> None:
    app = await submit(svc, certified_application(TODAY - timedelta(days=1)))
    r = await approve(svc, app["id"], TODAY - timedelta(days=60))
    assert r.status_code == 201, r.text
    number = r.json()["number"]
    renewed = {
        "role": "social_worker",
        "fte": "1.00",
        "full_name": NAME,
        "certificate": certificate(TODAY - timedelta(days=5), TODAY + timedelta(days=1000)),
    }
    staffing = certified_application(TODAY)["staffing"]
    r = await svc.client.post(
        f"/v1/licenses/{number}/staffing",
        json={"staffing": staffing, "workers": _renewed_workers(renewed)},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text
    amended = r.json()
    assert (amended["seq"], amended["findings_on"], amended["passes"]) == (
        2,
        TODAY.isoformat(),
        True,
    )
    assert by_id(amended["findings"])["cert.social_worker"] == (
        True,
        True,
        "social_worker certified 83.33 % (2.50 of 3.00 FTE)",
    )
    trail = await svc.client.get(
        "/v1/decisions",
        params={"subject": f"license:{number}", "action": "license.amended"},
        headers=READER,
    )
    [decision] = trail.json()["items"]
    assert (decision["before"]["workers_named"], decision["before"]["workers_certified"]) == (4, 2)
    assert (decision["after"]["workers_named"], decision["after"]["workers_certified"]) == (4, 3)
    assert decision["after"]["staffing"] == staffing
    assert NAME not in trail.text
    # Without the certified worker the share falls under 60 %: an unmet blocking finding.
    r = await svc.client.post(
        f"/v1/licenses/{number}/staffing",
        json={"staffing": staffing, "workers": _renewed_workers(renewed)[1:]},
        headers=OFFICIAL,
    )
    assert (r.status_code, r.json()["seq"], r.json()["unmet_blocking"]) == (
        200,
        3,
        ["cert.social_worker"],
    )


@service_test
async def test_a_staffing_amendment_is_checked_like_an_application(svc: RunningService) -> None:
    r = await approve(svc, (await submit(svc, certified_application(TODAY)))["id"])
    number = r.json()["number"]
    staffing = [{"role": "social_worker", "fte": "1.00"}]
    two = [_one_worker(), _one_worker(fte="0.50")]
    cases = [
        ({"staffing": staffing, "workers": two}, "workers.1.fte"),
        ({"staffing": staffing, "workers": [_one_worker(role="nurse")]}, "workers.0.role"),
        ({"staffing": staffing, "workers": [_one_worker(full_name="")]}, "workers.0.full_name"),
    ]
    for body, field in cases:
        r = await svc.client.post(f"/v1/licenses/{number}/staffing", json=body, headers=OFFICIAL)
        assert (r.status_code, [e["field"] for e in r.json()["errors"]]) == (422, [field])
    r = await svc.client.post(
        f"/v1/licenses/{number}/revoke", json={"reason": "closed"}, headers=OFFICIAL
    )
    assert r.status_code == 200
    r = await svc.client.post(
        f"/v1/licenses/{number}/staffing", json={"staffing": staffing}, headers=OFFICIAL
    )
    assert (r.status_code, r.json()["current_status"]) == (409, "revoked")
    r = await svc.client.post(
        f"/v1/licenses/{number}/staffing", json={"staffing": staffing}, headers=ADMIN
    )
    assert r.json()["errors"][0]["field"] == "header.X-SSU-Official"
