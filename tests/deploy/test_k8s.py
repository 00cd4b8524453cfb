"""Kubernetes manifests (issue 15): every resource valid against the Kubernetes schemas
(kubernetes-validate, offline, strict) or its CRD's schema kept in deploy/k8s/schemas/;
autoscaling on queue depth without `spec.replicas`, disruption budgets, nightly backups,
network policies that let each service reach only what it needs, ingresses."""

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from harness import ROOT

# The loaders of test_manifests.py (tests run with --import-mode=importlib: load it by path).
_spec = importlib.util.spec_from_file_location(
    "ssu_test_manifests", Path(__file__).with_name("test_manifests.py")
)
assert _spec is not None and _spec.loader is not None
manifests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(manifests)
K8S_PRODUCTION, SERVICES = manifests.K8S_PRODUCTION, manifests.SERVICES
k8s_resources, of_kind = manifests.k8s_resources, manifests.of_kind

SCHEMAS = ROOT / "deploy" / "k8s" / "schemas"
KUBERNETES_VERSION = "1.33.0"


def schema_errors(resource: dict[str, Any]) -> list[str]:
    group, _, version = resource["apiVersion"].rpartition("/")
    crd_schema = SCHEMAS / group / f"{resource['kind'].lower()}_{version}.json"
    if group and "." in group and group != "networking.k8s.io":
        assert crd_schema.is_file(), f"no schema for {resource['apiVersion']} {resource['kind']}"
        validator = jsonschema.Draft202012Validator(json.loads(crd_schema.read_text()))
        return [
            f"{'.'.join(map(str, e.absolute_path))}: {e.message[:200]}"
            for e in validator.iter_errors(resource)
        ]
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'.'.join(map(str, exc.path))}: {exc.message[:200]}"]
    return []


def production() -> list[dict[str, Any]]:
    """The production overlay as kustomize builds it (kubectl is on this kind of machine; where
    it is not, as in test_manifests, the overlay's checks are skipped, the base's are not)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed: the production overlay cannot be built")
    built = subprocess.run(
        [kubectl, "kustomize", str(K8S_PRODUCTION)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def assert_valid(resources: list[dict[str, Any]]) -> None:
    kinds = {r["kind"] for r in resources}
    assert {"ScaledObject", "ScheduledBackup", "NetworkPolicy", "Ingress"} <= kinds
    problems = {
        f"{r['kind']}/{r['metadata']['name']}": errors
        for r in resources
        if (errors := schema_errors(r))
    }
    assert not problems, problems


def test_every_base_manifest_is_valid_against_its_schema() -> None:
    assert_valid(k8s_resources())


def test_every_production_manifest_is_valid_against_its_schema() -> None:
    assert_valid(production())


def test_schemas_refuse_what_the_cluster_would_refuse() -> None:
    resources = k8s_resources()
    scaled = of_kind(resources, "ScaledObject")["registry"]
    typo = {**scaled, "spec": {**scaled["spec"], "minReplicas": 2}}
    assert any("minReplicas" in e for e in schema_errors(typo))
    cluster = of_kind(resources, "Cluster")["billing-db"]
    backup = cluster["spec"]["backup"]
    bad = {**cluster, "spec": {**cluster["spec"], "backup": {**backup, "retentionPolicy": "30"}}}
    assert schema_errors(bad)
    deployment = of_kind(resources, "Deployment")["billing"]
    wrong = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    assert schema_errors(wrong)


@pytest.mark.parametrize("overlay", ["base", "production"])
def test_queue_depth_autoscaling_owns_the_replica_count(overlay: str) -> None:
    resources, low, high = (k8s_resources(), 2, 6) if overlay == "base" else (production(), 3, 12)
    deployments = of_kind(resources, "Deployment")
    scaled = of_kind(resources, "ScaledObject")
    assert not of_kind(resources, "HorizontalPodAutoscaler")  # KEDA makes its own
    for name in SERVICES:
        assert "replicas" not in deployments[name]["spec"], name
        spec = scaled[name]["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (low, high)
        rabbit = next(t for t in spec["triggers"] if t["type"] == "rabbitmq")["metadata"]
        assert rabbit["queueName"] == f"{name}.events"
        assert rabbit["mode"] == "QueueLength" and int(rabbit["value"]) > 0
        env = {
            e["name"] for e in deployments[name]["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert {rabbit["usernameFromEnv"], rabbit["passwordFromEnv"]} <= env
        assert "@" not in rabbit["host"]  # no credentials in the manifest


def test_each_service_keeps_a_replica_through_voluntary_disruptions() -> None:
    budgets = of_kind(k8s_resources(), "PodDisruptionBudget")
    deployments = of_kind(k8s_resources(), "Deployment")
    for name in SERVICES:
        spec = budgets[name]["spec"]
        assert spec["minAvailable"] == 1
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert spec["selector"]["matchLabels"].items() <= labels.items()


def test_every_database_is_backed_up_nightly_to_object_storage() -> None:
    resources = k8s_resources()
    clusters = {c["metadata"]["name"]: c for c in resources if c["kind"] == "Cluster"}
    scheduled = {
        b["spec"]["cluster"]["name"]: b for b in of_kind(resources, "ScheduledBackup").values()
    }
    assert set(scheduled) == set(clusters) == {f"{s}-db" for s in SERVICES}
    paths = set()
    for name, cluster in clusters.items():
        store = cluster["spec"]["backup"]["barmanObjectStore"]
        assert store["destinationPath"].startswith("s3://")
        paths.add(store["destinationPath"])
        assert store["s3Credentials"]["accessKeyId"]["name"] == "ssu-backup-s3"
        assert cluster["spec"]["backup"]["retentionPolicy"] == "30d"
        assert scheduled[name]["spec"]["method"] == "barmanObjectStore"
    assert len(paths) == len(clusters)  # one place per database, never shared
    readme = (ROOT / "deploy" / "k8s" / "README.md").read_text(encoding="utf-8")
    assert "## Restore" in readme and "bootstrap:" in readme and "recovery:" in readme


def _peers(rule: dict[str, Any]) -> set[tuple[str, int]]:
    """What an egress rule allows: (peer, port) pairs, a peer named by its selector labels."""
    peers: set[tuple[str, int]] = set()
    for peer in rule.get("to", []):
        if "ipBlock" in peer:
            name = f"ip:{peer['ipBlock']['cidr']}"
        else:
            labels = {
                **peer.get("namespaceSelector", {}).get("matchLabels", {}),
                **peer.get("podSelector", {}).get("matchLabels", {}),
            }
            name = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        for port in rule["ports"]:
            peers.add((name, port["port"]))
    return peers


def test_each_service_reaches_only_its_database_the_broker_and_its_gateways() -> None:
    policies = of_kind(k8s_resources(), "NetworkPolicy")
    deny = policies["ssu-services-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "egress" not in deny
    common = {
        ("k8s-app=kube-dns,kubernetes.io/metadata.name=kube-system", 53),
        ("app.kubernetes.io/name=ssu-rabbitmq", 5672),
        ("kubernetes.io/metadata.name=observability", 4318),
    }
    for name, port in SERVICES.items():
        spec = policies[name]["spec"]
        assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        allowed = set().union(*(_peers(rule) for rule in spec["egress"]))
        expected = common | {(f"cnpg.io/cluster={name}-db", 5432)}
        if name == "notification":
            expected |= {
                ("kubernetes.io/metadata.name=mail", 25),
                ("kubernetes.io/metadata.name=sms", 80),
                ("ip:0.0.0.0/0", 443),
            }
        assert allowed == expected, name
        assert [p["port"] for rule in spec["ingress"] for p in rule["ports"]] == [port]
        db = policies[f"{name}-db"]["spec"]
        clients = {
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name")
            for rule in db["ingress"]
            for peer in rule["from"]
            if "podSelector" in peer
        }
        assert clients - {None} == {name}, clients  # no other service reaches this database
    webhooks = next(
        p["ipBlock"]
        for rule in policies["notification"]["spec"]["egress"]
        for p in rule["to"]
        if "ipBlock" in p
    )
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
        webhooks["except"]
    )


def test_ingresses_expose_the_public_registry_and_the_apis_only() -> None:
    ingresses = of_kind(k8s_resources(), "Ingress")
    services = of_kind(k8s_resources(), "Service")
    (public_rule,) = ingresses["ssu-public"]["spec"]["rules"]
    public = [(p["path"], p["backend"]["service"]["name"]) for p in public_rule["http"]["paths"]]
    assert public == [("/v1/licenses", "licensing")]
    hosts = {r["host"]: r for r in ingresses["ssu-api"]["spec"]["rules"]}
    assert set(hosts) == {f"{name}.api.ssu.example.kz" for name in SERVICES}
    for name in SERVICES:
        paths = hosts[f"{name}.api.ssu.example.kz"]["http"]["paths"]
        assert {p["backend"]["service"]["name"] for p in paths} == {name}
        assert {p["path"] for p in paths} == {"/v1", "/docs", "/openapi.json"}
        port_names = {p["name"] for p in services[name]["spec"]["ports"]}
        assert {p["backend"]["service"]["port"]["name"] for p in paths} <= port_names
    for ingress in ingresses.values():
        tls_hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
        assert {r["host"] for r in ingress["spec"]["rules"]} <= tls_hosts
