"""Unit tests of the alert rules with `promtool test rules` (issue 15).

Each case gives input series, the moment an alert must fire with which labels, and a moment it
must stay quiet (before its `for`, or on healthy input). The promtool test file is written from
these cases; the expected annotations are the rules' own templates rendered here for the case's
labels and value, so a template naming a label the alert does not carry fails too.
Every alert must have a case, and every alert a runbook. promtool comes from Debian's
`prometheus` package (`make test` and `.ci/run` install it): a missing promtool is a failure,
not a skip.
"""

import math
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

if __name__ == "__main__":  # run as a script: the tests' harness is not on the path yet
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# Written from CASES below (`python tests/deploy/test_alert_rules.py`); a test fails on drift.
# `promtool test rules deploy/prometheus/alerts.test.yml` runs it by hand.
TEST_FILE = ROOT / "deploy" / "prometheus" / "alerts.test.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"


@dataclass(frozen=True)
class Case:
    alert: str
    series: dict[str, str]
    fires_at: str
    labels: list[dict[str, str]]
    value: float
    quiet_at: list[str] = field(default_factory=list)


def series(name: str, **labels: str) -> str:
    return name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def hist(name: str, labels: str, buckets: dict[str, str]) -> dict[str, str]:
    return {f'{name}_bucket{{{labels},le="{le}"}}': values for le, values in buckets.items()}


SLOW = {"0.5": "0x20", "1": "0x20", "2.5": "0+60x20", "+Inf": "0+60x20"}
FAST = {"0.5": "0+60x20", "1": "0+60x20", "2.5": "0+60x20", "+Inf": "0+60x20"}
OLD = {"60": "0x20", "300": "0+10x20", "+Inf": "0+10x20"}
FRESH = {"60": "0+10x20", "300": "0+10x20", "+Inf": "0+10x20"}

CASES = [
    Case(
        "SsuOutboxLag",
        {
            'ssu_outbox_oldest_seconds{service="registry",instance="a"}': "120x10",
            'ssu_outbox_oldest_seconds{service="billing",instance="b"}': "5x10",
        },
        fires_at="6m",
        labels=[{"service": "registry", "severity": "warning"}],
        value=120,
        quiet_at=["4m"],
    ),
    Case(
        "SsuOutboxBacklogGrowing",
        {'ssu_outbox_pending{service="licensing",instance="a"}': "200+10x40"},
        fires_at="35m",
        labels=[{"service": "licensing", "severity": "warning"}],
        value=550,
        quiet_at=["10m"],
    ),
    Case(
        "SsuDeadLettersPresent",
        {'ssu_dlq_messages{service="registry",instance="a"}': "0 0 3x5"},
        fires_at="4m",
        labels=[{"service": "registry", "severity": "warning"}],
        value=3,
        quiet_at=["1m"],
    ),
    Case(
        "SsuDeadLetteringFast",
        {'ssu_dead_lettered_total{service="notification",instance="a"}': "0+3x20"},
        fires_at="15m",
        labels=[{"service": "notification", "severity": "critical"}],
        value=30,
    ),
    Case(
        "SsuConsumerErrorRate",
        {
            'ssu_events_total{service="billing",event_type="x.v1",outcome="handled"}': "0+90x30",
            'ssu_events_total{service="billing",event_type="x.v1",outcome="retried"}': "0+10x30",
        },
        fires_at="20m",
        labels=[{"service": "billing", "event_type": "x.v1", "severity": "warning"}],
        value=0.1,
        quiet_at=["5m"],
    ),
    Case(
        "SsuServiceNotReady",
        {'ssu_ready{service="licensing",instance="a"}': "1 0x5"},
        fires_at="4m",
        labels=[{"service": "licensing", "instance": "a", "severity": "critical"}],
        value=0,
        quiet_at=["1m"],
    ),
    Case(
        "SsuTargetDown",
        {'up{job="registry",instance="r:8082"}': "1 0x5"},
        fires_at="4m",
        labels=[{"job": "registry", "instance": "r:8082", "severity": "critical"}],
        value=0,
        quiet_at=["1m"],
    ),
    Case(
        "SsuBrokerUnreachable",
        {
            'ssu_dependency_up{service="licensing",instance="a",dependency="broker"}': "1 0x10",
            'ssu_dependency_up{service="licensing",instance="a",dependency="database"}': "1x10",
        },
        fires_at="7m",
        labels=[
            {
                "service": "licensing",
                "instance": "a",
                "dependency": "broker",
                "severity": "critical",
            }
        ],
        value=0,
        quiet_at=["4m"],
    ),
    Case(
        "SsuHttpErrorRatio",
        {
            series(
                "ssu_http_requests_total",
                service="registry",
                method="GET",
                route="/v1/providers",
                status="200",
            ): "0+54x30",
            series(
                "ssu_http_requests_total",
                service="registry",
                method="GET",
                route="/v1/providers",
                status="500",
            ): "0+6x30",
            series(
                "ssu_http_requests_total",
                service="billing",
                method="GET",
                route="/v1/runs",
                status="200",
            ): "0+60x30",
        },
        fires_at="20m",
        labels=[{"service": "registry", "severity": "critical"}],
        value=0.1,
        quiet_at=["9m"],
    ),
    Case(
        "SsuHttpLatencyHigh",
        {
            **hist(
                "ssu_http_request_duration_seconds",
                'service="billing",method="GET",route="/v1/invoices"',
                SLOW,
            ),
            **hist(
                "ssu_http_request_duration_seconds",
                'service="billing",method="GET",route="/metrics"',
                SLOW,
            ),
            **hist(
                "ssu_http_request_duration_seconds",
                'service="registry",method="GET",route="/v1/providers"',
                FAST,
            ),
        },
        fires_at="18m",
        labels=[{"service": "billing", "severity": "warning"}],
        value=2.485,
        quiet_at=["9m"],
    ),
    Case(
        "SsuEventAgeHigh",
        {
            **hist(
                "ssu_event_age_seconds",
                'service="notification",event_type="registry.enrollment.disrupted.v1"',
                OLD,
            ),
            **hist(
                "ssu_event_age_seconds",
                'service="billing",event_type="licensing.license.suspended.v1"',
                FRESH,
            ),
        },
        fires_at="18m",
        labels=[
            {
                "service": "notification",
                "event_type": "registry.enrollment.disrupted.v1",
                "severity": "warning",
            }
        ],
        value=297.6,
        quiet_at=["9m"],
    ),
    Case(
        "SsuDeliveriesFailing",
        {
            series(
                "ssu_deliveries",
                service="notification",
                instance="a",
                channel="sms",
                status="failed",
            ): "25x20",
            series(
                "ssu_deliveries",
                service="notification",
                instance="a",
                channel="email",
                status="failed",
            ): "2x20",
        },
        fires_at="16m",
        labels=[{"service": "notification", "channel": "sms", "severity": "warning"}],
        value=25,
        quiet_at=["10m"],
    ),
    Case(
        "SsuDeliveriesDead",
        {
            series(
                "ssu_deliveries",
                service="notification",
                instance="a",
                channel="email",
                status="dead",
            ): "1x10 3x10",
        },
        fires_at="20m",
        labels=[{"service": "notification", "channel": "email", "severity": "critical"}],
        value=2,
        quiet_at=["8m"],
    ),
    Case(
        "SsuBillingRunFailed",
        {'ssu_billing_runs{service="billing",instance="a",status="failed"}': "0x5 1x10"},
        fires_at="8m",
        labels=[{"service": "billing", "severity": "critical"}],
        value=1,
        quiet_at=["4m"],
    ),
]


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


# --- the three template functions our annotations use, as Prometheus renders them -------------


def go_value(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def go_g4(v: float) -> str:
    text = f"{v:.4g}"
    return text.replace("e+0", "e+").replace("e-0", "e-")


def humanize_duration(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return go_g4(v)
    if abs(v) >= 1:
        whole = int(v)
        seconds, minutes, hours, days = (
            whole % 60,
            whole // 60 % 60,
            whole // 3600 % 24,
            whole // 86400,
        )
        if days:
            return f"{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{minutes}m {seconds}s"
        return f"{go_g4(v)}s"
    prefix = ""
    for p in ("m", "u", "n", "p"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{go_g4(v)}{prefix}s"


_TEMPLATE = re.compile(r"\{\{\s*(\$labels\.(\w+)|\$value)\s*(?:\|\s*(\w+)\s*)?\}\}")


def render(template: str, labels: dict[str, str], value: float) -> str:
    def one(m: re.Match[str]) -> str:
        if m.group(2):
            return labels[m.group(2)]
        fn = m.group(3)
        if fn is None:
            return go_value(value)
        if fn == "humanizeDuration":
            return humanize_duration(value)
        if fn == "humanizePercentage":
            return f"{go_g4(value * 100)}%"
        raise AssertionError(f"template function {fn} is not rendered by this test")

    return _TEMPLATE.sub(one, template)


def promtool_tests() -> dict[str, Any]:
    by_name = {r["alert"]: r for r in rules()}
    tests = []
    for case in CASES:
        rule = by_name[case.alert]
        expected = [
            {
                "exp_labels": labels,
                "exp_annotations": {
                    k: render(v, labels, case.value) for k, v in rule["annotations"].items()
                },
            }
            for labels in case.labels
        ]
        checks = [{"eval_time": case.fires_at, "alertname": case.alert, "exp_alerts": expected}]
        checks += [
            {"eval_time": t, "alertname": case.alert, "exp_alerts": []} for t in case.quiet_at
        ]
        tests.append(
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": checks,
            }
        )
    return {"rule_files": [ALERTS.name], "evaluation_interval": "1m", "tests": tests}


def promtool_file_text() -> str:
    header = (
        "# Unit tests of alerts.yml for `promtool test rules`, written by\n"
        "# tests/deploy/test_alert_rules.py from its cases (run it as a script to rewrite).\n"
    )
    return header + yaml.safe_dump(promtool_tests(), allow_unicode=True, sort_keys=False, width=100)


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: apt-get install prometheus (make test installs it)"
    return path


def test_humanize_duration_matches_prometheus() -> None:
    assert humanize_duration(120) == "2m 0s"
    assert humanize_duration(2.485) == "2.485s"
    assert humanize_duration(297.6) == "4m 57s"
    assert humanize_duration(0.25) == "250ms"
    assert humanize_duration(90061) == "1d 1h 1m 1s"


def test_every_alert_has_a_promtool_case_and_a_runbook() -> None:
    names = [r["alert"] for r in rules()]
    assert sorted(c.alert for c in CASES) == sorted(names)
    for rule in rules():
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbooks/{rule['alert']}.md"
        text = (ROOT / url).read_text(encoding="utf-8")
        for heading in ("## What it means", "## How to look", "## What to do"):
            assert heading in text, (url, heading)
        assert re.search(r"`ssu (dlq|outbox|billing|audit) [^`]+`", text), url


def test_the_committed_promtool_file_is_the_cases() -> None:
    assert TEST_FILE.read_text(encoding="utf-8") == promtool_file_text(), (
        "deploy/prometheus/alerts.test.yml is stale: python tests/deploy/test_alert_rules.py"
    )


def test_promtool_checks_and_unit_tests_pass(tmp_path: Path) -> None:
    tool = promtool()
    check = subprocess.run(
        [tool, "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    # The cases as they are now (the committed copy is compared above), beside the rules.
    (tmp_path / ALERTS.name).write_text(ALERTS.read_text(encoding="utf-8"), encoding="utf-8")
    test_file = tmp_path / TEST_FILE.name
    test_file.write_text(promtool_file_text(), encoding="utf-8")
    run = subprocess.run(
        [tool, "test", "rules", str(test_file)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout + run.stderr


if __name__ == "__main__":
    TEST_FILE.write_text(promtool_file_text(), encoding="utf-8")
    print(f"wrote {TEST_FILE.relative_to(ROOT)}")
