"""The operations routes every service answers are documented with what they return (issue 14):
a JSON schema with its properties for health, audit and key rotation, and `/metrics` as the
Prometheus text format, not JSON."""

import importlib
from typing import Any

import pytest

SERVICES = ("licensing", "registry", "billing", "notification", "portal")
RECORD_FIELDS = {
    "id",
    "at",
    "client",
    "official",
    "aggregate_type",
    "aggregate_id",
    "action",
    "reason",
    "correlation_id",
    "causation_id",
    "leaf_index",
    "leaf_hash",
}
# Portal keeps no sealed columns, so it has no key rotation.
ROTATING = ("licensing", "registry", "billing", "notification")


def _document(service: str) -> dict[str, Any]:
    app = importlib.import_module(f"ssu_{service}.main").build().create_app()
    doc: dict[str, Any] = app.openapi()
    return doc


def _schema(doc: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    content = doc["paths"][path][method]["responses"][status]["content"]
    assert list(content) == ["application/json"], content
    ref = content["application/json"]["schema"]["$ref"]
    schema: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


@pytest.fixture(scope="module", params=SERVICES)
def service_doc(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, _document(request.param)


def test_health_is_documented_with_its_properties(service_doc: tuple[str, dict[str, Any]]) -> None:
    _, doc = service_doc
    live = _schema(doc, "/health/live", "get", "200")
    assert live["properties"]["status"]["const"] == "ok"
    ready = _schema(doc, "/health/ready", "get", "200")
    assert set(ready["properties"]) == {"status", "checks", "degraded"}
    assert ready["required"] == ["status", "checks"]
    assert ready["properties"]["status"]["enum"] == ["ok", "degraded", "unavailable"]
    assert all(p.get("description") for p in ready["properties"].values())
    assert ready["examples"][0] == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    # The 503 of an unready process carries the same report, not a problem.
    assert _schema(doc, "/health/ready", "get", "503") == ready


def test_audit_trail_is_documented_with_its_records(
    service_doc: tuple[str, dict[str, Any]],
) -> None:
    _, doc = service_doc
    page = _schema(doc, "/v1/audit", "get", "200")
    assert set(page["properties"]) == {"items", "next_cursor"}
    assert set(page["examples"][0]["items"][0]) == RECORD_FIELDS
    record = doc["components"]["schemas"]["AuditRecordOut"]
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/AuditRecordOut"}
    assert set(record["properties"]) == RECORD_FIELDS
    assert all(p.get("description") for p in record["properties"].values())


def test_key_rotation_is_documented_where_a_service_seals(
    service_doc: tuple[str, dict[str, Any]],
) -> None:
    service, doc = service_doc
    if service not in ROTATING:
        assert "/v1/keys/rotation" not in doc["paths"]
        return
    step = _schema(doc, "/v1/keys/rotation", "post", "200")
    assert set(step["properties"]) == {"key_id", "resealed", "remaining", "done"}
    assert step["properties"]["resealed"]["additionalProperties"] == {"type": "integer"}
    assert step["examples"][0]["done"] is False


def test_metrics_are_documented_as_prometheus_text(
    service_doc: tuple[str, dict[str, Any]],
) -> None:
    _, doc = service_doc
    content = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain; version=0.0.4"]
    assert content["text/plain; version=0.0.4"]["schema"] == {"type": "string"}
    assert content["text/plain; version=0.0.4"]["example"].startswith("# HELP ssu_ready")
