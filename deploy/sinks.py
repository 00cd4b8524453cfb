"""Development sinks: an SMTP server (port 1025), an SMS gateway and an OTLP/HTTP trace
receiver (port 1026) that keep what they receive and list it over HTTP, so a person can read
the mail and SMS the demo produced and follow a request's trace through the services.

    python deploy/sinks.py [--smtp-port 1025] [--http-port 1026]

    GET  http://127.0.0.1:1026/mail     mail received (from, to, subject, body)
    POST http://127.0.0.1:1026/sms      the SMS gateway: JSON {"phone": ..., "text": ...}
    GET  http://127.0.0.1:1026/sms      SMS received
    POST http://127.0.0.1:1026/hooks/{name}  a webhook receiver (body and headers kept)
    GET  http://127.0.0.1:1026/hooks    webhook calls received
    POST http://127.0.0.1:1026/v1/traces  OTLP/HTTP spans (protobuf, or JSON)
    GET  http://127.0.0.1:1026/traces   traces received, newest first (id, root span, services)
    GET  http://127.0.0.1:1026/traces/{trace_id}  one trace's spans in start order
    DELETE http://127.0.0.1:1026/mail | /sms | /hooks | /traces   forget what was received

Tests start the same sinks in their own event loop (`start_sinks`), and can make the SMTP
server refuse the first n messages or every message, to exercise retries.
"""

import argparse
import asyncio
import base64
import contextlib
import email
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@dataclass
class Received:
    mail: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    traces: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add_spans(self, spans: list[dict[str, Any]]) -> None:
        for span in spans:
            self.traces.setdefault(span["trace_id"], []).append(span)


_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


def _otlp_value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue (JSON encoding) as plain JSON."""
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [_otlp_value(v) for v in value["arrayValue"].get("values", [])]
    return None


def _otlp_attributes(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: _otlp_value(a.get("value", {})) for a in items}


def otlp_spans(body: bytes, content_type: str) -> list[dict[str, Any]]:
    """Flat span records from an OTLP/HTTP export request, protobuf (the exporters' default)
    or JSON (ids in hex, as the OTLP JSON encoding says)."""
    if content_type.startswith("application/json"):
        doc = json.loads(body)
    else:
        # Imported here: the mail and SMS sinks work without the OpenTelemetry packages.
        from google.protobuf.json_format import MessageToDict
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        doc = MessageToDict(request)
        # MessageToDict writes bytes in base64; OTLP JSON writes ids in hex.
        for resource_spans in doc.get("resourceSpans", []):
            for scope_spans in resource_spans.get("scopeSpans", []):
                for span in scope_spans.get("spans", []):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if span.get(key):
                            span[key] = base64.b64decode(span[key]).hex()
    spans: list[dict[str, Any]] = []
    for resource_spans in doc.get("resourceSpans", []):
        resource = _otlp_attributes(resource_spans.get("resource", {}).get("attributes", []))
        for scope_spans in resource_spans.get("scopeSpans", []):
            scope = scope_spans.get("scope", {}).get("name", "")
            for span in scope_spans.get("spans", []):
                kind = span.get("kind", 0)
                start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
                spans.append(
                    {
                        "trace_id": span["traceId"],
                        "span_id": span["spanId"],
                        "parent_span_id": span.get("parentSpanId") or None,
                        "service": resource.get("service.name", "unknown"),
                        "name": span["name"],
                        "kind": kind if isinstance(kind, str) else _KINDS.get(kind, str(kind)),
                        "scope": scope,
                        "start_unix_nano": start,
                        "duration_ms": round((end - start) / 1e6, 3),
                        "status": span.get("status", {}).get("code", "STATUS_CODE_UNSET"),
                        "attributes": _otlp_attributes(span.get("attributes", [])),
                    }
                )
    return spans


class MailHandler:
    """aiosmtpd handler that keeps each message; it can refuse (451) to exercise retries."""

    def __init__(self, received: Received) -> None:
        self.received = received
        self.refuse_first = 0
        self.refuse_always = False
        self.attempts = 0
        self.attempted_at: list[float] = []  # monotonic time of every DATA, refused or not

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        self.attempted_at.append(time.monotonic())
        if self.refuse_always or self.attempts <= self.refuse_first:
            return "451 4.3.0 Temporary failure, try again later"
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        # compat32 parsing: the default policy's header objects are ten times slower.
        message = email.message_from_bytes(raw)
        self.received.mail.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "subject": str(make_header(decode_header(message["Subject"] or ""))),
                "body": _plain_text(message),
                "message_id": str(message["Message-ID"] or ""),
                "event_id": str(message["X-SSU-Event-Id"] or ""),
                "received_at": datetime.now(UTC).isoformat(),
                "monotonic": time.monotonic(),
            }
        )
        return "250 Message accepted"


def _plain_text(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                charset = part.get_content_charset() or "utf-8"
                return payload.decode(charset, errors="replace").replace("\r\n", "\n")
    return ""


def http_app(received: Received) -> Starlette:
    async def list_mail(_: Request) -> JSONResponse:
        return JSONResponse(received.mail)

    async def list_sms(_: Request) -> JSONResponse:
        return JSONResponse(received.sms)

    async def list_hooks(_: Request) -> JSONResponse:
        return JSONResponse(received.hooks)

    async def take_sms(request: Request) -> JSONResponse:
        try:
            doc = await request.json()
            phone, text = str(doc["phone"]), str(doc["text"])
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"detail": "expected JSON {phone, text}"}, status_code=400)
        received.sms.append(
            {
                "phone": phone,
                "text": text,
                "idempotency_key": request.headers.get("idempotency-key"),
                "traceparent": request.headers.get("traceparent"),
                "received_at": datetime.now(UTC).isoformat(),
                "monotonic": time.monotonic(),
            }
        )
        return JSONResponse({"status": "accepted"}, status_code=202)

    async def take_hook(request: Request) -> Response:
        body = await request.body()
        received.hooks.append(
            {
                "name": request.path_params["name"],
                "headers": dict(request.headers),
                "body": body.decode("utf-8", errors="replace"),
                "received_at": datetime.now(UTC).isoformat(),
            }
        )
        return Response(status_code=204)

    async def take_traces(request: Request) -> Response:
        try:
            spans = otlp_spans(await request.body(), request.headers.get("content-type", ""))
        except Exception as exc:  # a body we cannot read: tell the exporter, keep running
            return JSONResponse({"detail": f"not an OTLP trace export: {exc}"}, status_code=400)
        received.add_spans(spans)
        if request.headers.get("content-type", "").startswith("application/json"):
            return JSONResponse({})
        # An empty ExportTraceServiceResponse is an empty protobuf message.
        return Response(b"", media_type="application/x-protobuf")

    async def list_traces(_: Request) -> JSONResponse:
        summaries = []
        for trace_id, spans in received.traces.items():
            ids = {s["span_id"] for s in spans}
            roots = [s for s in spans if s["parent_span_id"] not in ids]
            first = min(roots or spans, key=lambda s: s["start_unix_nano"])
            summaries.append(
                {
                    "trace_id": trace_id,
                    "root": f"{first['service']}: {first['name']}",
                    "services": sorted({s["service"] for s in spans}),
                    "spans": len(spans),
                    "start_unix_nano": first["start_unix_nano"],
                }
            )
        summaries.sort(key=lambda t: t["start_unix_nano"], reverse=True)
        return JSONResponse(summaries)

    async def show_trace(request: Request) -> JSONResponse:
        spans = received.traces.get(request.path_params["trace_id"].lower())
        if spans is None:
            return JSONResponse({"detail": "no such trace (yet)"}, status_code=404)
        return JSONResponse(sorted(spans, key=lambda s: s["start_unix_nano"]))

    async def forget(request: Request) -> Response:
        getattr(received, request.url.path.strip("/")).clear()
        return Response(status_code=204)

    async def index(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "mail": len(received.mail),
                "sms": len(received.sms),
                "hooks": len(received.hooks),
                "traces": len(received.traces),
            }
        )

    return Starlette(
        routes=[
            Route("/", index),
            Route("/mail", list_mail, methods=["GET"]),
            Route("/sms", list_sms, methods=["GET"]),
            Route("/sms", take_sms, methods=["POST"]),
            Route("/hooks", list_hooks, methods=["GET"]),
            Route("/hooks/{name}", take_hook, methods=["POST"]),
            Route("/mail", forget, methods=["DELETE"]),
            Route("/sms", forget, methods=["DELETE"]),
            Route("/hooks", forget, methods=["DELETE"]),
            Route("/v1/traces", take_traces, methods=["POST"]),
            Route("/traces", list_traces, methods=["GET"]),
            Route("/traces/{trace_id}", show_trace, methods=["GET"]),
            Route("/traces", forget, methods=["DELETE"]),
        ]
    )


@dataclass
class Sinks:
    received: Received
    mail_handler: MailHandler
    smtp_port: int
    http_port: int
    _smtp_server: asyncio.Server
    _http_server: uvicorn.Server
    _http_task: "asyncio.Task[None]"

    @property
    def smtp_url(self) -> str:
        return f"smtp://127.0.0.1:{self.smtp_port}"

    @property
    def sms_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/sms"

    @property
    def otlp_endpoint(self) -> str:
        """For OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces)."""
        return f"http://127.0.0.1:{self.http_port}"

    def hook_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.http_port}/hooks/{name}"

    async def stop(self) -> None:
        self._smtp_server.close()
        with contextlib.suppress(Exception):
            await self._smtp_server.wait_closed()
        self._http_server.should_exit = True
        with contextlib.suppress(Exception):
            await self._http_task


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the caller owns the signals
        pass


async def start_sinks(*, host: str = "127.0.0.1", smtp_port: int = 0, http_port: int = 0) -> Sinks:
    """Start both sinks in the running loop; port 0 picks free ports."""
    received = Received()
    handler = MailHandler(received)
    loop = asyncio.get_running_loop()
    smtp_server = await loop.create_server(
        lambda: SMTP(handler, hostname="ssu-sink", enable_SMTPUTF8=True), host, smtp_port
    )
    actual_smtp = smtp_server.sockets[0].getsockname()[1]
    config = uvicorn.Config(
        http_app(received), host=host, port=http_port, log_level="warning", lifespan="off"
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    actual_http = server.servers[0].sockets[0].getsockname()[1]
    return Sinks(received, handler, actual_smtp, actual_http, smtp_server, server, task)


async def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=1026)
    args = parser.parse_args()
    sinks = await start_sinks(host=args.host, smtp_port=args.smtp_port, http_port=args.http_port)
    print(
        f"sinks: SMTP on {args.host}:{sinks.smtp_port}; SMS gateway and lists on "
        f"http://{args.host}:{sinks.http_port} (/mail, /sms, /hooks, /traces)",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await sinks.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
