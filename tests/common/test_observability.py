"""Access lines, uvicorn's lines, metrics collectors and zeroed counters, the event age
histogram, and readiness by role (issue 15)."""

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta

import probe_service
from harness import ADMIN, TcpProxy, eventually, publish_raw, reset_service, running_service
from prometheus_client.parser import text_string_to_metric_families
from ssu_common import configure_logging
from ssu_contracts import make_event
from test_outbox import revoked

GOOD = {"bin": "940140000385", "places": 10}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_each_request_has_one_structured_access_line(capsys) -> None:  # type: ignore[no-untyped-def]
    await reset_service("probe")
    async with running_service(probe_service.build()) as svc:
        configure_logging("probe")
        capsys.readouterr()
        r = await svc.client.post(
            "/v1/things", json=GOOD, headers={**ADMIN, "X-Correlation-ID": "corr-access-1"}
        )
        assert r.status_code == 201
        await svc.client.get("/metrics")  # a scrape is not an access line at INFO
        logging.getLogger("uvicorn.error").info(
            "Started server process [%d]", 42, extra={"color_message": "\x1b[36m42\x1b[0m"}
        )
        lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    access = [line for line in lines if line["event"] == "http.request"]
    assert len(access) == 1, access
    (line,) = access
    assert {k: line[k] for k in ("method", "route", "status", "correlation_id", "client")} == {
        "method": "POST",
        "route": "/v1/things",
        "status": 201,
        "correlation_id": "corr-access-1",
        "client": "dev-admin",
    }
    assert line["duration_ms"] > 0 and line["level"] == "info" and line["service"] == "probe"
    assert "trace_id" in line and "peer" in line
    (started,) = [line for line in lines if line.get("logger") == "uvicorn.error"]
    assert started["event"] == "Started server process [42]"
    assert "color_message" not in started


async def test_collectors_zeroed_counters_and_event_age() -> None:
    await reset_service("probe")
    async with running_service(probe_service.build()) as svc:
        before = samples((await svc.client.get("/metrics")).text)
        event = make_event(revoked(1), source="/ssu/licensing", subject="SSU-63-2026-000001")
        # An event written 90 seconds ago (its time) reaches the consumer now.
        aged = event.model_copy(update={"time": datetime.now(UTC) - timedelta(seconds=90)})
        await publish_raw(aged.to_bytes(), routing_key=aged.type, message_id=aged.id)

        async def handled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            now = samples((await svc.client.get("/metrics")).text)
            key = (
                "ssu_event_age_seconds_count",
                frozenset({("service", "probe"), ("event_type", aged.type)}),
            )
            return now if now.get(key) == 1.0 else None

        after = await eventually(handled, timeout=20)
    names = {name for name, _ in before}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names
    assert "python_gc_collections_total" in names
    svc_label = ("service", "probe")
    for event_type in probe_service.HANDLERS:
        for outcome in ("handled", "duplicate", "retried", "dead_lettered"):
            key = frozenset({svc_label, ("event_type", event_type), ("outcome", outcome)})
            assert before[("ssu_events_total", key)] == 0.0, (event_type, outcome)
    assert before[("ssu_dead_lettered_total", frozenset({svc_label}))] == 0.0
    assert before[("ssu_outbox_published_total", frozenset({svc_label}))] == 0.0
    server_errors = frozenset(
        {svc_label, ("method", "POST"), ("route", "/v1/things"), ("status", "500")}
    )
    assert before[("ssu_http_requests_total", server_errors)] == 0.0
    bucket = frozenset({svc_label, ("event_type", aged.type)})
    assert after[("ssu_event_age_seconds_bucket", bucket | {("le", "60.0")})] == 0.0
    assert after[("ssu_event_age_seconds_bucket", bucket | {("le", "300.0")})] == 1.0
    assert 90 <= after[("ssu_event_age_seconds_sum", bucket)] < 120


async def test_the_api_stays_ready_while_the_broker_is_down() -> None:
    await reset_service("probe")
    proxy = TcpProxy()
    await proxy.start()
    runtime = probe_service.build(amqp_url=proxy.amqp_url, ready_interval_seconds=0.2)
    async with running_service(runtime) as svc:
        ready = await svc.client.get("/health/ready")
        assert (ready.status_code, ready.json()["status"]) == (200, "ok")
        await proxy.cut()

        async def gauge_says_broker_down() -> bool:
            # Nobody calls /health/ready here: the service updates its gauges itself.
            text = (await svc.client.get("/metrics")).text
            return 'ssu_dependency_up{dependency="broker",service="probe"} 0.0' in text

        assert await eventually(gauge_says_broker_down, timeout=15)
        text = (await svc.client.get("/metrics")).text
        assert 'ssu_ready{service="probe"} 1.0' in text
        ready = await svc.client.get("/health/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["checks"] == {"database": "ok", "broker": "unavailable"}
        assert [d.split(":")[0] for d in body["degraded"]] == ["broker"]
        # Reads and writes are answered; the write's events wait in the outbox.
        assert (await svc.client.post("/v1/things", json=GOOD, headers=ADMIN)).status_code == 201
        await proxy.restore()

        async def ok_again() -> bool:
            return (await svc.client.get("/health/ready")).json()["status"] == "ok"

        assert await eventually(ok_again, timeout=30)


async def test_a_process_that_requires_the_broker_is_not_ready_without_it() -> None:
    await reset_service("probe")
    proxy = TcpProxy()
    await proxy.start()
    runtime = probe_service.build(
        amqp_url=proxy.amqp_url, ready_requires=("database", "broker"), ready_interval_seconds=0.2
    )
    async with running_service(runtime) as svc:
        await proxy.cut()
        await asyncio.sleep(0.5)

        async def unready() -> bool:
            return (await svc.client.get("/health/ready")).status_code == 503

        assert await eventually(unready, timeout=15)
        assert (await svc.client.get("/health/ready")).json()["status"] == "unavailable"
        assert 'ssu_ready{service="probe"} 0.0' in (await svc.client.get("/metrics")).text
        await proxy.restore()
