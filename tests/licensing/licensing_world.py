"""Builds the licensing test world: a running service, valid providers, applications."""

import itertools
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_contracts import make_bin
from ssu_licensing.main import build
from ssu_licensing.settings import Settings

READER = {"Authorization": "Bearer ssu-dev-reader"}
APPROVER = {"Authorization": "Bearer ssu-dev-approver"}
# The admin key used by two officials: one decides, the other inspects (four eyes).
OFFICIAL = {**ADMIN, "X-SSU-Official": "decider-0001"}
INSPECTOR = {**ADMIN, "X-SSU-Official": "inspector-0002"}

_serials = itertools.count(random.randrange(0, 50_000))


def new_bin() -> str:
    """A valid BIN not used before in this run."""
    return make_bin(date(2019, 3, 1), next(_serials))


def almaty_today() -> date:
    return datetime.now(ZoneInfo("Asia/Almaty")).date()


@asynccontextmanager
async def licensing_service(**overrides: Any) -> AsyncIterator[RunningService]:
    """A fresh licensing database and a running service on it."""
    await reset_service("licensing")
    settings = settings_for(Settings, "licensing", **{"suspension_check_seconds": 0.2, **overrides})
    async with running_service(build(settings)) as svc:  # type: ignore[arg-type]
        yield svc


# Staffing of a stationary home for 20 elderly people on one site that meets every 2025.1 norm.
CORE_STAFF = [
    {"role": "social_worker", "fte": "2.00"},
    {"role": "caregiver", "fte": "4.00"},
    {"role": "nurse", "fte": "1.00"},
]
SERVICE_STAFF = [
    {"role": "gardener", "fte": "0.50"},
    {"role": "janitor", "fte": "1.00"},
    {"role": "tractor_driver", "fte": "1.00"},
    {"role": "bread_cutter", "fte": "0.50"},
]


def application(**overrides: Any) -> dict[str, Any]:
    """A stationary home for 20 elderly people in East Kazakhstan meeting every 2025.1 norm."""
    body: dict[str, Any] = {
        "bin": new_bin(),
        "provider_name": "Мейірім қарттар үйі",
        "legal_form": "ngo",
        "region": "630000000",
        "contact": {"email": "office@meyirim.kz", "phone": "+77232000000", "language": "kk"},
        "subtypes": [{"form": "stationary", "category": "elderly"}],
        "sites": [{"address": "Өскемен, Абай даңғылы 10", "kato": "631010000", "places": 20}],
        "staffing": CORE_STAFF + SERVICE_STAFF,
        "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom"],
        "premises": {"area_m2": "150.00", "step_free_access": True},
    }
    body.update(overrides)
    return body


def core_only_application(**overrides: Any) -> dict[str, Any]:
    """Like `application` but without the non-core service staff (gardener and the like)."""
    return application(staffing=list(CORE_STAFF), **overrides)


async def submit(svc: RunningService, body: dict[str, Any]) -> dict[str, Any]:
    r = await svc.client.post("/v1/applications", json=body, headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def issue(svc: RunningService, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """Submit and approve an application; the issued license."""
    app = await submit(svc, body or application())
    r = await svc.client.post(f"/v1/applications/{app['id']}/approve", headers=OFFICIAL)
    assert r.status_code == 201, r.text
    return dict(r.json())


SHELTER_ADDRESS = "Өскемен, Тыныш көшесі 3"


def shelter_application(**overrides: Any) -> dict[str, Any]:
    """A shelter for 12 victims of domestic violence in East Kazakhstan meeting every norm."""
    return application(
        provider_name="Қорған дағдарыс орталығы",
        subtypes=[{"form": "temporary_stay", "category": "domestic_violence"}],
        sites=[{"address": SHELTER_ADDRESS, "kato": "631010000", "places": 12}],
        staffing=[*CORE_STAFF, {"role": "psychologist", "fte": "1.00"}],
        equipment=["first_aid_kit", "fire_alarm", "emergency_button"],
        **overrides,
    )
