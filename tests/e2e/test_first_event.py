"""The first event through everything: the four services as real processes on the real broker.

A provider applies and is approved in licensing; the `licensing.license.issued.v1` event it
publishes through the outbox reaches registry (provider in its read model), billing (provider
kept for billing) and notification (a delivery for the provider).
"""

from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest
from harness import (
    ADMIN,
    event_probe,
    eventually,
    find_pii,
    processes,
    reset_service,
    spawn_service,
    test_dsn,
    wait_ready,
)
from ssu_contracts import make_bin

SERVICES = ("licensing", "registry", "billing", "notification")


def application(bin_: str) -> dict[str, object]:
    return {
        "bin": bin_,
        "provider_name": "Мейірім қарттар үйі",
        "legal_form": "ngo",
        "region": "630000000",
        "contact": {"email": "office@meyirim.kz", "phone": "+77232000000", "language": "kk"},
        "subtypes": [{"form": "stationary", "category": "elderly"}],
        "sites": [{"address": "Өскемен, Абай даңғылы 10", "kato": "631010000", "places": 20}],
        "staffing": [
            {"role": "social_worker", "fte": "2.00"},
            {"role": "caregiver", "fte": "4.00"},
            {"role": "nurse", "fte": "1.00"},
            {"role": "gardener", "fte": "0.50"},
            {"role": "janitor", "fte": "1.00"},
            {"role": "tractor_driver", "fte": "1.00"},
            {"role": "bread_cutter", "fte": "0.50"},
        ],
        "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom"],
        "premises": {"area_m2": "150.00", "step_free_access": True},
    }


@pytest.mark.timeout(180)
async def test_license_issued_reaches_every_service(tmp_path: Path) -> None:
    for service in SERVICES:
        await reset_service(service)
    procs = {s: spawn_service(s, log_dir=tmp_path) for s in SERVICES}
    with processes(*procs.values()):
        for proc in procs.values():
            await wait_ready(proc)
        bin_ = make_bin(date(2021, 6, 1), 4242)
        async with (
            event_probe("licensing.license.issued.v1") as probe,
            httpx.AsyncClient(headers=ADMIN, timeout=10) as http,
        ):
            lic = procs["licensing"].url
            r = await http.post(f"{lic}/v1/applications", json=application(bin_))
            assert r.status_code == 201, r.text
            r = await http.post(
                f"{lic}/v1/applications/{r.json()['id']}/approve",
                headers={"X-SSU-Official": "licensing-head-01"},
            )
            assert r.status_code == 201, r.text
            number = r.json()["number"]
            assert number.startswith("SSU-63-")

            issued = await probe.wait_for(lambda e: e["data"]["license_number"] == number)
            assert issued["source"] == "/ssu/licensing"
            assert issued["data"]["bin"] == bin_

            async def in_registry() -> list[dict[str, object]]:
                r = await http.get(
                    f"{procs['registry'].url}/v1/providers", params={"region": "630000000"}
                )
                return [p for p in r.json()["items"] if p["bin"] == bin_]

            provider = (await eventually(in_registry, timeout=20))[0]
            assert provider["license_number"] == number
            assert provider["status"] == "active"
            assert provider["sites"][0]["places"] == 20

            async def in_billing() -> bool:
                conn = await asyncpg.connect(test_dsn("billing"))
                try:
                    return bool(
                        await conn.fetchval("SELECT count(*) FROM providers WHERE bin = $1", bin_)
                    )
                finally:
                    await conn.close()

            assert await eventually(in_billing, timeout=20)

            async def delivered() -> list[dict[str, object]]:
                r = await http.get(
                    f"{procs['notification'].url}/v1/deliveries",
                    params={"event_id": issued["id"]},
                )
                return list(r.json()["items"])

            deliveries = await eventually(delivered, timeout=20)
            assert {d["audience"] for d in deliveries} >= {"provider"}
            assert all(d["event_type"] == "licensing.license.issued.v1" for d in deliveries)
    # The provider's email and phone went through every service: no log shows them whole.
    for proc in procs.values():
        text = proc.log_path.read_text(encoding="utf-8")
        assert "office@meyirim.kz" not in text
        assert find_pii(text) == [], proc.service
