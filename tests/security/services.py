"""The four services started in this process on the test databases, for cross-cutting tests."""

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from harness import ROOT, RunningService, reset_service, running_service, settings_for
from ssu_billing.main import build as build_billing
from ssu_billing.settings import Settings as BillingSettings
from ssu_licensing.main import build as build_licensing
from ssu_licensing.settings import Settings as LicensingSettings
from ssu_notification.main import build as build_notification
from ssu_notification.settings import Settings as NotificationSettings
from ssu_registry.main import build as build_registry
from ssu_registry.settings import Settings as RegistrySettings

BUILDERS: dict[str, tuple[Any, Any]] = {
    "licensing": (build_licensing, LicensingSettings),
    "registry": (build_registry, RegistrySettings),
    "billing": (build_billing, BillingSettings),
    "notification": (build_notification, NotificationSettings),
}

NO_SCOPES_KEY = "ssu-test-no-scopes"
OTHER_REGION_KEY = "ssu-test-abai-region"  # every scope, restricted to Abai region
ABAI = "100000000"
ABAI_APPROVER_KEY = "ssu-test-abai-approver"  # the second pair of eyes of Abai region


def keys_file(directory: Path) -> Path:
    """The development keys plus two test clients: one with no scope, one with another region."""
    doc = yaml.safe_load((ROOT / "deploy" / "api-keys.dev.yaml").read_text(encoding="utf-8"))
    every_scope = doc["clients"][0]["scopes"]
    doc["clients"] += [
        {
            "client": "test-no-scopes",
            "scopes": [],
            "key_sha256": hashlib.sha256(NO_SCOPES_KEY.encode()).hexdigest(),
        },
        {
            "client": "test-abai",
            "scopes": every_scope,
            "region": ABAI,
            "key_sha256": hashlib.sha256(OTHER_REGION_KEY.encode()).hexdigest(),
        },
        {
            "client": "test-abai-approver",
            "scopes": ["billing:read", "billing:approve"],
            "region": ABAI,
            "key_sha256": hashlib.sha256(ABAI_APPROVER_KEY.encode()).hexdigest(),
        },
    ]
    path = directory / "api-keys.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@asynccontextmanager
async def all_services(
    directory: Path, **overrides: Any
) -> AsyncIterator[dict[str, RunningService]]:
    keys = keys_file(directory)
    async with AsyncExitStack() as stack:
        running: dict[str, RunningService] = {}
        for name, (build, settings_cls) in BUILDERS.items():
            await reset_service(name)
            settings = settings_for(settings_cls, name, api_keys_file=keys, **overrides)
            running[name] = await stack.enter_async_context(running_service(build(settings)))
        yield running
