"""What `make test-cluster` taught, held in the Kubernetes manifests: every service lists
every broker node, the queues' dead-lettering comes from policies equal to what the code
would otherwise declare, and no voluntary disruption takes a service's last replica."""

import re
from typing import Any
from urllib.parse import urlsplit

import yaml
from harness import ROOT
from ssu_common.messaging import broker_addresses, dead_letter_policy, queue_name

K8S_BASE = ROOT / "deploy" / "k8s" / "base"
SERVICES = ("licensing", "registry", "billing", "notification")


def k8s_resources() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text())
    return [
        doc
        for entry in kustomization["resources"]
        for doc in yaml.safe_load_all((K8S_BASE / entry).read_text())
        if doc
    ]


def of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def _env(deployment: dict[str, Any], name: str) -> str:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return next(e["value"] for e in container["env"] if e["name"] == name)


def test_each_service_lists_every_broker_node_with_a_heartbeat() -> None:
    resources = k8s_resources()
    (cluster,) = of_kind(resources, "RabbitmqCluster").values()
    nodes = cluster["spec"]["replicas"]
    name = cluster["metadata"]["name"]
    for service, deployment in of_kind(resources, "Deployment").items():
        addresses = broker_addresses(_env(deployment, "SSU_AMQP_URL"))
        hosts = [urlsplit(a).hostname for a in addresses]
        assert hosts == [f"{name}-server-{i}.{name}-nodes" for i in range(nodes)], service
        assert all(a.endswith("?heartbeat=10") for a in addresses), service


def test_dead_lettering_and_delivery_limit_are_policies_the_queues_do_not_override() -> None:
    resources = k8s_resources()
    config = yaml.safe_load((K8S_BASE / "config.yaml").read_text())["data"]
    assert config["SSU_QUEUE_POLICIES"] == "true"
    limit = int(config["SSU_DELIVERY_LIMIT"])
    policies = {p["spec"]["pattern"]: p["spec"] for p in of_kind(resources, "Policy").values()}
    for service in SERVICES:
        policy = policies[f"^{re.escape(queue_name(service))}$"]
        assert policy["applyTo"] == "queues"
        assert policy["definition"] == dead_letter_policy(service, delivery_limit=limit)
        assert policy["rabbitmqClusterReference"]["name"] == "ssu-rabbitmq"


def test_no_voluntary_disruption_takes_a_services_last_replica() -> None:
    resources = k8s_resources()
    budgets = of_kind(resources, "PodDisruptionBudget")
    scalers = of_kind(resources, "ScaledObject")
    for service in SERVICES:
        budget = budgets[service]["spec"]
        assert budget["minAvailable"] == 1
        assert budget["selector"]["matchLabels"] == {"app.kubernetes.io/name": service}
        # Two replicas at least, as the cluster test runs them: one may die mid-stream.
        assert scalers[service]["spec"]["minReplicaCount"] >= 2
    assert budgets["ssu-rabbitmq"]["spec"]["maxUnavailable"] == 1
