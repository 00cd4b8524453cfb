"""A client generated from each service's OpenAPI document works (issue 14): openapi-python-client
generates it with no warning, and the licensing → enrollment → billing story runs through the
generated clients only, reading the answers by the generated models' typed attributes.

The four services run as real processes on the real broker (as in tests/e2e/test_story.py); a
provider is licensed after an inspection, registry learns of the license by its event, two
recipients are enrolled, and billing bills last month to the tiyn.
"""

import importlib.util
import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from harness import ADMIN_KEY, ROOT, eventually, processes, reset_service, spawn_service, wait_ready
from schwifty import IBAN
from ssu_contracts import make_bin, make_iin
from standardwebhooks import Webhook

_here = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("generated_clients", _here / "generated_clients.py")
assert _spec is not None and _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)
_spec = importlib.util.spec_from_file_location("ssu_dev_sinks", ROOT / "deploy" / "sinks.py")
assert _spec is not None and _spec.loader is not None
sinks_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sinks_module)

SERVICES = gen.SERVICES
# Warnings the generator may give, exactly, with the reason each is accepted: none.
ALLOWED_WARNINGS: dict[str, list[str]] = {service: [] for service in SERVICES}
# Component schemas of a document that share a title (generated_clients.shared_titles): the
# generator keeps one class of a title and drops every answer that refers to another. Until a
# document gives each its own title (pydantic's -Input/-Output pair of a model used both ways;
# two models named Site), the clients are generated from a copy where these are titled by
# their component names; the test fails when a document's shared titles are not these.
SHARED_TITLES_YET: dict[str, dict[str, list[str]]] = {}
# Operations of the story whose success answer the document leaves untyped (an object with
# no properties, or no schema), read through the parsed value the generator gives
# (`parsed["total"]`): none now. The story fails on an untyped answer not listed, and on a
# listed one that is typed: the list only shrinks.
UNTYPED_YET: set[str] = set()
# Statuses the story meets that the document does not declare (the generated client raises on
# them; listed, they are called with a lenient one and give no parsed answer): none now. The
# test fails on a listed status that is declared.
UNDECLARED_STATUSES: dict[str, int] = {}
# Headers the story must send that the document does not declare as parameters: sent through
# the generated client's own `headers=`. The story fails when one becomes declared.
UNDECLARED_HEADERS: dict[str, str] = {
    "licensing.record_inspection": "X-SSU-Official",
    "licensing.approve_application": "X-SSU-Official",
}

REGION = "630000000"
INSPECTOR = "gen-client-inspector"
DECIDER = "gen-client-decider"
ELDER_IIN = make_iin(date(1951, 6, 3), "male", 21)
GIRL_IIN = make_iin(date(2015, 2, 11), "female", 22)
SECRET = "whsec_" + "Z2VuZXJhdGVkLWNsaWVudC1zZWNyZXQtMDEyMzQ1Njc="


@pytest.fixture(scope="module")
def documents() -> dict[str, dict[str, Any]]:
    return {service: gen.document(service) for service in SERVICES}


@pytest.fixture(scope="module")
def clients(
    documents: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("generated")
    return {
        s: gen.generate_client(
            s, gen.titled_by_name(documents[s], SHARED_TITLES_YET.get(s, {})), root
        )
        for s in SERVICES
    }


def test_each_document_generates_a_client_with_every_operation(
    documents: dict[str, dict[str, Any]], clients: dict[str, Any]
) -> None:
    counts = {}
    for service in SERVICES:
        shared = gen.shared_titles(documents[service])
        assert shared == SHARED_TITLES_YET.get(service, {}), f"update SHARED_TITLES_YET: {service}"
        generated = clients[service]
        assert generated.warnings == ALLOWED_WARNINGS[service], service
        assert sorted(generated.operations) == sorted(gen.operation_ids(documents[service]))
        counts[service] = len(generated.operations)
    print("operations generated:", counts)
    assert all(counts.values())
    listed = UNTYPED_YET | set(UNDECLARED_HEADERS) | set(UNDECLARED_STATUSES)
    assert not {i for i in listed if i.split(".")[0] not in clients}
    assert not {i for i in listed if i not in clients[i.split(".")[0]].operations}
    for operation_id, header in UNDECLARED_HEADERS.items():
        op = gen.operation(documents[operation_id.split(".")[0]], operation_id)
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}
        assert header not in declared, f"{operation_id} declares {header} now: unlist it"
    for operation_id, status in UNDECLARED_STATUSES.items():
        op = gen.operation(documents[operation_id.split(".")[0]], operation_id)
        assert str(status) not in op["responses"], f"{operation_id} declares {status}: unlist it"


def test_a_broken_document_gives_warnings_the_test_fails_on(
    documents: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    broken = json.loads(json.dumps(documents["registry"]))
    del broken["components"]["schemas"]["EnrollmentOut"]
    generated = gen.generate_client("registry", broken, tmp_path, package="ssu_broken_client")
    # The endpoint is still generated, without its answer: only the warning tells.
    assert "registry.enroll" in generated.operations
    assert generated.warnings != ALLOWED_WARNINGS["registry"]
    assert any(
        w.startswith("WARNING parsing POST /v1/enrollments within registry.")
        and w.endswith("response will be omitted from generated client")
        for w in generated.warnings
    ), generated.warnings


@dataclass
class Story:
    """Calls operations through the generated clients and checks what each answer is typed as."""

    clients: dict[str, Any]
    url: dict[str, str]
    untyped_seen: set[str] = field(default_factory=set)
    typed_seen: set[str] = field(default_factory=set)
    undeclared_seen: set[str] = field(default_factory=set)

    def client(self, service: str, *, official: str | None = None, strict: bool = True) -> Any:
        generated = self.clients[service]
        client = generated.client(self.url[service], ADMIN_KEY, strict=strict)
        # An official is named by a header the document does not declare (UNDECLARED_HEADERS).
        return client.with_headers({"X-SSU-Official": official}) if official else client

    async def call(
        self, operation_id: str, *args: Any, expect: int, official: str | None = None, **kw: Any
    ) -> Any:
        """The generated `asyncio_detailed` of the operation; its answer of status `expect`."""
        service = operation_id.split(".")[0]
        module = self.clients[service].op(operation_id)
        undeclared = UNDECLARED_STATUSES.get(operation_id) == expect
        async with self.client(service, official=official, strict=not undeclared) as client:
            response = await module.asyncio_detailed(*args, client=client, **kw)
        assert response.status_code == expect, (operation_id, response.content[:2000])
        if undeclared:
            assert response.parsed is None, f"{operation_id} declares {expect} now: unlist it"
            self.undeclared_seen.add(operation_id)
            return response
        untyped = gen.untyped_parts(response.parsed)
        if operation_id in UNTYPED_YET:
            assert untyped, f"{operation_id} is typed now: remove it from UNTYPED_YET"
            self.untyped_seen.add(operation_id)
        else:
            assert not untyped, (operation_id, untyped)
            self.typed_seen.add(operation_id)
        return response

    def models(self, service: str) -> Any:
        return self.clients[service].models


def last_month() -> date:
    today = datetime.now(ZoneInfo("Asia/Almaty")).date()
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def application(bin_: str, submitted_on: date) -> dict[str, Any]:
    roles = {
        "social_worker": "4.00",
        "caregiver": "8.00",
        "nurse": "2.00",
        "rehabilitation_specialist": "2.00",
        "gardener": "1.00",
        "janitor": "2.00",
        "tractor_driver": "2.00",
        "bread_cutter": "1.00",
    }
    return {
        "bin": bin_,
        "provider_name": "«Шапағат» орталығы",
        "legal_form": "ngo",
        "region": REGION,
        "contact": {"email": "office@shapagat.kz", "phone": "+77232123400", "language": "kk"},
        "subtypes": [
            {"form": "stationary", "category": "elderly"},
            {"form": "semi_stationary", "category": "child_disability"},
        ],
        "sites": [
            {"address": "Өскемен, Абай даңғылы 12", "kato": "631010000", "places": 20},
            {"address": "Өскемен, Ушанов көшесі 7", "kato": "631010000", "places": 15},
        ],
        "staffing": [{"role": r, "fte": f} for r, f in roles.items()],
        "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom"],
        "premises": {"area_m2": "400.00", "step_free_access": True},
        "submitted_on": str(submitted_on),
    }


@pytest.mark.timeout(240)
async def test_the_story_through_generated_clients_only(
    clients: dict[str, Any], tmp_path: Path
) -> None:
    for service in SERVICES:
        await reset_service(service)
    sinks = await sinks_module.start_sinks()
    env = {
        "SSU_SMTP_URL": sinks.smtp_url,
        "SSU_SMS_URL": sinks.sms_url,
        "SSU_NOTIFICATION_ALLOW_LOOPBACK_WEBHOOKS": "true",
    }
    procs = {s: spawn_service(s, log_dir=tmp_path, env=env) for s in SERVICES}
    try:
        with processes(*procs.values()):
            for proc in procs.values():
                await wait_ready(proc)
            story = Story(clients=clients, url={s: p.url for s, p in procs.items()})
            await the_story(story, sinks)
    finally:
        await sinks.stop()
    assert story.untyped_seen == UNTYPED_YET
    assert story.undeclared_seen == set(UNDECLARED_STATUSES)
    print("typed answers read:", sorted(story.typed_seen))


async def the_story(story: Story, sinks: Any) -> None:
    month = last_month()
    days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
    period = month.strftime("%Y-%m")
    licensed_on = month - timedelta(days=30)
    lic, reg, bil, ntf = (story.models(s) for s in SERVICES)

    # 0. An agency subscribes to the license events; a retry under the same key is the same
    # subscription, not a second one.
    key = str(uuid.uuid4())
    subscription = ntf.NewSubscription(
        callback_url=sinks.hook_url("generated"),
        event_types=["licensing.license.issued.v1"],
        secret=SECRET,
    )
    created = await story.call(
        "notification.create_subscription", body=subscription, idempotency_key=key, expect=201
    )
    again = await story.call(
        "notification.create_subscription", body=subscription, idempotency_key=key, expect=201
    )
    assert (again.parsed.id, again.headers["Idempotent-Replayed"]) == (created.parsed.id, "true")
    assert created.parsed.event_types == ["licensing.license.issued.v1"]
    assert created.parsed.secret == SECRET

    # 1. A provider applies (retried under its key: one application), is inspected, approved.
    bin_ = make_bin(date(2015, 3, 1), 7101)
    body = lic.SubmitApplication.from_dict(application(bin_, licensed_on - timedelta(days=7)))
    key = str(uuid.uuid4())
    submitted = await story.call(
        "licensing.submit_application", body=body, idempotency_key=key, expect=201
    )
    replayed = await story.call(
        "licensing.submit_application", body=body, idempotency_key=key, expect=201
    )
    application_id = submitted.parsed.id
    assert (replayed.parsed.id, replayed.headers["Idempotent-Replayed"]) == (
        application_id,
        "true",
    )
    assert submitted.parsed.passes is True
    inspected = await story.call(
        "licensing.record_inspection",
        application_id,
        body=lic.RecordInspection.from_dict(
            {
                "inspected_on": str(licensed_on - timedelta(days=2)),
                "findings": [
                    {"requirement_id": "equipment.fire_alarm", "met": True, "actual": "works"}
                ],
                "notes": "бару хаттамасы / акт выезда",
            }
        ),
        official=INSPECTOR,
        expect=201,
    )
    assert inspected.parsed.application.findings_source == "inspection"
    read = await story.call("licensing.get_application", application_id, expect=200)
    assert [i.inspector for i in read.parsed.inspections] == [f"dev-admin/{INSPECTOR}"]
    approved = await story.call(
        "licensing.approve_application",
        application_id,
        body=lic.EffectiveDate(effective_date=licensed_on),
        if_match=read.headers["ETag"],
        official=DECIDER,
        expect=201,
    )
    number = approved.parsed.number
    assert approved.headers["Location"] == f"/v1/licenses/{number}"
    license_ = await story.call("licensing.get_license", number, expect=200)
    assert (license_.parsed.bin_, license_.parsed.status) == (bin_, "active")

    # 2. Registry learns of the license by its event; two recipients are registered, enrolled.
    async def provider_known() -> Any:
        page = await story.call("registry.list_providers", bin_=bin_, expect=200)
        return page.parsed.items

    [provider] = await eventually(provider_known, timeout=30)
    assert (provider.license_number, provider.status) == (number, "active")
    home = next(s for s in provider.sites if s.places == 20)
    day_centre = next(s for s in provider.sites if s.places == 15)
    elder = reg.RecipientIn.from_dict(
        {
            "iin": ELDER_IIN,
            "full_name": "Жұмабаев Серік",
            "birth_date": "1951-06-03",
            "category": "elderly",
            "region": REGION,
            "language": "kk",
            "phone": "+77051110001",
        }
    )
    girl = reg.RecipientIn.from_dict(
        {
            "iin": GIRL_IIN,
            "full_name": "Нұрланова Айгерім",
            "birth_date": "2015-02-11",
            "category": "child_disability",
            "region": REGION,
            "disability_group": 2,
            "language": "ru",
            "guardian": {"name": "Нұрланова Дина", "phone": "+77019990001"},
        }
    )
    for person in (elder, girl):
        registered = await story.call(
            "registry.register_recipient",
            body=person,
            idempotency_key=str(uuid.uuid4()),
            expect=201,
        )
        assert (registered.parsed.iin, registered.parsed.status) == (person.iin, "registered")
    enrolled = {}
    for iin, site, form, category, start in (
        (ELDER_IIN, home, "stationary", "elderly", month),
        (GIRL_IIN, day_centre, "semi_stationary", "child_disability", month.replace(day=5)),
    ):
        answer = await story.call(
            "registry.enroll",
            body=reg.EnrollmentIn.from_dict(
                {
                    "iin": iin,
                    "provider_bin": bin_,
                    "site_id": site.site_id,
                    "form": form,
                    "category": category,
                    "start_date": str(start),
                }
            ),
            idempotency_key=str(uuid.uuid4()),
            expect=201,
        )
        enrolled[iin] = answer.parsed
    assert {i: (e.status, e.license_number, e.start_date) for i, e in enrolled.items()} == {
        ELDER_IIN: ("active", number, month),
        GIRL_IIN: ("active", number, month.replace(day=5)),
    }

    # 3. Billing: the akimat's tariffs, the provider's contract, the month's attendance.
    for tariff in (
        {"form": "stationary", "category": "elderly", "rate": "12500.00", "unit": "day"},
        {"form": "semi_stationary", "category": "*", "rate": "150000.00", "unit": "month"},
    ):
        await story.call(
            "billing.put_tariff",
            body=bil.TariffIn.from_dict(
                {
                    **tariff,
                    "region": REGION,
                    "effective_from": f"{licensed_on.year}-01-01",
                    "act_reference": "ШҚО әкімдігінің қаулысы №45",
                }
            ),
            expect=201,
        )
    tariffs = await story.call(
        "billing.get_tariffs", region=bil.BillingGetTariffsRegionType0(REGION), expect=200
    )
    assert sorted(t.rate for t in tariffs.parsed.items) == ["12500.00", "150000.00"]
    contract = {
        "number": "ШҚО-GEN-1",
        "provider_bin": bin_,
        "region": REGION,
        "year": month.year,
        "budget": "5000000.00",
        "bank_details": {
            "iik": str(IBAN.generate("KZ", bank_code="601", account_code=f"0{bin_}").compact),
            "bik": "HSBKKZKX",
            "kbk": "123107",
            "knp": "859",
        },
    }
    await story.call(
        "billing.post_contract",
        body=bil.ContractIn.from_dict(contract),
        idempotency_key=str(uuid.uuid4()),
        expect=201,
    )
    # He was away on the 2nd-4th; she came on the 5th-20th.
    elder_days = [month.replace(day=d) for d in range(1, days + 1) if d not in (2, 3, 4)]
    girl_days = [month.replace(day=d) for d in range(5, 21)]
    attendance = bil.AttendanceIn.from_dict(
        {
            "provider_bin": bin_,
            "month": period,
            "enrollments": [
                {"iin": ELDER_IIN, "dates": [str(d) for d in elder_days]},
                {"iin": GIRL_IIN, "dates": [str(d) for d in girl_days]},
            ],
        }
    )

    async def attendance_accepted() -> bool:
        # Billing takes the enrollments from registry's events: until then a day is refused.
        answer = await story.call("billing.post_attendance", body=attendance, expect=200)
        return not answer.parsed.rejected

    assert await eventually(attendance_accepted, timeout=30)

    # 4. The month billed: he per attended day, she the month's tariff prorated over the days
    # she was enrolled.
    expected_elder = Decimal("12500.00") * (days - 3)
    expected_girl = half_up(Decimal("150000.00") * (days - 4) / days)
    # A run is a job: accepted (202, its Location), then polled until it is done.
    accepted = await story.call(
        "billing.post_run",
        body=bil.RunIn(period=period),
        idempotency_key=str(uuid.uuid4()),
        expect=202,
    )
    run_id = accepted.parsed.id
    assert accepted.headers["Location"] == f"/v1/runs/{run_id}"

    async def run_finished() -> Any:
        polled = (await story.call("billing.get_run", run_id, expect=200)).parsed
        return polled if polled.status in ("completed", "failed") else None

    run = await eventually(run_finished, timeout=60)
    assert (run.status, run.phase, run.progress.done, run.progress.total) == (
        "completed",
        "done",
        1,
        1,
    )
    assert (run.invoices, run.lines, Decimal(run.total)) == (1, 2, expected_elder + expected_girl)
    invoices = await story.call("billing.list_invoices", provider=bin_, period=period, expect=200)
    [invoice] = invoices.parsed.items
    assert (Decimal(invoice.total), Decimal(invoice.payable), Decimal(invoice.held)) == (
        expected_elder + expected_girl,
        expected_elder + expected_girl,
        Decimal(0),
    )
    read_invoice = await story.call("billing.get_invoice", invoice.id, expect=200)
    lines = {line.iin: line for line in read_invoice.parsed.items}
    assert {iin: Decimal(line.amount) for iin, line in lines.items()} == {
        ELDER_IIN: expected_elder,
        GIRL_IIN: expected_girl,
    }
    # The days each line could be billed for: enrolled and licensed; he is paid for those he came.
    assert {iin: len(line.eligible_dates) for iin, line in lines.items()} == {
        ELDER_IIN: days,
        GIRL_IIN: days - 4,
    }

    # 5. The agency's subscriber got the license event, signed with the subscription's secret.
    def issued() -> list[dict[str, Any]]:
        return [h for h in sinks.received.hooks if h["name"] == "generated"]

    [hook] = await eventually(issued, timeout=30)
    envelope = Webhook(created.parsed.secret).verify(hook["body"].encode(), hook["headers"])
    assert (envelope["type"], envelope["data"]["license_number"]) == (
        "licensing.license.issued.v1",
        number,
    )
