"""Deployment manifests (deploy/): every YAML and JSON file parses and has the structure that
operations rely on, and every metric the alert rules and the dashboard name is one a running
service exposes.

No Docker engine or Kubernetes cluster runs here: compose and Kubernetes files are checked by
parsing (and by `kubectl kustomize` when kubectl is installed).
"""

import json
import re
import shutil
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ROOT, reset_service, running_service, settings_for
from ssu_common.topology import CONSUMERS

sys.path.insert(0, str(ROOT / "deploy"))
import broker_identities

DEPLOY = ROOT / "deploy"
K8S_BASE = DEPLOY / "k8s" / "base"
K8S_PRODUCTION = DEPLOY / "k8s" / "overlays" / "production"
SERVICES = {"licensing": 8081, "registry": 8082, "billing": 8083, "notification": 8084}
INFRASTRUCTURE = ("postgres", "rabbitmq", "prometheus", "grafana")
DURATION = re.compile(r"^\d+[smhdwy]$")

# Metric names the dashboard must show (issue 9, DESIGN §7); each ssu_* one carries `service`.
DASHBOARD_METRICS = {
    "ssu_http_requests_total",
    "ssu_http_request_duration_seconds_bucket",
    "faststream_received_messages_total",
    "faststream_received_processed_messages_total",
    "faststream_received_processed_messages_duration_seconds_bucket",
    "faststream_published_messages_total",
    "ssu_outbox_published_total",
    "ssu_outbox_pending",
    "ssu_outbox_oldest_seconds",
    "ssu_dlq_messages",
    "ssu_dead_lettered_total",
    "ssu_ready",
    "ssu_dependency_up",
    "ssu_event_age_seconds_bucket",
    "ssu_licenses",
    "ssu_enrollments",
    "ssu_events_total",
    "ssu_billing_run_duration_seconds",
    "ssu_billing_runs",
    "ssu_deliveries",
}


# --- loading ---------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    return sorted(
        p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in {".yaml", ".yml", ".json"}
    )


def load_docs(path: Path) -> list[Any]:
    """Every document of a YAML file (empty ones dropped), or the one JSON document."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def load_one(path: Path) -> Any:
    docs = load_docs(path)
    assert len(docs) == 1, f"{path} holds {len(docs)} documents"
    return docs[0]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_one(DEPLOY / "compose.yaml")
    return data


def k8s_resources(directory: Path = K8S_BASE) -> list[dict[str, Any]]:
    kustomization = load_one(directory / "kustomization.yaml")
    resources: list[dict[str, Any]] = []
    for entry in kustomization["resources"]:
        resources.extend(load_docs(directory / entry))
    return resources


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def alert_rules() -> list[dict[str, Any]]:
    alerts = load_one(DEPLOY / "prometheus" / "alerts.yml")
    return [rule for group in alerts["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = load_one(DEPLOY / "grafana" / "dashboards" / "ssu.json")
    return data


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))  # panels inside collapsed rows
    return panels


def dashboard_queries() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if "expr" in t]


# --- PromQL: which metric names an expression reads --------------------------------------------

PROMQL_WORDS = {
    # aggregation operators and their modifiers
    *"sum min max avg group stddev stdvar count count_values bottomk topk quantile".split(),
    *"limitk limit_ratio by without on ignoring group_left group_right bool offset".split(),
    # binary set operators, literals
    *"and or unless inf nan".split(),
    # functions
    *"abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month".split(),
    *"day_of_week day_of_year days_in_month delta deriv exp floor histogram_avg".split(),
    *"histogram_count histogram_fraction histogram_quantile histogram_stddev".split(),
    *"histogram_stdvar histogram_sum holt_winters hour idelta increase irate".split(),
    *"label_join label_replace ln log2 log10 minute month predict_linear rate resets".split(),
    *"round scalar sgn sort sort_desc sqrt time timestamp vector year".split(),
    *"avg_over_time min_over_time max_over_time sum_over_time count_over_time".split(),
    *"quantile_over_time stddev_over_time stdvar_over_time last_over_time".split(),
    *"present_over_time mad_over_time".split(),
    # label names that only ever appear in grouping clauses
    "le",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w$.:])([A-Za-z_:][\w:]*)(\s*)(\(?)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers before `{` or `[` or used bare; not
    functions, aggregations, keywords, label names, label values, durations or numbers."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("{}", text)  # label names and values inside selectors
    text = _RANGE.sub("[]", text)  # durations, Grafana's $__rate_interval
    text = _GROUPING.sub(" ", text)  # by (service, le) ...
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        name, _space, paren = match.groups()
        if paren or name.lower() in PROMQL_WORDS:
            continue
        names.add(name)
    return names


def test_promql_metric_names_reads_metrics_only() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (service, le) "
        '(rate(ssu_http_request_duration_seconds_bucket{service=~"$service", le!="x"}'
        "[$__rate_interval])))"
    )
    assert promql_metric_names(expr) == {"ssu_http_request_duration_seconds_bucket"}
    assert promql_metric_names(
        'sum without (instance) (rate(a_total{status="error"}[5m])) / on (job) group_left '
        "sum(rate(a_total[5m] offset 1h)) > 0.05 and up == 0 or max(b) by (x) unless c"
    ) == {"a_total", "up", "b", "c"}
    assert promql_metric_names("max by (service) (delta(ssu_outbox_pending[15m])) > 1e3") == {
        "ssu_outbox_pending"
    }
    assert promql_metric_names('label_replace(x, "a", "$1", "b", "(.*)")') == {"x"}


def referenced_metrics() -> dict[str, set[str]]:
    """Metric name → where it is used (alert names, dashboard panel titles)."""
    used: dict[str, set[str]] = {}
    for rule in alert_rules():
        for name in promql_metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"alert {rule['alert']}")
    for panel in dashboard_panels():
        for target in panel.get("targets", []):
            for name in promql_metric_names(target.get("expr", "")):
                used.setdefault(name, set()).add(f"panel {panel['title']}")
    for variable in dashboard()["templating"]["list"]:
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        for name in _LABEL_VALUES.findall(text):
            used.setdefault(name, set()).add(f"variable {variable['name']}")
    return used


# --- every file ------------------------------------------------------------------------------


def test_every_manifest_parses() -> None:
    files = manifest_files()
    names = {p.relative_to(DEPLOY).as_posix() for p in files}
    assert {
        "compose.yaml",
        "k8s/base/kustomization.yaml",
        "k8s/overlays/production/kustomization.yaml",
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        "grafana/dashboards/ssu.json",
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/dashboards/ssu.yaml",
    } <= names
    for path in files:
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        assert all(isinstance(d, dict | list) for d in docs), path


# --- Docker ----------------------------------------------------------------------------------


def test_dockerfile_builds_the_workspace_from_the_lock_file() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    assert re.search(r'pip install --no-cache-dir "uv==[\d.]+"', text)
    assert "uv sync --all-packages --frozen --no-dev" in text
    for path in ("pyproject.toml", "uv.lock", "contracts/", "libs/", "services/", "cli/"):
        assert f" {path}" in text and (ROOT / path).exists(), path
    assert 'CMD ["python", "-m", "ssu_licensing"]' in text


def test_compose_runs_the_four_services_and_their_infrastructure() -> None:
    spec = compose()
    services = spec["services"]
    assert set(SERVICES) | set(INFRASTRUCTURE) <= set(services)
    assert services["postgres"]["image"] == "postgres:15"
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    for name in INFRASTRUCTURE:
        assert services[name]["healthcheck"]["test"], name

    database_hosts = set()
    for name, port in SERVICES.items():
        service = services[name]
        upper = name.upper()
        assert service["command"] == ["python", "-m", f"ssu_{name}"]
        build = service["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (
            DEPLOY / "Dockerfile"
        )
        env = service["environment"]
        assert env["SSU_AMQP_URL"] == "amqp://rabbitmq:5672/"
        # Its own broker identity, as the broker's definitions file creates it.
        assert env[f"SSU_{upper}_AMQP_USERNAME"] == f"ssu-{name}"
        assert env[f"SSU_{upper}_AMQP_PASSWORD"] == f"ssu-{name}-dev"
        database_url = env[f"SSU_{upper}_DATABASE_URL"]
        assert database_url.endswith(f"/ssu_{name}")
        database_hosts.add(database_url.rsplit("/", 1)[0])
        assert env[f"SSU_{upper}_PORT"] == str(port)
        assert env[f"SSU_{upper}_HOST"] == "0.0.0.0"
        keys_file = env["SSU_API_KEYS_FILE"]
        assert keys_file.startswith("/app/deploy/")
        assert (DEPLOY / keys_file.removeprefix("/app/deploy/")).exists()
        assert service["ports"] == [f"{port}:{port}"]
        assert f"http://127.0.0.1:{port}/health/ready" in " ".join(service["healthcheck"]["test"])
        assert set(service["depends_on"]) >= {"postgres", "rabbitmq"}
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert database_hosts == {"postgresql://postgres:ssu-dev@postgres:5432"}, "one server"

    # Files mounted from the repository, and scripts run from the image, exist.
    for service in services.values():
        for word in service.get("command", []):
            if word.startswith("deploy/"):
                assert (ROOT / word).is_file(), word
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
    assert set(spec["volumes"]) >= {"postgres-data", "rabbitmq-data"}


# --- Kubernetes ------------------------------------------------------------------------------


@pytest.mark.parametrize("directory", [K8S_BASE, K8S_PRODUCTION], ids=["base", "production"])
def test_kustomization_lists_only_existing_files(directory: Path) -> None:
    kustomization = load_one(directory / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    for entry in kustomization.get("resources", []):
        target = directory / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), entry
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            assert (directory / patch["path"]).is_file(), patch["path"]
        else:
            assert patch["patch"].strip() and patch.get("target"), patch
    listed = {directory / e for e in kustomization.get("resources", [])}
    listed |= {directory / p["path"] for p in kustomization.get("patches", []) if "path" in p}
    for path in directory.glob("*.yaml"):
        assert path.name == "kustomization.yaml" or path in listed, f"{path} is not listed"


def test_each_service_has_a_deployment_with_probes_limits_config_and_keys() -> None:
    resources = k8s_resources()
    deployments = of_kind(resources, "Deployment")
    config = of_kind(resources, "ConfigMap")["ssu-config"]["data"]
    secrets = of_kind(resources, "Secret")
    assert set(deployments) == set(SERVICES)
    for name, port in SERVICES.items():
        deployment = deployments[name]
        assert deployment["apiVersion"] == "apps/v1"
        pod = deployment["spec"]["template"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod["metadata"]["labels"].items()
        (container,) = pod["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"ssu_{name}"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (name, kind)

        upper = name.upper()
        assert [e["configMapRef"]["name"] for e in container["envFrom"]] == ["ssu-config"]
        assert config[f"SSU_{upper}_PORT"] == str(port)
        assert config[f"SSU_{upper}_HOST"] == "0.0.0.0"
        env = {e["name"]: e for e in container["env"]}
        database = env[f"SSU_{upper}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert database == {"name": f"{name}-db-app", "key": "uri"}  # CloudNativePG's Secret
        # Every node of the RabbitMQ cluster, so a client moves on when its node goes.
        assert env["SSU_AMQP_URL"]["value"].split(",") == [
            f"amqp://ssu-rabbitmq-server-{i}.ssu-rabbitmq-nodes:5672/?heartbeat=10"
            for i in range(3)
        ]
        # Its own broker user (the topology operator's User imports the same Secret).
        for variable, key in (("USERNAME", "username"), ("PASSWORD", "password")):
            ref = env[f"SSU_{upper}_AMQP_{variable}"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": f"ssu-broker-{name}", "key": key}

        # The API keys file is a Secret mounted where SSU_API_KEYS_FILE points.
        keys_path = Path(config["SSU_API_KEYS_FILE"])
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
        mount = mounts[str(keys_path.parent)]
        secret_name = volumes[mount["name"]]["secret"]["secretName"]
        assert keys_path.name in secrets[secret_name]["stringData"]


def test_dev_api_keys_secret_matches_the_dev_key_file() -> None:
    secret = of_kind(k8s_resources(), "Secret")["ssu-api-keys"]
    assert yaml.safe_load(secret["stringData"]["api-keys.yaml"]) == load_one(
        DEPLOY / "api-keys.dev.yaml"
    )


def test_each_service_has_a_service_an_autoscaler_and_a_service_monitor() -> None:
    resources = k8s_resources()
    deployments = of_kind(resources, "Deployment")
    services = of_kind(resources, "Service")
    autoscalers = of_kind(resources, "ScaledObject")  # KEDA; tests/deploy/test_k8s.py
    monitors = of_kind(resources, "ServiceMonitor")
    for name, port in SERVICES.items():
        service = services[name]
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert service["spec"]["ports"][0]["port"] == port

        scaled = autoscalers[name]
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        assert scaled["spec"]["scaleTargetRef"]["name"] == name
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
        assert {t["type"] for t in scaled["spec"]["triggers"]} == {"rabbitmq", "cpu"}

        monitor = monitors[name]
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        assert monitor["spec"]["selector"]["matchLabels"].items() <= (
            service["metadata"]["labels"].items()
        )
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert endpoint["port"] == service["spec"]["ports"][0]["name"]


def test_rabbitmq_cluster_has_three_nodes() -> None:
    (cluster,) = of_kind(k8s_resources(), "RabbitmqCluster").values()
    assert cluster["apiVersion"] == "rabbitmq.com/v1beta1"
    assert cluster["spec"]["replicas"] == 3
    assert cluster["metadata"]["name"] == "ssu-rabbitmq"  # its Secret feeds SSU_AMQP_URL


def test_one_postgresql_cluster_per_service() -> None:
    clusters = [r for r in k8s_resources() if r["kind"] == "Cluster"]
    assert all(c["apiVersion"] == "postgresql.cnpg.io/v1" for c in clusters)
    by_database = {c["spec"]["bootstrap"]["initdb"]["database"]: c for c in clusters}
    assert len(by_database) == len(clusters) == len(SERVICES)
    for name in SERVICES:
        assert by_database[f"ssu_{name}"]["metadata"]["name"] == f"{name}-db"


def test_prometheus_rule_holds_the_alert_rules() -> None:
    (rule,) = of_kind(k8s_resources(), "PrometheusRule").values()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["spec"]["groups"] == load_one(DEPLOY / "prometheus" / "alerts.yml")["groups"]


def kustomize(directory: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    built = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def test_kustomize_builds_base_and_production() -> None:
    base = kustomize(K8S_BASE)
    assert all(r["metadata"].get("namespace") == "ssu" for r in base if r["kind"] != "Namespace")
    production = kustomize(K8S_PRODUCTION)
    deployments = of_kind(production, "Deployment")
    assert all("replicas" not in d["spec"] for d in deployments.values())
    assert all(
        d["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
        for d in deployments.values()
    )
    assert {s["spec"]["minReplicaCount"] for s in of_kind(production, "ScaledObject").values()} == {
        3
    }
    clusters = [r for r in production if r["kind"] == "Cluster"]
    assert {c["spec"]["instances"] for c in clusters} == {3}
    # Real API keys, keys of personal data and broker passwords come from outside.
    assert of_kind(production, "Secret") == {}
    assert "ssu-data-keys" in of_kind(base, "Secret")
    broker_secrets = [n for n in of_kind(base, "Secret") if n.startswith("ssu-broker-")]
    assert len(broker_secrets) == 6  # five services (the portal among them) and the operators
    assert len(production) == len(base) - 2 - len(broker_secrets)


# --- Prometheus ------------------------------------------------------------------------------


def test_prometheus_scrapes_each_service_and_loads_the_rules() -> None:
    config = load_one(DEPLOY / "prometheus" / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    compose_services = compose()["services"]
    for name, port in SERVICES.items():
        job = jobs[name]  # the job is the service name, as with the ServiceMonitors
        assert job.get("metrics_path", "/metrics") == "/metrics"
        assert job["static_configs"] == [{"targets": [f"{name}:{port}"]}]
        assert name in compose_services


def test_alert_rules_are_complete_and_tell_the_on_call_engineer_what_to_do() -> None:
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["expr"].strip()
        assert DURATION.match(rule["for"]), rule["for"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        annotations = rule["annotations"]
        assert annotations["summary"].strip()
        assert re.search(r"`ssu (dlq|outbox|billing) [^`]+`", annotations["description"]), (
            f"{rule['alert']} names no ssu command"
        )

    def rule_reading(fragment: str) -> dict[str, Any]:
        matching = [r for r in rules if fragment in r["expr"]]
        assert matching, f"no alert reads {fragment}"
        return matching[0]

    lag = rule_reading("ssu_outbox_oldest_seconds")
    assert lag["expr"].endswith("> 60") and lag["for"] == "5m"
    assert "`ssu outbox status`" in rule_reading("ssu_outbox_pending")["annotations"]["description"]
    dead = rule_reading("ssu_dlq_messages")["annotations"]["description"]
    assert "`ssu dlq list" in dead and "`ssu dlq replay" in dead
    errors = rule_reading('ssu_events_total{outcome=~"retried|dead_lettered"}')
    assert "/" in errors["expr"]  # a ratio of errors over everything processed
    assert rule_reading("ssu_ready")["expr"].strip() == "ssu_ready == 0"
    assert rule_reading("up{")["expr"].strip().endswith("== 0")
    rule_reading('ssu_billing_runs{status="failed"}')


# --- Grafana ---------------------------------------------------------------------------------


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    grafana = DEPLOY / "grafana"
    (datasource,) = load_one(grafana / "provisioning" / "datasources" / "prometheus.yaml")[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = load_one(grafana / "provisioning" / "dashboards" / "ssu.yaml")["providers"]
    mounts = dict(v.split(":")[:2] for v in compose()["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


def test_dashboard_shows_red_consumers_outbox_dead_letters_and_domain_gauges() -> None:
    board = dashboard()
    assert board["uid"] and board["title"]
    panels = dashboard_panels()
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    used: set[str] = set()
    for query in dashboard_queries():
        assert query.count("(") == query.count(")"), query
        assert query.count("{") == query.count("}"), query
        used |= promql_metric_names(query)
    assert used >= DASHBOARD_METRICS, sorted(DASHBOARD_METRICS - used)


def test_referenced_names_look_like_our_metrics() -> None:
    """Catches a label or a typo read as a metric name by the tokenizer or the author."""
    for name, where in referenced_metrics().items():
        assert name == "up" or name.startswith(("ssu_", "faststream_")), (name, where)


# --- against running services ------------------------------------------------------------------


def exposition_types(text: str) -> dict[str, str]:
    """Metric family name → type, from the `# TYPE` lines of a Prometheus exposition."""
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            types[name] = kind.strip()
    return types


def is_exposed(name: str, types: dict[str, str]) -> bool:
    """A series name is exposed when its family is declared: `x_bucket` of histogram `x`,
    `x_count`/`x_sum` of histogram or summary `x`, and a counter as `x_total` (the Prometheus
    text format declares it so; OpenMetrics declares `x`). A bare `x` is not counter `x_total`."""
    if name in types:
        return True
    for suffix, kinds in (
        ("_bucket", {"histogram"}),
        ("_count", {"histogram", "summary"}),
        ("_sum", {"histogram", "summary"}),
        ("_total", {"counter"}),
    ):
        if name.endswith(suffix) and types.get(name.removesuffix(suffix)) in kinds:
            return True
    return False


def test_is_exposed_handles_suffixes_carefully() -> None:
    types = {"h": "histogram", "c_total": "counter", "o": "counter", "g": "gauge"}
    assert is_exposed("h_bucket", types) and is_exposed("h_count", types)
    assert is_exposed("c_total", types) and is_exposed("o_total", types)
    assert is_exposed("g", types)
    assert not is_exposed("c", types)
    assert not is_exposed("g_bucket", types)
    assert not is_exposed("g_total", types)


async def test_every_metric_in_alerts_and_dashboard_is_exposed() -> None:
    from ssu_billing.main import build as build_billing
    from ssu_billing.settings import Settings as BillingSettings
    from ssu_licensing.main import build as build_licensing
    from ssu_licensing.settings import Settings as LicensingSettings
    from ssu_notification.main import build as build_notification
    from ssu_notification.settings import Settings as NotificationSettings
    from ssu_registry.main import build as build_registry
    from ssu_registry.settings import Settings as RegistrySettings

    builders: dict[str, Any] = {
        "licensing": (build_licensing, LicensingSettings),
        "registry": (build_registry, RegistrySettings),
        "billing": (build_billing, BillingSettings),
        "notification": (build_notification, NotificationSettings),
    }
    for name in SERVICES:
        await reset_service(name)
    types: dict[str, str] = {}
    async with AsyncExitStack() as stack:
        for name, (build, settings_class) in builders.items():
            svc = await stack.enter_async_context(
                running_service(build(settings_for(settings_class, name)))
            )
            ready = await svc.client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            scraped = await svc.client.get("/metrics")
            assert scraped.status_code == 200
            types.update(exposition_types(scraped.text))

    used = referenced_metrics()
    missing = {
        name: sorted(where)
        for name, where in sorted(used.items())
        if name != "up" and not is_exposed(name, types)
    }
    assert not missing, f"named in alerts or the dashboard but exposed by no service: {missing}"


# --- broker identities (SECURITY.md) -----------------------------------------------------------


def test_generated_broker_definitions_are_up_to_date() -> None:
    """deploy/rabbitmq/definitions.json and the k8s broker resources come from ssu_common."""
    for path, text in broker_identities.render().items():
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is stale: run python deploy/broker_identities.py"
        )


def test_compose_broker_loads_the_identities_and_the_topology() -> None:
    rabbitmq = compose()["services"]["rabbitmq"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in rabbitmq["volumes"] if ":" in v}
    conf = (DEPLOY / mounts["/etc/rabbitmq/conf.d/20-ssu.conf"]).read_text(encoding="utf-8")
    assert "load_definitions = /etc/rabbitmq/definitions.json" in conf
    definitions = load_one(DEPLOY / mounts["/etc/rabbitmq/definitions.json"])
    topic = {t["user"]: t for t in definitions["topic_permissions"]}
    for name in SERVICES:
        assert topic[f"ssu-{name}"]["write"] == f"^{name}\\."
        assert topic[f"ssu-{name}"]["exchange"] == "ssu.events"
    queues = {q["name"]: q for q in definitions["queues"]}
    for consumer, event_types in CONSUMERS.items():
        assert queues[f"{consumer}.events"]["arguments"]["x-delivery-limit"] == 10
        bound = {
            b["routing_key"]
            for b in definitions["bindings"]
            if b["destination"] == f"{consumer}.events"
        }
        assert bound == set(event_types)


def test_k8s_has_a_broker_user_permission_and_topic_permission_per_service() -> None:
    resources = k8s_resources()
    users = of_kind(resources, "User")
    permissions = of_kind(resources, "Permission")
    topics = of_kind(resources, "TopicPermission")
    secrets = of_kind(resources, "Secret")
    for name in [*SERVICES, "ops"]:
        user = f"ssu-{name}"
        secret = users[user]["spec"]["importCredentialsSecret"]["name"]
        assert secret == f"ssu-broker-{name}"
        assert secrets[secret]["stringData"]["username"] == user
        assert permissions[user]["spec"]["userReference"] == {"name": user}
        assert topics[user]["spec"]["permissions"]["exchange"] == "ssu.events"
        for r in (users[user], permissions[user], topics[user]):
            assert r["spec"]["rabbitmqClusterReference"] == {"name": "ssu-rabbitmq"}
    for name in SERVICES:
        assert topics[f"ssu-{name}"]["spec"]["permissions"]["write"] == f"^{name}\\."
        read = permissions[f"ssu-{name}"]["spec"]["permissions"]["read"]
        others = [s for s in SERVICES if s != name]
        assert f"{name}\\.events" in read and not any(o in read for o in others)
    # The operator cannot set `impersonator` (see the file's header): an administrator does.
    assert users["ssu-ops"]["spec"]["tags"] == []
    assert "set_user_tags ssu-ops impersonator" in (K8S_BASE / "broker-identities.yaml").read_text()
    queues = {q["spec"]["name"] for q in of_kind(resources, "Queue").values()}
    assert queues == {f"{c}.events{x}" for c in CONSUMERS for x in ("", ".dlq")}
