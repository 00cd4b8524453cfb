"""Broker identities: one RabbitMQ user per service, and what each may do (SECURITY.md).

Each service connects as `ssu-<service>`. It may
- publish to `ssu.events` only routing keys of its own service (a topic permission; the broker
  closes the channel with ACCESS_REFUSED otherwise) and dead-letter into `ssu.dlx`;
- declare, bind and read (consume, purge) only its own queue and its own dead-letter queue.
The deployment declares every consumer's queue before services start (an administrator's step:
broker.declare_suite_topology, or the compose and Kubernetes definitions).
The operators' identity `ssu-ops` (the `ssu` command line) reads every dead-letter queue and
replays into a service's queue through the default exchange, keeping each message's `user_id`:
that needs the `impersonator` tag. It declares, binds and publishes to `ssu.events` nothing.

The same definitions are applied by the local runner, the tests and CI (`rabbitmqctl
import_definitions`, `apply`), written for compose (`deploy/rabbitmq/definitions.json`) and for
Kubernetes (`deploy/k8s/base/broker-users.yaml`): `python deploy/broker_identities.py` writes
both, and a test fails when they drift.
"""

import base64
import hashlib
import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ssu_common.jsontypes import JsonObject
from ssu_common.topology import CONSUMERS, DEAD_LETTER_EXCHANGE_NAME, EVENTS_EXCHANGE_NAME

# Every service of the suite has an identity: each that publishes, and each consumer of
# ssu_common.topology (a new consuming service is its one line there; one that only publishes,
# one more name here). Then `make broker-definitions` for deploy/.
SERVICES: tuple[str, ...] = tuple(
    dict.fromkeys(("licensing", "registry", "billing", "notification", *CONSUMERS))
)
OPS_USER = "ssu-ops"
_USER_PREFIX = "ssu-"


def broker_user(service: str) -> str:
    """The RabbitMQ user a service connects as."""
    return f"{_USER_PREFIX}{service}"


def service_of_user(user_id: str | None) -> str | None:
    """The service whose identity `user_id` is, or None for any other user."""
    if user_id is None or not user_id.startswith(_USER_PREFIX):
        return None
    service = user_id.removeprefix(_USER_PREFIX)
    return service if service in SERVICES else None


def dev_password(user: str) -> str:
    """The development password of a broker user (local runner, tests, compose, k8s base)."""
    return f"{user}-dev"


@dataclass(frozen=True)
class Permissions:
    """`rabbitmqctl set_permissions` and `set_topic_permissions` (on `ssu.events`) of a user."""

    user: str
    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str
    tags: tuple[str, ...] = ()


def _any_of(names: list[str]) -> str:
    return "^(" + "|".join(re.escape(n) for n in names) + ")$"


def permissions(service: str) -> Permissions:
    """What the identity of one service may do on the suite's virtual host."""
    exchanges = [EVENTS_EXCHANGE_NAME, DEAD_LETTER_EXCHANGE_NAME]
    own = [f"{service}.events", f"{service}.events.dlq"]
    # Declaring a queue needs `configure` on it (and, as it dead-letters, `read` on it and
    # `write` on the dead-letter exchange), binding it `write` on it and `read` on the
    # exchange; publishing needs `write` on the exchange; consuming, `read` on the queue.
    return Permissions(
        user=broker_user(service),
        configure=_any_of(exchanges + own),
        write=_any_of(exchanges + own),
        read=_any_of(exchanges + own),
        topic_write=f"^{re.escape(service)}\\.",
        # Binding keys are checked against the read pattern: a consumer binds any type it reads.
        topic_read=".*",
    )


def ops_permissions() -> Permissions:
    """The `ssu` command line: list, replay and purge dead letters of every service."""
    dead_letter_queues = [f"{s}.events.dlq" for s in sorted(CONSUMERS)]
    return Permissions(
        user=OPS_USER,
        configure="^$",
        # Replay publishes to the default exchange, routing key = the service's queue.
        write="^amq\\.default$",
        read=_any_of(dead_letter_queues),
        topic_write="^$",
        topic_read="^$",
        tags=("impersonator",),
    )


def all_permissions() -> list[Permissions]:
    return [permissions(s) for s in SERVICES] + [ops_permissions()]


def password_hash(password: str, *, salt: bytes) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password))."""
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(vhost: str, passwords: dict[str, str] | None = None) -> dict[str, list[JsonObject]]:
    """A RabbitMQ definitions document with the users, permissions and topic permissions.

    Passwords default to the development ones; the salt is derived from the user name so the
    committed development file is reproducible.
    """
    passwords = passwords or {}
    users: list[JsonObject] = []
    grants: list[JsonObject] = []
    topic_grants: list[JsonObject] = []
    for p in all_permissions():
        password = passwords.get(p.user, dev_password(p.user))
        salt = hashlib.sha256(p.user.encode()).digest()[:4]
        users.append(
            {
                "name": p.user,
                "password_hash": password_hash(password, salt=salt),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": list(p.tags),
            }
        )
        grants.append(
            {
                "user": p.user,
                "vhost": vhost,
                "configure": p.configure,
                "write": p.write,
                "read": p.read,
            }
        )
        topic_grants.append(
            {
                "user": p.user,
                "vhost": vhost,
                "exchange": EVENTS_EXCHANGE_NAME,
                "write": p.topic_write,
                "read": p.topic_read,
            }
        )
    return {
        "users": users,
        "vhosts": [{"name": vhost}],
        "permissions": grants,
        "topic_permissions": topic_grants,
    }


def apply(vhost: str, *, rabbitmqctl: str = "rabbitmqctl") -> None:
    """Create or update every identity on a local broker (idempotent; one `rabbitmqctl` call)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "definitions.json"
        path.write_text(json.dumps(definitions(vhost)), encoding="utf-8")
        path.chmod(0o644)  # rabbitmqctl hands the path to the broker, which may run as another user
        Path(tmp).chmod(0o755)
        subprocess.run(
            [rabbitmqctl, "-q", "import_definitions", str(path)], check=True, capture_output=True
        )
