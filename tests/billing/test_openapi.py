"""Billing's OpenAPI is a contract a generated client can use (issue 14): every success answer
has a schema with properties, the payment register is documented as CSV, and the domain
refusals are kinds of their own, declared on the routes that answer them."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from billing_world import bank_details, licensed_provider
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from pydantic import BaseModel
from ssu_billing import api, domain
from ssu_billing.main import build
from ssu_billing.settings import Settings
from ssu_common.errors import KINDS

# the runs are turned into a job elsewhere; the rest is the common kit's (health, audit, keys)
NOT_BILLING = {
    "/v1/runs",
    "/v1/runs/{run_id}",
    "/v1/runs/{run_id}/approve",
    "/v1/audit",
    "/v1/keys/rotation",
}
REGISTER = "/v1/payment-registers/{region}/{period}.csv"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    async with running_service(build(settings_for(Settings, "billing"))) as running:  # type: ignore[arg-type]
        yield running


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return build().create_app().openapi()


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _billing_successes(document: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", path, status, response)
        for path, item in document["paths"].items()
        if path.startswith("/v1/") and path not in NOT_BILLING
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status.startswith("2") and status != "204"
    ]


def test_every_billing_success_documents_a_schema_with_properties(
    openapi: dict[str, Any],
) -> None:
    successes = _billing_successes(openapi)
    assert len(successes) == 23
    for name, path, status, response in successes:
        if path == REGISTER:
            continue
        (media_type,) = response["content"]
        assert media_type == "application/json", name
        schema = _resolve(openapi, response["content"][media_type]["schema"])
        assert schema.get("type") == "object" and schema["properties"], (name, status)


def test_the_payment_register_is_documented_as_csv(openapi: dict[str, Any]) -> None:
    answer = openapi["paths"][REGISTER]["get"]["responses"]["200"]
    assert list(answer["content"]) == ["text/csv"]
    assert answer["content"]["text/csv"]["schema"] == {"type": "string"}
    assert answer["content"]["text/csv"]["example"].startswith("invoice_number,contract_number,")


def test_csv_uploads_document_their_body(openapi: dict[str, Any]) -> None:
    for path in ("/v1/attendance/import", "/v1/payment-registers/{region}/{period}/reconciliation"):
        body = openapi["paths"][path]["post"]["requestBody"]
        assert body == {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}


def test_a_tariff_documents_both_its_answers(openapi: dict[str, Any]) -> None:
    responses = openapi["paths"]["/v1/tariffs"]["put"]["responses"]
    for status in ("200", "201"):
        assert responses[status]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/TariffOut"
        }
    assert openapi["components"]["schemas"]["TariffOut"]["examples"][0]["rate"] == "4500.00"


def test_money_is_a_two_decimal_string(openapi: dict[str, Any]) -> None:
    total = openapi["components"]["schemas"]["InvoiceOut"]["properties"]["total"]
    assert total == {
        "title": "Total",
        "type": "string",
        "pattern": r"^-?[0-9]+\.[0-9]{2}$",
        "examples": ["125000.00"],
    }


EXAMPLED = [
    model
    for model in vars(api).values()
    if isinstance(model, type)
    and issubclass(model, BaseModel)
    and "examples" in (model.model_config.get("json_schema_extra") or {})
]


def test_the_main_answers_have_examples() -> None:
    assert {m.__name__ for m in EXAMPLED} == {
        "LicenseOut",
        "EnrollmentOut",
        "TariffOut",
        "ContractWithBankDetailsOut",
        "BudgetsOut",
        "AttendanceImportOut",
        "InvoiceOut",
        "ReconciliationOut",
        "ConfirmationOut",
    }


@pytest.mark.parametrize("model", EXAMPLED, ids=lambda m: m.__name__)
def test_each_example_is_an_answer_of_its_schema(model: type[BaseModel]) -> None:
    [example] = model.model_json_schema(mode="serialization")["examples"]
    assert model.model_validate(example).model_dump(mode="json", by_alias=True) == example


@pytest.mark.parametrize(
    ("path", "method", "status", "slugs"),
    [
        ("/v1/contracts", "post", "409", {"contract-exists"}),
        (
            "/v1/invoices/{invoice_id}/lines/{line_no}/release",
            "post",
            "409",
            {"invoice-line-not-held", "invoice-line-decided"},
        ),
        ("/v1/invoices/{invoice_id}/lines/{line_no}/reject", "post", "403", {"run-four-eyes"}),
        ("/v1/attendance/{enrollment_id}/{day}", "delete", "409", {"attendance-invoiced"}),
        ("/v1/attendance/import", "post", "403", {"not-the-keys-bin"}),
        ("/v1/invoices/{invoice_id}/correction", "post", "409", {"payment-not-rejected"}),
        (
            "/v1/payment-registers/{region}/{period}/reconciliation",
            "post",
            "422",
            {"treasury-file-overpays"},
        ),
        ("/v1/confirmations/answer", "post", "410", {"confirmation-expired"}),
        ("/v1/confirmations/answer", "post", "429", {"confirmation-locked"}),
        ("/v1/runs", "post", "403", {"run-other-region"}),
        ("/v1/runs", "post", "409", {"month-billed-nationally", "months-out-of-order"}),
        ("/v1/runs/{run_id}/approve", "post", "403", {"run-four-eyes"}),
        ("/v1/runs/{run_id}/approve", "post", "409", {"run-not-completed"}),
    ],
)
def test_routes_declare_the_kinds_they_refuse_with(
    openapi: dict[str, Any], path: str, method: str, status: str, slugs: set[str]
) -> None:
    content = openapi["paths"][path][method]["responses"][status]["content"]
    examples = content["application/problem+json"]["examples"]
    assert set(examples) == slugs
    for slug in slugs:
        assert examples[slug]["value"]["type"] == f"/problems/{slug}"


def test_billing_kinds_are_registered_with_three_languages() -> None:
    kinds = [value for value in vars(domain).values() if value in KINDS.values()]
    assert len(kinds) == 16
    for kind in kinds:
        assert KINDS[kind.slug] is kind
        for texts in (kind.title, kind.explanation):
            assert len({texts.en, texts.kk, texts.ru}) == 3, kind.slug


async def test_a_second_contract_is_refused_by_its_kind_in_kazakh(svc: RunningService) -> None:
    bin_, _, contract = await licensed_provider(svc, region="310000000", year=2026)
    body = {
        "number": contract,
        "provider_bin": bin_,
        "region": "310000000",
        "year": 2026,
        "budget": "1000000.00",
        "bank_details": bank_details(bin_),
    }
    again = await svc.client.post(
        "/v1/contracts", headers={**ADMIN, "Accept-Language": "kk"}, json=body
    )
    assert again.status_code == 409, again.text
    assert again.headers["content-language"] == "kk"
    assert again.json() == {
        "type": "/problems/contract-exists",
        "title": "Шарт бар",
        "status": 409,
        "detail": "осы нөмірмен немесе осы жеткізуші, өңір мен жылға шарт бар",
        "instance": "/v1/contracts",
        "contract_number": contract,
    }
    page = await svc.client.get("/problems/contract-exists", headers={"Accept-Language": "kk"})
    assert page.status_code == 200, page.text
    assert "Шарт бар" in page.text
