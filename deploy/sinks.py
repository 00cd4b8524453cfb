"""Development sinks: an SMTP server (port 1025) and an SMS gateway (port 1026) that keep what
they receive and list it over HTTP, so a person can read the mail and SMS the demo produced.

    python deploy/sinks.py [--smtp-port 1025] [--http-port 1026]

    GET  http://127.0.0.1:1026/mail     mail received (from, to, subject, body)
    POST http://127.0.0.1:1026/sms      the SMS gateway: JSON {"phone": ..., "text": ...}
    GET  http://127.0.0.1:1026/sms      SMS received
    POST http://127.0.0.1:1026/hooks/{name}  a webhook receiver (body and headers kept)
    GET  http://127.0.0.1:1026/hooks    webhook calls received
    DELETE http://127.0.0.1:1026/mail | /sms | /hooks   forget what was received

Tests start the same sinks in their own event loop (`start_sinks`), and can make the SMTP
server refuse the first n messages or every message, to exercise retries.
"""

import argparse
import asyncio
import contextlib
import email
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

    async def forget(request: Request) -> Response:
        getattr(received, request.url.path.strip("/")).clear()
        return Response(status_code=204)

    async def index(_: Request) -> JSONResponse:
        return JSONResponse(
            {"mail": len(received.mail), "sms": len(received.sms), "hooks": len(received.hooks)}
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
        f"http://{args.host}:{sinks.http_port} (/mail, /sms, /hooks)",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await sinks.stop()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
