"""Nothing a private person or a shelter needs hidden is on any route that answers without a key.

The world holds a domestic-violence shelter, recipients with their own and their guardians'
phones, emails and IINs, and billing's enrollments (IINs). Every route of every service that
answers without a key is found in the OpenAPI documents (`x-ssu-public` under `/v1`, and every
route outside `/v1`), called with each value its path takes and pages of its lists, and every
answer is searched for the shelter's address, any email, phone or IIN.
"""

import json
import re
from datetime import date
from typing import Any

import httpx
import pytest
from billing_world import attend, enroll, licensed_provider, new_iin
from harness import ADMIN, RunningService
from ssu_contracts import is_valid_iin, make_iin
from test_authz_matrix import declared_scopes

from services import all_services

SHELTER_ADDRESS = "Өскемен, Жасырын көшесі 7"
SHELTER_KATO = "631010000"
HOME_ADDRESS = "Өскемен, Абай даңғылы 10"
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
# Kazakh mobile numbers as people give them (a bare 11-digit number may be a byte count)
PHONE = re.compile(r"\+7[\s-]?\d{3}[\s-]?\d{3}[\s-]?\d{2}[\s-]?\d{2}")
TWELVE_DIGITS = re.compile(r"(?<![\d.])\d{12}(?![\d.])")


def iins_in(text: str) -> list[str]:
    """Twelve-digit numbers that are valid IINs rather than BINs: a BIN's fifth digit is its
    entity type (4, 5 or 6), an IIN's is the tens of the day of birth (0 to 3)."""
    return [n for n in TWELVE_DIGITS.findall(text) if is_valid_iin(n) and n[4] in "0123"]


def application(bin_: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bin": bin_,
        "provider_name": "Мейірім қарттар үйі",
        "legal_form": "ngo",
        "region": "630000000",
        "contact": {"email": "office@meyirim.kz", "phone": "+77232000000", "language": "kk"},
        "subtypes": [{"form": "stationary", "category": "elderly"}],
        "sites": [{"address": HOME_ADDRESS, "kato": "631050000", "places": 20}],
        "staffing": [
            {"role": "social_worker", "fte": "2.00"},
            {"role": "caregiver", "fte": "4.00"},
            {"role": "nurse", "fte": "1.00"},
            {"role": "psychologist", "fte": "1.00"},
            {"role": "gardener", "fte": "0.50"},
            {"role": "janitor", "fte": "1.00"},
            {"role": "tractor_driver", "fte": "1.00"},
            {"role": "bread_cutter", "fte": "0.50"},
        ],
        "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom", "emergency_button"],
        "premises": {"area_m2": "150.00", "step_free_access": True},
    }
    return {**body, **overrides}


async def issue(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/v1/applications", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/applications/{r.json()['id']}/approve",
        headers={**ADMIN, "X-SSU-Official": "licensing-official-01"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    async with all_services(tmp_path_factory.mktemp("keys")) as running:
        lic = running["licensing"].client
        shelter = await issue(
            lic,
            application(
                "940140000385",
                provider_name="Қорған дағдарыс орталығы",
                subtypes=[
                    {"form": "temporary_stay", "category": "domestic_violence"},
                    {"form": "stationary", "category": "elderly"},
                ],
                sites=[
                    {"address": SHELTER_ADDRESS, "kato": SHELTER_KATO, "places": 12},
                    {"address": SHELTER_ADDRESS + "А", "kato": "632030000", "places": 6},
                ],
                # two sites: twice the per-site staff
                staffing=[
                    {"role": s["role"], "fte": f"{2 * float(s['fte']):.2f}"}
                    for s in application("")["staffing"]
                ],
            ),
        )
        home = await issue(lic, application("990140004654"))
        secrets = {SHELTER_ADDRESS, SHELTER_KATO, "632030000"}

        reg = running["registry"].client
        people = []
        for n in range(3):
            iin = make_iin(date(2012, 3, 4 + n), "male", 700 + n)
            guardian_iin = make_iin(date(1984, 1, 9 + n), "female", 800 + n)
            body = {
                "iin": iin,
                "full_name": f"Бала {n}",
                "birth_date": date(2012, 3, 4 + n).isoformat(),
                "category": "domestic_violence",
                "region": "630000000",
                "language": "kk",
                "phone": f"+7701555001{n}",
                "email": f"child{n}@example.kz",
                "guardian": {
                    "name": f"Ана {n}",
                    "phone": f"+7701555002{n}",
                    "email": f"mother{n}@example.kz",
                    "iin": guardian_iin,
                },
            }
            r = await reg.post("/v1/recipients", json=body, headers=ADMIN)
            assert r.status_code == 201, r.text
            people.append(body)
            secrets |= {iin, guardian_iin, body["phone"], body["email"]}
            secrets |= {body["guardian"]["phone"], body["guardian"]["email"]}

        billing = running["billing"]
        bin_, number, _ = await licensed_provider(billing, region="630000000", year=2026)
        billed_iin = new_iin()
        billed = await enroll(
            billing, bin_, number, date(2026, 1, 1), region="630000000", iin=billed_iin
        )
        secrets.add(billed_iin)
        # A month asked of its recipient: the link's page is public to whoever holds the token.
        await attend(billing, bin_, "2026-01", {billed: [5, 6]})
        r = await billing.client.post(
            "/v1/confirmations/requests", headers=ADMIN, json={"month": "2026-01"}
        )
        assert r.status_code == 201, r.text
        asked = await billing.pool.fetchval(
            "SELECT body FROM outbox WHERE event_type = 'billing.confirmation.requested.v1'"
        )
        token = json.loads(asked)["data"]["link"].rsplit("/", 1)[1]
        yield {
            "services": running,
            "shelter": shelter,
            "home": home,
            "secrets": secrets,
            "token": token,
        }


def path_values(world: dict[str, Any]) -> dict[str, list[str]]:
    """Every value a public path parameter can take in this world."""
    return {
        "number": [world["shelter"]["number"], world["home"]["number"]],
        "token": [world["token"]],
        # Every service explains each problem type it answers (ssu_common.errors).
        "slug": ["not-found", "invalid-input", "conflict"],
    }


def open_routes(svc: RunningService) -> list[tuple[str, bool]]:
    """GET routes that answer without a key: public `/v1` ones and everything outside `/v1`;
    each with whether it pages (declares `limit`: an undeclared parameter is a 422)."""
    app = svc.client._transport.app  # type: ignore[attr-defined]
    routes = [
        (path, any(p["name"] == "limit" for p in op.get("parameters", [])))
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
        if method == "get"
        and (op.get("x-ssu-public") or (not path.startswith("/v1/") and not declared_scopes(op)))
    ]
    return [*routes, ("/openapi.json", False), ("/docs", False)]


async def answers(
    client: httpx.AsyncClient, path: str, pages: bool, values: dict[str, list[str]]
) -> list[str]:
    """The bodies a route gives: for each value of its parameters; lists paged through."""
    names = re.findall(r"\{(\w+)\}", path)
    urls = [path]
    for name in names:
        urls = [u.replace(f"{{{name}}}", v) for u in urls for v in values[name]]
    bodies = []
    for url in urls:
        params: dict[str, Any] = {"limit": 1} if pages else {}
        for _ in range(50):
            r = await client.get(url, params=params)
            assert r.status_code == 200, f"{url}: {r.status_code}"
            bodies.append(r.text)
            cursor = r.json().get("next_cursor") if "json" in r.headers["content-type"] else None
            if not cursor:
                break
            params = {"limit": 1, "cursor": cursor}
    return bodies


async def test_no_public_answer_holds_a_shelter_address_a_contact_or_an_iin(
    world: dict[str, Any],
) -> None:
    values = path_values(world)
    leaks: list[str] = []
    walked: list[str] = []
    for name, svc in world["services"].items():
        for path, pages in open_routes(svc):
            walked.append(f"{name} {path}")
            for body in await answers(svc.client, path, pages, values):
                found = [s for s in world["secrets"] if s in body]
                found += EMAIL.findall(body) + PHONE.findall(body) + iins_in(body)
                if found:
                    leaks.append(f"{name} {path}: {sorted(set(found))}")
    assert leaks == []
    assert {
        "licensing /v1/licenses",
        "licensing /v1/licenses/{number}",
        "registry /health/live",
        "billing /metrics",
        "billing /v1/confirmations/by-token/{token}",
    } <= set(walked)


async def test_the_public_registry_shows_the_shelter_and_its_districts(
    world: dict[str, Any],
) -> None:
    """The walk above would pass on an empty answer; the registry does show the shelter."""
    lic = world["services"]["licensing"].client
    r = await lic.get(f"/v1/licenses/{world['shelter']['number']}")
    assert [(s["district"], s["places"], s["address"]) for s in r.json()["sites"]] == [
        ("631000000", 12, None),
        ("632000000", 6, None),
    ]
    r = await lic.get(f"/v1/licenses/{world['home']['number']}")
    assert [s["address"] for s in r.json()["sites"]] == [HOME_ADDRESS]


def test_the_patterns_find_phones_and_tell_iins_from_bins() -> None:
    assert PHONE.findall("+77015550011, +7 701 555 00 11, 76000411436") == [
        "+77015550011",
        "+7 701 555 00 11",
    ]
    assert iins_in("bin 940140000385, iin 791028302728, 061211600012") == [
        "791028302728",
        "061211600012",
    ]
