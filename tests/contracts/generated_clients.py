"""Python clients generated from the services' OpenAPI documents by openapi-python-client, as an
integrating agency would generate them (issue 14), and the few questions a test asks of them."""

import importlib
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
from openapi_python_client import generate
from openapi_python_client.config import Config, ConfigFile, MetaType
from openapi_python_client.strings import PythonIdentifier

SERVICES = ("licensing", "registry", "billing", "notification")
METHODS = ("get", "put", "post", "delete", "patch")
# CSV bodies (imports) and answers (exports, payment registers) are bytes to a client: the
# generator's documented override for a media type it has no model for, instead of skipping
# the endpoint.
CONTENT_TYPE_OVERRIDES = {"text/csv": "application/octet-stream"}


def document(service: str) -> dict[str, Any]:
    """The service's OpenAPI document, as its app serves it at /openapi.json."""
    app = importlib.import_module(f"ssu_{service}.main").build().create_app()
    openapi: dict[str, Any] = app.openapi()
    return openapi


def operation_ids(openapi: dict[str, Any]) -> list[str]:
    return [
        op["operationId"]
        for item in openapi["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]


def operation(openapi: dict[str, Any], operation_id: str) -> dict[str, Any]:
    """The document's description of one operation, by its operationId."""
    [found] = [
        op
        for item in openapi["paths"].values()
        for method, op in item.items()
        if method in METHODS and op["operationId"] == operation_id
    ]
    return dict(found)


def shared_titles(openapi: dict[str, Any]) -> dict[str, list[str]]:
    """Component schemas that share a title, by title: the generator names a model class by
    its title, so it drops all but the first, and with them every answer that refers to one."""
    keys: dict[str, list[str]] = {}
    for key, schema in openapi.get("components", {}).get("schemas", {}).items():
        keys.setdefault(schema.get("title", key), []).append(key)
    return {title: sorted(names) for title, names in sorted(keys.items()) if len(names) > 1}


def titled_by_name(openapi: dict[str, Any], titles: Iterable[str]) -> dict[str, Any]:
    """A copy of the document where the schemas sharing one of `titles` are titled by their
    component names (`AreaPerPlace-Output`), so the generator makes a class of each."""
    copy: dict[str, Any] = json.loads(json.dumps(openapi))
    schemas = copy["components"]["schemas"]
    for names in (v for k, v in shared_titles(openapi).items() if k in set(titles)):
        for name in names:
            schemas[name]["title"] = name
    return copy


@dataclass(frozen=True)
class GeneratedClient:
    service: str
    package: ModuleType
    operations: dict[str, ModuleType]  # by operationId
    warnings: list[str]

    def op(self, operation_id: str) -> ModuleType:
        """The generated module of one operation (`asyncio_detailed`, `asyncio`, ...)."""
        return self.operations[operation_id]

    @property
    def models(self) -> ModuleType:
        return importlib.import_module(f"{self.package.__name__}.models")

    def client(self, base_url: str, token: str, *, strict: bool = True) -> Any:
        """A generated client; a strict one raises on any status its document does not declare."""
        authenticated = self.package.AuthenticatedClient
        return authenticated(base_url=base_url, token=token, raise_on_unexpected_status=strict)


def generate_client(
    service: str, openapi: dict[str, Any], root: Path, *, package: str | None = None
) -> GeneratedClient:
    """Generate the client of one document into `root/<package>` and import it."""
    package = package or f"ssu_{service}_client"
    source = root / f"{package}.openapi.json"
    source.write_text(json.dumps(openapi), encoding="utf-8")
    config = Config.from_sources(
        # No post hooks: the generator would otherwise run ruff over the code it wrote, from
        # PATH; what it generated is what is tested.
        ConfigFile(
            package_name_override=package,
            post_hooks=[],
            content_type_overrides=CONTENT_TYPE_OVERRIDES,
        ),
        MetaType.NONE,
        source,
        "utf-8",
        overwrite=True,
        output_path=root / package,
    )
    errors = generate(config=config)
    warnings = [" ".join(f"{e.header} {e.detail or ''}".split()) for e in errors]
    imported = _import(root, package)
    operations = {}
    # Each operation's module is named as the generator names its function.
    prefix = ConfigFile().field_prefix
    ids = {str(PythonIdentifier(i, prefix=prefix)): i for i in operation_ids(openapi)}
    for path in sorted((root / package / "api").glob("*/*.py")):
        if path.stem in ids:
            operations[ids[path.stem]] = importlib.import_module(
                f"{package}.api.{path.parent.name}.{path.stem}"
            )
    return GeneratedClient(
        service=service, package=imported, operations=operations, warnings=warnings
    )


def _import(root: Path, package: str) -> ModuleType:
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]  # a package of the same name generated earlier, from another doc
    sys.path.insert(0, str(root))
    try:
        return importlib.import_module(package)
    finally:
        sys.path.remove(str(root))


def untyped_parts(value: Any, where: str = "") -> list[str]:
    """Where a parsed answer is an object the document gave no properties: a generated model
    with only `additional_properties`, a plain dict, or `Any` (an answer with no schema)."""
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in untyped_parts(item, f"{where}[{i}]")]
    if isinstance(value, dict):
        return [where or "."]
    if not attrs.has(type(value)):
        return []
    declared = [f.name for f in attrs.fields(type(value)) if f.name != "additional_properties"]
    if not declared:
        return [where or "."]
    return [p for name in declared for p in untyped_parts(getattr(value, name), f"{where}.{name}")]
