"""Write the JSON Schemas of the custom resources ssu deploys whose operators' models are
published as packages: KEDA and the Prometheus Operator (cloudcoil's models are generated from
those projects' CRDs). Strict: an object that lists its properties accepts no others, as
`kubectl apply --validate=strict` would refuse an unknown field.

    uv run --no-project --with cloudcoil-models-keda --with cloudcoil-models-prometheus-operator \
        python deploy/k8s/schemas/generate.py

CloudNativePG's, the RabbitMQ Cluster Operator's and the messaging topology operator's schemas
(postgresql.cnpg.io, rabbitmq.com: RabbitmqCluster; User, Permission, TopicPermission, Exchange,
Queue, Binding, Policy) are kept by hand beside these: no package publishes them; they cover the
fields we use.
"""

import json
from pathlib import Path
from typing import Any

from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring

HERE = Path(__file__).parent
MODELS = {
    "keda.sh/scaledobject_v1alpha1.json": keda.ScaledObject,
    "monitoring.coreos.com/servicemonitor_v1.json": monitoring.ServiceMonitor,
    "monitoring.coreos.com/podmonitor_v1.json": monitoring.PodMonitor,
    "monitoring.coreos.com/prometheusrule_v1.json": monitoring.PrometheusRule,
}


def strict(node: Any) -> Any:
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            strict(value)
    elif isinstance(node, list):
        for value in node:
            strict(value)
    return node


def main() -> None:
    for name, model in MODELS.items():
        schema = strict(model.model_json_schema(by_alias=True))
        schema["properties"].pop("status", None)  # written by the operator, never by us
        path = HERE / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        print(path.relative_to(HERE), len(path.read_bytes()), "bytes")


if __name__ == "__main__":
    main()
