"""OpenTelemetry traces: one trace from an HTTP request through every outbox, queue and handler
to the SMTP, SMS or webhook call that ends it.

Nothing is set up unless an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, as the OpenTelemetry specification names them): then no
instrumentation is installed and every helper here returns at its first line, so the online
path pays nothing for tracing it does not export.

Where a trace crosses a place that outlives the call (an outbox row, a queued delivery), the
W3C `traceparent` of the span that wrote it is stored beside it and `continued` resumes it.
The aio-pika instrumentation makes the send and receive spans and carries `traceparent` in
the AMQP headers; `processing` opens the span in which a consumer applies an event (our batch
worker runs apart from the receive callback).
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes, AttributeValue

if TYPE_CHECKING:
    # The SDK is loaded only by a process that exports (`configure`).
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "ssu"


class _State:
    enabled = False
    provider: "TracerProvider | None" = None


def enabled() -> bool:
    return _State.enabled


def configure(service: str, endpoint: str | None) -> bool:
    """Export this process's spans over OTLP/HTTP when an endpoint is set; returns whether."""
    if not endpoint or _State.enabled:
        return _State.enabled
    # Imported here: a process that exports nothing never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import (
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )

    class NoLoneQueries(Sampler):
        """Root sampler: a database query outside any request or event (the relay's polling,
        the LISTEN pings, the worker's claims) starts no trace of its own."""

        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            if attributes and ("db.system" in attributes or "db.system.name" in attributes):
                return SamplingResult(Decision.DROP)
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)

        def get_description(self) -> str:
            return "NoLoneQueries"

    provider = TracerProvider(
        # Resource.create merges OTEL_RESOURCE_ATTRIBUTES (pod, node) over these.
        resource=Resource.create({"service.name": service, "service.namespace": "ssu"}),
        sampler=ParentBased(root=NoLoneQueries()),
    )
    # The exporter reads the rest of the standard variables itself (headers, timeout,
    # protocol, the /v1/traces path appended to OTEL_EXPORTER_OTLP_ENDPOINT).
    provider.add_span_processor(BatchSpanProcessor(_masking(OTLPSpanExporter())))
    trace.set_tracer_provider(provider)
    # Query parameters are personal data (IINs, names): the instrumentation keeps them out
    # unless capture_parameters is set, which it never is here.
    AsyncPGInstrumentor().instrument(tracer_provider=provider)
    AioPikaInstrumentor().instrument(tracer_provider=provider)
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    _State.enabled, _State.provider = True, provider
    return True


def _masking(exporter: "SpanExporter") -> "SpanExporter":
    """An exporter that masks IINs, phones and emails in span names, attributes and events
    before they leave the process, as the logs do: a server span's `url.path` holds
    `/v1/recipients/<iin>`, a recorded exception the database's `Key (iin)=(...)`."""
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from ssu_common.logging import mask_pii

    def clean(attributes: Attributes) -> dict[str, AttributeValue]:
        return {
            key: mask_pii(value) if isinstance(value, str) else value
            for key, value in (attributes or {}).items()
        }

    def masked(span: ReadableSpan) -> ReadableSpan:
        return ReadableSpan(
            name=mask_pii(span.name),
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=clean(span.attributes),
            events=[Event(e.name, clean(e.attributes), e.timestamp) for e in span.events],
            links=span.links,
            kind=span.kind,
            status=span.status,
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )

    class Masking(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return exporter.export([masked(span) for span in spans])  # type: ignore[no-any-return]

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return exporter.force_flush(timeout_millis)  # type: ignore[no-any-return]

    return Masking()


def instrument_app(app: "FastAPI", *, excluded: Sequence[str]) -> None:
    """Server spans for a FastAPI app (probes and scrapes left out)."""
    if not _State.enabled:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_State.provider,
        excluded_urls=",".join(excluded),
        # One span per request, not one per ASGI message.
        exclude_spans=["receive", "send"],
    )


def flush() -> None:
    """Export what is buffered (the process is stopping)."""
    if _State.provider is not None:
        _State.provider.force_flush(timeout_millis=5000)


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, to store beside work that continues later."""
    if not _State.enabled:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def current_trace_id() -> str | None:
    """The current trace id in hex (for log lines), or None."""
    if not _State.enabled:
        return None
    span_context = trace.get_current_span().get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else None


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Resume the trace a stored traceparent names, for the length of the block."""
    if not _State.enabled or not traceparent:
        yield
        return
    token = context.attach(_PROPAGATOR.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)


def captured() -> Context | None:
    """The current context, to hand work over to another task (the consumer's batch worker)."""
    return context.get_current() if _State.enabled else None


@contextmanager
def processing(parent: Context | None, event_type: str, event_id: str) -> Iterator[None]:
    """The consumer span in which one event is applied, child of its receive span."""
    if not _State.enabled:
        yield
        return
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        f"{event_type} process",
        context=parent,
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "rabbitmq",
            "messaging.operation.type": "process",
            "messaging.destination.name": event_type,
            "messaging.message.id": event_id,
        },
    ):
        yield


@contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """A client span around a call no instrumentation covers (an SMTP exchange)."""
    if not _State.enabled:
        yield
        return
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
        yield
