"""Every operation of every service has an operationId a generated client can name a method
by (issue 14): `<service>.<function>`, unique within the service's document."""

import importlib

import pytest

SERVICES = ("licensing", "registry", "billing", "notification", "portal")


@pytest.mark.parametrize("service", SERVICES)
def test_operation_ids_are_service_dot_function_and_unique(service: str) -> None:
    app = importlib.import_module(f"ssu_{service}.main").build().create_app()
    operations = [
        (path, method, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
    ]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids))
    for _path, _method, op in operations:
        prefix, _, function = op["operationId"].partition(".")
        assert prefix == service and function.isidentifier(), op["operationId"]
    if service == "licensing":
        suspend = app.openapi()["paths"]["/v1/licenses/{number}/suspend"]["post"]
        assert suspend["operationId"] == "licensing.suspend_license"
