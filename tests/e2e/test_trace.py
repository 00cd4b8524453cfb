"""One trace from a suspension to the SMS it causes (issue 15).

Licensing, registry and notification run as real processes on the real broker and export their
spans over OTLP/HTTP to the development sink, which also plays the SMS gateway. An inspector's
suspension (one HTTP call to licensing) must show up as one trace: the request, licensing's
outbox publish, registry's receive and processing, registry's outbox publish, notification's
receive and processing, and the SMS gateway call, whose request carries the same trace id.
"""

import importlib.util
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from harness import (
    ADMIN,
    ROOT,
    eventually,
    find_pii,
    processes,
    reset_service,
    spawn_service,
    test_dsn,
    wait_ready,
)
from ssu_contracts import make_bin, make_iin

_spec = importlib.util.spec_from_file_location("ssu_dev_sinks", ROOT / "deploy" / "sinks.py")
assert _spec is not None and _spec.loader is not None
sinks_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sinks_module)

SERVICES = ("licensing", "registry", "notification")
REGION = "630000000"

# The path from the SMS gateway call up to the inspector's request: (service, kind, name).
EXPECTED_CHAIN = [
    ("licensing", "SPAN_KIND_SERVER", "POST /v1/licenses/{number}/suspend"),
    ("licensing", "SPAN_KIND_PRODUCER", "ssu.events,licensing.license.suspended.v1 send"),
    ("registry", "SPAN_KIND_CONSUMER", "ssu.events receive"),
    ("registry", "SPAN_KIND_CONSUMER", "licensing.license.suspended.v1 process"),
    ("registry", "SPAN_KIND_PRODUCER", "ssu.events,registry.enrollment.disrupted.v1 send"),
    ("notification", "SPAN_KIND_CONSUMER", "ssu.events receive"),
    ("notification", "SPAN_KIND_CONSUMER", "registry.enrollment.disrupted.v1 process"),
    ("notification", "SPAN_KIND_CLIENT", "sms delivery"),
    ("notification", "SPAN_KIND_CLIENT", "POST"),
]


OFFICIAL = {"X-SSU-Official": "trace-licensing-head"}  # who decides in licensing


def application(bin_: str) -> dict[str, Any]:
    return {
        "bin": bin_,
        "provider_name": "«Балапан» күндізгі орталығы",
        "legal_form": "ngo",
        "region": REGION,
        "contact": {"email": "office@balapan.kz", "phone": "+77232000001", "language": "kk"},
        "subtypes": [{"form": "semi_stationary", "category": "child_disability"}],
        "sites": [{"address": "Өскемен, Абай даңғылы 12", "kato": "631010000", "places": 15}],
        "staffing": [
            {"role": "social_worker", "fte": "2.00"},
            {"role": "caregiver", "fte": "4.00"},
            {"role": "nurse", "fte": "1.00"},
            {"role": "rehabilitation_specialist", "fte": "1.00"},
            {"role": "gardener", "fte": "0.50"},
            {"role": "janitor", "fte": "1.00"},
            {"role": "tractor_driver", "fte": "1.00"},
            {"role": "bread_cutter", "fte": "0.50"},
        ],
        "equipment": ["first_aid_kit", "fire_alarm", "adapted_bathroom"],
        "premises": {"area_m2": "150.00", "step_free_access": True},
    }


def chain_to_root(spans: list[dict[str, Any]], leaf: dict[str, Any]) -> list[dict[str, Any]]:
    by_id = {s["span_id"]: s for s in spans}
    chain = [leaf]
    while chain[-1]["parent_span_id"] is not None:
        parent = by_id.get(chain[-1]["parent_span_id"])
        assert parent is not None, f"the parent of {chain[-1]['name']} is not in the trace"
        chain.append(parent)
    return list(reversed(chain))


def span_list(spans: list[dict[str, Any]]) -> str:
    """The trace as a person reads it: indented by depth, in start order, with offsets."""
    by_id = {s["span_id"]: s for s in spans}
    start = min(s["start_unix_nano"] for s in spans)

    def depth(span: dict[str, Any]) -> int:
        d = 0
        while span["parent_span_id"] in by_id:
            span, d = by_id[span["parent_span_id"]], d + 1
        return d

    lines = []
    for s in sorted(spans, key=lambda s: s["start_unix_nano"]):
        offset = (s["start_unix_nano"] - start) / 1e6
        kind = s["kind"].removeprefix("SPAN_KIND_").lower()
        lines.append(
            f"{offset:9.1f} ms {s['duration_ms']:8.1f} ms  {s['service']:<13}"
            f"{'  ' * depth(s)}{s['name']} [{kind}]"
        )
    return "\n".join(lines)


@pytest.mark.timeout(240)
async def test_a_suspension_is_one_trace_from_the_request_to_the_sms(tmp_path: Path) -> None:
    for service in SERVICES:
        await reset_service(service)
    sinks = await sinks_module.start_sinks()
    env = {
        "SSU_SMTP_URL": sinks.smtp_url,
        "SSU_SMS_URL": sinks.sms_url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": sinks.otlp_endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    procs = {s: spawn_service(s, log_dir=tmp_path, env=env) for s in SERVICES}
    try:
        with processes(*procs.values()):
            for proc in procs.values():
                await wait_ready(proc)
            url = {s: p.url for s, p in procs.items()}
            async with httpx.AsyncClient(headers=ADMIN, timeout=30) as http:
                await suspension_story(http, url, sinks)
    finally:
        await sinks.stop()


async def suspension_story(http: httpx.AsyncClient, url: dict[str, str], sinks: Any) -> None:
    lic, reg = url["licensing"], url["registry"]
    today = datetime.now(ZoneInfo("Asia/Almaty")).date()
    bin_ = make_bin(date(2016, 4, 1), 7301)
    filed = {"submitted_on": str(today - timedelta(days=40))}
    r = await http.post(f"{lic}/v1/applications", json={**application(bin_), **filed})
    assert r.status_code == 201, r.text
    r = await http.post(
        f"{lic}/v1/applications/{r.json()['id']}/approve",
        json={"effective_date": str(today - timedelta(days=30))},
        headers=OFFICIAL,
    )
    assert r.status_code == 201, r.text
    number = r.json()["number"]

    async def provider() -> dict[str, Any] | None:
        r = await http.get(f"{reg}/v1/providers", params={"region": REGION})
        return next((p for p in r.json()["items"] if p["bin"] == bin_), None)

    site = (await eventually(provider, timeout=30))["sites"][0]
    girl = {
        "iin": make_iin(date(2016, 9, 2), "female", 31),
        "full_name": "Сейітова Аружан",
        "birth_date": "2016-09-02",
        "category": "child_disability",
        "region": REGION,
        "disability_group": 2,
        "language": "kk",
        "guardian": {"name": "Сейітова Гүлмира", "phone": "+77019998871"},
    }
    r = await http.post(f"{reg}/v1/recipients", json=girl)
    assert r.status_code == 201, r.text
    # A read whose path holds the IIN: its server span must not carry it out of the process.
    r = await http.get(f"{reg}/v1/recipients/{girl['iin']}")
    assert r.status_code == 200, r.text
    r = await http.post(
        f"{reg}/v1/enrollments",
        json={
            "iin": girl["iin"],
            "provider_bin": bin_,
            "site_id": site["site_id"],
            "form": "semi_stationary",
            "category": "child_disability",
            "start_date": str(today - timedelta(days=10)),
        },
    )
    assert r.status_code == 201, r.text
    guardian = girl["guardian"]["phone"]
    # The guardian is told of the enrollment first; that SMS belongs to another trace.
    enrolled_sms = await eventually(lambda: _sms_to(sinks, guardian, after=0), timeout=30)
    before = len(sinks.received.sms)

    r = await http.post(
        f"{lic}/v1/licenses/{number}/suspend",
        json={"reason": "Өрт қауіпсіздігі / пожарная безопасность", "effective_date": str(today)},
        headers=OFFICIAL,
    )
    assert r.status_code == 200, r.text
    sms = await eventually(lambda: _sms_to(sinks, guardian, after=before), timeout=30)
    traceparent = sms["traceparent"]
    assert traceparent, "the SMS gateway call carried no traceparent"
    _, trace_id, gateway_parent, _ = traceparent.split("-")
    # The enrollment's own request started the trace of the first SMS.
    assert enrolled_sms["traceparent"].split("-")[1] != trace_id

    async def whole_trace() -> list[dict[str, Any]] | None:
        spans = sinks.received.traces.get(trace_id, [])
        ids = {s["span_id"] for s in spans}
        # Complete once the gateway call's span and every parent named in the trace arrived.
        complete = gateway_parent in ids and all(
            s["parent_span_id"] is None or s["parent_span_id"] in ids for s in spans
        )
        return spans if complete else None

    spans = await eventually(whole_trace, timeout=30)
    print(f"\ntrace {trace_id}: {len(spans)} spans\n{span_list(spans)}")

    assert {s["service"] for s in spans} == set(SERVICES)
    (root,) = [s for s in spans if s["parent_span_id"] is None]
    assert (root["service"], root["name"]) == (
        "licensing",
        "POST /v1/licenses/{number}/suspend",
    )
    # The outbox row and the CloudEvents envelope carry the request span's traceparent.
    conn = await asyncpg.connect(test_dsn("licensing"))
    try:
        row = await conn.fetchrow(
            "SELECT traceparent, body FROM outbox WHERE event_type = $1",
            "licensing.license.suspended.v1",
        )
    finally:
        await conn.close()
    assert row is not None
    assert row["traceparent"].split("-")[1:3] == [trace_id, root["span_id"]]
    assert json.loads(row["body"])["traceparent"] == row["traceparent"]
    gateway_call = next(s for s in spans if s["span_id"] == gateway_parent)
    chain = chain_to_root(spans, gateway_call)
    assert [(s["service"], s["kind"], s["name"]) for s in chain] == EXPECTED_CHAIN
    starts = [s["start_unix_nano"] for s in chain]
    assert starts == sorted(starts), "a span starts before the span that caused it"
    assert gateway_call["attributes"].get("http.response.status_code", 202) == 202
    # The database work of each step is in the trace, under the step that did it.
    queries = {s["service"] for s in spans if "db.system" in s["attributes"]}
    assert queries == set(SERVICES)

    # Nothing that left the services names a person: no IIN, phone or email in any span.
    everything = [s for trace in sinks.received.traces.values() for s in trace]
    recipient_read = [s for s in everything if s["name"] == "GET /v1/recipients/{iin}"]
    assert recipient_read, "the recipient read was not traced"
    assert find_pii(json.dumps(everything, ensure_ascii=False)) == []


async def _sms_to(sinks: Any, phone: str, *, after: int) -> dict[str, Any] | None:
    return next((m for m in sinks.received.sms[after:] if m["phone"] == phone), None)
