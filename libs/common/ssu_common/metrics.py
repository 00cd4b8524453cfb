"""Prometheus metrics of one service process, on a registry of its own (DESIGN §7)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from ssu_common.db import Connection

EVENT_OUTCOMES = ("handled", "duplicate", "retried", "dead_lettered")


@dataclass
class Metrics:
    service: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        # process_* (CPU, memory, open files) and python_gc_* / python_info, on our registry.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
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
        self.outbox_parked = Gauge(
            "ssu_outbox_parked",
            "Outbox events parked as unroutable (no queue bound to their type)",
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
            "ssu_ready",
            "1 when the process can serve its API (its required dependencies answer)",
            ["service"],
            registry=r,
        )
        self.dependency_up = Gauge(
            "ssu_dependency_up",
            "1 when a dependency (database, broker) answers this process",
            ["service", "dependency"],
            registry=r,
        )
        self.event_age = Histogram(
            "ssu_event_age_seconds",
            "Age of an event (now minus its CloudEvents time) when this service received it",
            ["service", "event_type"],
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
        )

    def initialise(self, *, event_types: list[str], routes: list[tuple[str, str]]) -> None:
        """Create every counter series whose labels are known at start at 0, so `increase()`
        sees the first burst after a restart instead of a series that appears with it."""
        service = self.service
        self.outbox_published.labels(service)
        self.dead_lettered.labels(service)
        for event_type in event_types:
            for outcome in EVENT_OUTCOMES:
                self.events.labels(service, event_type, outcome)
            self.event_age.labels(service, event_type)
        self.events.labels(service, "invalid", "dead_lettered")
        for method, route in routes:
            # The status of a request is known only once it is answered; the one an error
            # ratio needs from the start is the server error.
            self.http_requests.labels(service, method, route, "500")


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
