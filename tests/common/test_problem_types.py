"""One domain-error vocabulary (issue 14), through a real service (registry): each refusal has
a stable problem type that the service explains at `/problems/<slug>` in kk and ru; `detail`
follows `Accept-Language`; a consumer dead-letters or retries by the kind."""

from collections.abc import AsyncIterator
from datetime import date

import pytest
import pytest_asyncio
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_common.consumer import _permanent
from ssu_common.errors import GENERAL, DomainError, Texts, language_of
from ssu_contracts import make_iin
from ssu_registry import domain
from ssu_registry.main import build
from ssu_registry.settings import Settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("registry")
    async with running_service(build(settings_for(Settings, "registry"))) as running:
        iin = make_iin(date(1950, 1, 2), "female", 501)
        r = await running.client.post(
            "/v1/recipients",
            json={
                "iin": iin,
                "full_name": "Айгерим Сейтқали",
                "birth_date": "1950-01-02",
                "category": "elderly",
                "region": "630000000",
                "language": "kk",
            },
            headers=ADMIN,
        )
        assert r.status_code == 201, r.text
        running.runtime.test_iin = iin  # type: ignore[attr-defined]
        yield running


@pytest.mark.parametrize(
    ("language", "title", "detail"),
    [
        ("en", "No waiting line for this form", "the form home takes no place at a site"),
        ("ru", "Для этой формы нет очереди", "эта форма услуги не занимает места"),
        ("kk", "Бұл нысанға кезек жоқ", "бұл қызмет нысаны орын алмайды"),
    ],
)
async def test_a_refusal_has_its_type_and_reads_in_the_language_asked(
    svc: RunningService, language: str, title: str, detail: str
) -> None:
    iin = svc.runtime.test_iin  # type: ignore[attr-defined]
    r = await svc.client.post(
        "/v1/waiting",
        json={"iin": iin, "form": "home"},
        headers={**ADMIN, "Accept-Language": f"{language}, en;q=0.5"},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert (body["type"], body["title"], r.headers["content-language"]) == (
        "/problems/no-waiting-line",
        title,
        language,
    )
    assert body["detail"].startswith(detail)
    assert body["errors"] == [{"field": "form", "message": body["detail"]}]


async def test_a_refusal_without_its_own_kind_has_the_general_one(svc: RunningService) -> None:
    r = await svc.client.get(
        "/v1/enrollments/6f1b3f2e-0000-4000-8000-000000000000",
        headers={**ADMIN, "Accept-Language": "ru-RU"},
    )
    assert r.status_code == 404
    assert (r.json()["type"], r.json()["title"]) == ("/problems/not-found", "Не найдено")


async def test_each_type_is_explained_on_its_page(svc: RunningService) -> None:
    r = await svc.client.get("/problems/no-free-places")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert domain.NO_FREE_PLACES.explanation.kk in r.text.replace("&#x27;", "'")
    assert "Нет свободных мест" in r.text and 'lang="ru"' in r.text
    index = await svc.client.get("/problems")
    for slug in ("no-free-places", "offer-closed", "not-found", "invalid-input"):
        assert f'href="/problems/{slug}"' in index.text
    missing = await svc.client.get("/problems/no-such-thing")
    assert missing.status_code == 404 and missing.json()["type"] == "/problems/not-found"


def test_a_consumer_disposes_of_a_refusal_by_its_kind() -> None:
    assert _permanent(DomainError(Texts("x", "x", "x"), kind=domain.ALREADY_WAITING)) is True
    assert _permanent(DomainError("busy", kind=domain.NO_FREE_PLACES)) is False
    assert _permanent(DomainError("?", kind=GENERAL[503])) is False


def test_accept_language_picks_the_first_language_we_speak() -> None:
    assert language_of("de-DE, ru;q=0.8, kk;q=0.9") == "kk"
    assert language_of("ru-KZ") == "ru"
    assert language_of("fr") == "en"
    assert language_of(None) == "en"


def test_the_document_names_every_problem_type_an_operation_answers() -> None:
    """A generated client's reader sees which refusals an operation has, by type, beside the
    general ones every keyed operation has (401, 403) and every named resource (404)."""
    responses = build().create_app().openapi()["paths"]["/v1/enrollments"]["post"]["responses"]
    examples = {
        status: sorted(r["content"]["application/problem+json"]["examples"])
        for status, r in responses.items()
        if status.startswith("4")
    }
    assert examples == {
        "401": ["unauthorized"],
        "403": ["forbidden"],
        "409": ["license-not-active", "no-free-places"],
        "412": ["precondition-failed"],
        "422": ["invalid-input"],
    }
    offer = build().create_app().openapi()["paths"]["/v1/offers/{offer_id}/accept"]["post"]
    assert sorted(offer["responses"]["404"]["content"]["application/problem+json"]["examples"])
    # Accepting an offer enrolls: the enrollment's refusals answer it too.
    assert offer["responses"]["409"]["content"]["application/problem+json"]["examples"].keys() == {
        "offer-closed",
        "license-not-active",
        "no-free-places",
    }
