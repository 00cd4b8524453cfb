"""Prometheus metrics of one service process, on a registry of its own (DESIGN §7)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ssu_common.db import Connection


@dataclass
class Metrics:
    service: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "ssu_http_requests_total",
            "HTTP requests handled",
            ["service", "method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "ssu_http_request_duration_seconds",
            "HTTP request latency",
            ["service", "method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.outbox_pending = Gauge(
            "ssu_outbox_pending", "Outbox events not yet published", ["service"], registry=r
        )
        self.outbox_oldest = Gauge(
            "ssu_outbox_oldest_seconds",
            "Age of the oldest unpublished outbox event",
            ["service"],
            registry=r,
        )
        self.outbox_published = Counter(
            "ssu_outbox_published_total",
            "Outbox events published (confirmed by the broker)",
            ["service"],
            registry=r,
        )
        self.dlq_messages = Gauge(
            "ssu_dlq_messages",
            "Messages in the service's dead-letter queue",
            ["service"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "ssu_dead_lettered_total",
            "Messages this process dead-lettered",
            ["service"],
            registry=r,
        )
        self.events = Counter(
            "ssu_events_total",
            "Events consumed, by type and outcome (handled, duplicate, retried, dead_lettered)",
            ["service", "event_type", "outcome"],
            registry=r,
        )
        self.ready = Gauge(
            "ssu_ready", "1 when the database and the broker answer", ["service"], registry=r
        )


GaugeRows = list[tuple[dict[str, str], float]]


@dataclass(frozen=True)
class DomainGauge:
    """A gauge read from the service's own database at scrape time (licenses by status…).

    `collect` is a store function: one set-based query returning (labels, value) rows.
    """

    name: str
    help: str
    labels: tuple[str, ...]
    collect: Callable[[Connection], Awaitable[GaugeRows]]
