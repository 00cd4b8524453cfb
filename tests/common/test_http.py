"""The HTTP factory: API keys and scopes, problem details naming the field, health, metrics."""

import re

import probe_service
import pytest
from harness import ADMIN, reset_service, running_service

READER = {"Authorization": "Bearer ssu-dev-reader"}
GOOD = {"bin": "940140000385", "places": 10}


@pytest.fixture(scope="module")
async def svc():  # type: ignore[no-untyped-def]
    await reset_service("probe")
    async with running_service(probe_service.build()) as running:
        yield running


async def test_request_without_key_is_401_problem(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post("/v1/things", json=GOOD)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["status"] == 401


async def test_unknown_key_is_401(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post("/v1/things", json=GOOD, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json()["detail"] == "the API key is not known"


async def test_key_without_scope_is_403_naming_it(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post("/v1/things", json=GOOD, headers=READER)
    assert r.status_code == 403
    body = r.json()
    assert body["required_scopes"] == ["licensing:write"]
    assert "licensing:write" in body["detail"]


async def test_bad_body_is_422_naming_the_field(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post(
        "/v1/things", json={"bin": "940140000386", "places": 1}, headers=ADMIN
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert [e["field"] for e in body["errors"]] == ["bin"]
    assert body["detail"].startswith("bin: ")


async def test_malformed_json_is_422_not_500(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post(
        "/v1/things", content=b"{", headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["type"] == "json_invalid"


async def test_domain_problem_carries_its_members(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post("/v1/things", json={**GOOD, "places": 101}, headers=ADMIN)
    assert r.status_code == 409
    assert r.json() == {
        "type": "/problems/conflict",
        "title": "Conflicts with the current state",
        "status": 409,
        "detail": "too many places",
        "instance": "/v1/things",
        "current_places": 100,
    }


async def test_allowed_request_names_the_client(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.post("/v1/things", json=GOOD, headers=ADMIN)
    assert r.status_code == 201
    assert r.json() == {"bin": "940140000385", "client": "dev-admin"}
    assert r.headers["x-correlation-id"]


async def test_unknown_route_is_404_problem(svc) -> None:  # type: ignore[no-untyped-def]
    r = await svc.client.get("/v1/nowhere")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/problem+json"


async def test_health_and_metrics(svc) -> None:  # type: ignore[no-untyped-def]
    assert (await svc.client.get("/health/live")).json() == {"status": "ok"}
    ready = await svc.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
    await svc.client.post("/v1/things", json=GOOD, headers=ADMIN)
    await svc.pool.execute("INSERT INTO things VALUES ('a', 'blue'), ('b', 'blue'), ('c', 'red')")
    text = (await svc.client.get("/metrics")).text
    assert 'ssu_probe_things{note="blue",service="probe"} 2.0' in text
    assert 'ssu_probe_things{note="red",service="probe"} 1.0' in text
    assert 'ssu_outbox_pending{service="probe"} 0.0' in text
    assert 'ssu_dlq_messages{service="probe"}' in text
    assert (
        'ssu_http_requests_total{method="POST",route="/v1/things",service="probe",status="201"}'
        in text
    )


async def test_unknown_http_methods_are_one_metrics_label(svc) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        r = await svc.client.request(f"BREW{n}", "/v1/things", headers=ADMIN)
        assert r.status_code == 405
    text = (await svc.client.get("/metrics")).text
    assert "BREW" not in text
    assert (
        'ssu_http_requests_total{method="other",route="/v1/things",service="probe",status="405"}'
        " 5.0" in text
    )


async def test_body_over_the_limit_is_413_problem(svc) -> None:  # type: ignore[no-untyped-def]
    big = b'{"bin": "940140000385", "places": 1, "pad": "' + b"x" * 1_048_576 + b'"}'
    r = await svc.client.post(
        "/v1/things", content=big, headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["limit"] == 1_048_576


async def test_streamed_body_over_the_limit_is_413(svc) -> None:  # type: ignore[no-untyped-def]
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(20):
            yield b"x" * 100_000

    r = await svc.client.post(
        "/v1/things", content=chunks(), headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 413


async def test_scope_alternatives_accept_either(svc) -> None:  # type: ignore[no-untyped-def]
    approver = {"Authorization": "Bearer ssu-dev-approver"}
    assert (await svc.client.get("/v1/things", headers=approver)).json() == {
        "client": "dev-approver"
    }
    r = await svc.client.get("/v1/things", headers=READER)
    assert r.status_code == 403
    assert r.json()["required_scopes"] == ["registry:write|billing:approve"]


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/v1/things", b'{"bin": "940140000385", "places": 1, "x": "a\\u0000b"}', "body"),
        ("/v1/things?note=%00", b'{"bin": "940140000385", "places": 1}', "query"),
    ],
)
async def test_nul_characters_are_422_before_reaching_the_database(  # type: ignore[no-untyped-def]
    svc, url: str, body: bytes, field: str
) -> None:
    r = await svc.client.post(
        url, content=body, headers={**ADMIN, "content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["errors"] == [{"field": field, "message": "NUL characters are not accepted"}]


async def test_openapi_documents_errors_as_problem_details(svc) -> None:  # type: ignore[no-untyped-def]
    doc = (await svc.client.get("/openapi.json")).json()
    responses = doc["paths"]["/v1/things"]["post"]["responses"]
    body = responses["422"]["content"]["application/problem+json"]
    assert list(responses["422"]["content"]) == ["application/problem+json"]
    assert body["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert {e["value"]["type"] for e in body["examples"].values()} == {"/problems/invalid-input"}
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_api_pages_load_only_from_the_service(svc, page: str) -> None:  # type: ignore[no-untyped-def]
    """Swagger UI and ReDoc work on a closed network: every asset the page names is served here."""

    r = await svc.client.get(page)
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *["']([^"']+)["']""", r.text)
    assets = [u for pair in urls for u in pair if u and not u.startswith("#")]
    assert assets, r.text
    assert all(u.startswith("/") for u in assets), assets
    for url in assets:
        got = await svc.client.get(url)
        assert got.status_code == 200, url
        assert len(got.content) > 0
