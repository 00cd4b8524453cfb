"""Writes the broker's identities and topology for compose and Kubernetes from ssu_common.

    python deploy/broker_identities.py        (make broker-definitions)

- `deploy/rabbitmq/definitions.json`: loaded by the compose broker at boot: the administrator
  `ssu`, one user per service and the operators' `ssu-ops` (development passwords), their
  permissions and topic permissions, the exchanges, every consumer's queues and bindings.
- `deploy/k8s/base/broker-identities.yaml`: the same for the RabbitMQ messaging topology
  operator: a `User` per identity whose credentials come from a Secret `ssu-broker-<name>`
  (development values in the base; production supplies its own), its `Permission` and
  `TopicPermission`, and the `Exchange`, `Queue` and `Binding` resources.
A test fails when the committed files differ from what this writes.
"""

import json
import sys
from pathlib import Path
from typing import Any

import yaml
from ssu_common import identities
from ssu_common.messaging import dead_letter_queue, dlq_name, service_queue
from ssu_common.topology import CONSUMERS, DEAD_LETTER_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME

DEPLOY = Path(__file__).resolve().parent
DEFINITIONS = DEPLOY / "rabbitmq" / "definitions.json"
K8S = DEPLOY / "k8s" / "base" / "broker-identities.yaml"
VHOST = "/"
# The queues' delivery limit: SSU_DELIVERY_LIMIT of deploy/k8s/base/config.yaml and the default.
DELIVERY_LIMIT = 10
ADMIN = {"name": "ssu", "password": "ssu-dev"}  # compose's management user (development)
CLUSTER = {"name": "ssu-rabbitmq"}
USER_CRD_TAGS = {"management", "policymaker", "monitoring", "administrator"}


def _queues() -> list[tuple[str, dict[str, Any]]]:
    queues = []
    for service in CONSUMERS:
        for spec in (
            dead_letter_queue(service),
            service_queue(service, delivery_limit=DELIVERY_LIMIT),
        ):
            queues.append((spec.name, dict(spec.arguments or {})))
    return queues


def _bindings() -> list[dict[str, str]]:
    bindings = []
    for service, event_types in CONSUMERS.items():
        bindings.append(
            {
                "source": DEAD_LETTER_EXCHANGE_NAME,
                "destination": dlq_name(service),
                "routing_key": dlq_name(service),
            }
        )
        for event_type in event_types:
            bindings.append(
                {
                    "source": EVENTS_EXCHANGE_NAME,
                    "destination": f"{service}.events",
                    "routing_key": event_type,
                }
            )
    return bindings


def definitions() -> dict[str, Any]:
    doc = identities.definitions(VHOST)
    doc["users"].insert(
        0,
        {
            "name": ADMIN["name"],
            "password_hash": identities.password_hash(ADMIN["password"], salt=b"ssu\x00"),
            "hashing_algorithm": "rabbit_password_hashing_sha256",
            "tags": ["administrator"],
        },
    )
    doc["permissions"].insert(
        0, {"user": ADMIN["name"], "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}
    )
    doc["exchanges"] = [
        {
            "name": name,
            "vhost": VHOST,
            "type": kind,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }
        for name, kind in ((EVENTS_EXCHANGE_NAME, "topic"), (DEAD_LETTER_EXCHANGE_NAME, "direct"))
    ]
    doc["queues"] = [
        {"name": name, "vhost": VHOST, "durable": True, "auto_delete": False, "arguments": args}
        for name, args in _queues()
    ]
    doc["bindings"] = [
        {**b, "vhost": VHOST, "destination_type": "queue", "arguments": {}} for b in _bindings()
    ]
    return doc


def _resource_name(text: str) -> str:
    return text.replace(".", "-").replace("_", "-")


def k8s_resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for p in identities.all_permissions():
        secret = f"ssu-broker-{p.user.removeprefix('ssu-')}"
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret},
                "type": "Opaque",
                "stringData": {"username": p.user, "password": identities.dev_password(p.user)},
            }
        )
        docs.append(
            {
                "apiVersion": "rabbitmq.com/v1beta1",
                "kind": "User",
                "metadata": {"name": p.user},
                "spec": {
                    # The operator's User accepts only the management tags (its issue #1102):
                    # `impersonator` is set once by an administrator (K8S_HEADER).
                    "tags": [t for t in p.tags if t in USER_CRD_TAGS],
                    "rabbitmqClusterReference": CLUSTER,
                    "importCredentialsSecret": {"name": secret},
                },
            }
        )
        docs.append(
            {
                "apiVersion": "rabbitmq.com/v1beta1",
                "kind": "Permission",
                "metadata": {"name": p.user},
                "spec": {
                    "vhost": VHOST,
                    "userReference": {"name": p.user},
                    "permissions": {"configure": p.configure, "write": p.write, "read": p.read},
                    "rabbitmqClusterReference": CLUSTER,
                },
            }
        )
        docs.append(
            {
                "apiVersion": "rabbitmq.com/v1beta1",
                "kind": "TopicPermission",
                "metadata": {"name": p.user},
                "spec": {
                    "vhost": VHOST,
                    "userReference": {"name": p.user},
                    "permissions": {
                        "exchange": EVENTS_EXCHANGE_NAME,
                        "write": p.topic_write,
                        "read": p.topic_read,
                    },
                    "rabbitmqClusterReference": CLUSTER,
                },
            }
        )
    for exchange in definitions()["exchanges"]:
        docs.append(
            {
                "apiVersion": "rabbitmq.com/v1beta1",
                "kind": "Exchange",
                "metadata": {"name": _resource_name(exchange["name"])},
                "spec": {
                    "name": exchange["name"],
                    "vhost": VHOST,
                    "type": exchange["type"],
                    "durable": True,
                    "rabbitmqClusterReference": CLUSTER,
                },
            }
        )
    for name, args in _queues():
        arguments = {k: v for k, v in args.items() if k != "x-queue-type"}
        docs.append(
            {
                "apiVersion": "rabbitmq.com/v1beta1",
                "kind": "Queue",
                "metadata": {"name": _resource_name(name)},
                "spec": {
                    "name": name,
                    "vhost": VHOST,
                    "type": "quorum",
                    "durable": True,
                    **({"arguments": arguments} if arguments else {}),
                    "rabbitmqClusterReference": CLUSTER,
                },
            }
        )
    for b in _bindings():
        docs.append(
            {
                "apiVersion": "rabbitmq.com/v1beta1",
                "kind": "Binding",
                "metadata": {"name": _resource_name(f"{b['destination']}-{b['routing_key']}")},
                "spec": {
                    "vhost": VHOST,
                    "source": b["source"],
                    "destination": b["destination"],
                    "destinationType": "queue",
                    "routingKey": b["routing_key"],
                    "rabbitmqClusterReference": CLUSTER,
                },
            }
        )
    return docs


K8S_HEADER = """\
# Generated by deploy/broker_identities.py from ssu_common.identities and ssu_common.topology:
# do not edit (a test fails on drift). RabbitMQ messaging topology operator resources:
# one broker user per service (and the operators' ssu-ops), each allowed to publish on
# ssu.events only its own service's routing keys and to read only its own queues; every
# consumer's queues and bindings, so nothing is published before its queue exists.
# The Secrets hold development passwords; the production overlay removes them and expects
# Secrets of the same names made from real ones. The User resource cannot carry the
# `impersonator` tag that `ssu dlq replay` needs (it keeps each message's user_id); once:
#   kubectl -n ssu exec ssu-rabbitmq-server-0 -- rabbitmqctl set_user_tags ssu-ops impersonator
"""


def render() -> dict[Path, str]:
    return {
        DEFINITIONS: json.dumps(definitions(), indent=2, ensure_ascii=False) + "\n",
        K8S: K8S_HEADER
        + yaml.safe_dump_all(k8s_resources(), sort_keys=False, allow_unicode=True, width=100),
    }


def main() -> None:
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(DEPLOY.parent)}", file=sys.stderr)


if __name__ == "__main__":
    main()
