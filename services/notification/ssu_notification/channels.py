"""The three ways out: email over SMTP, SMS through an HTTP gateway, signed webhooks (Standard
Webhooks signatures, one resolution of the callback host, that address connected to).

Every call is bounded by a timeout; a failure raises `SendError` with a reason for the log.
"""

import asyncio
import base64
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpcore
import httpx

from ssu_notification import domain

CRLF = "\r\n"


class SendError(Exception):
    """A delivery attempt failed; the message says why."""


@dataclass(frozen=True)
class SmtpTarget:
    hostname: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None


def parse_smtp_url(url: str) -> SmtpTarget:
    """`smtp://[user:pass@]host:port` (plain or STARTTLS when offered), `smtps://` (TLS)."""
    parts = urlsplit(url)
    if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
        raise ValueError(f"SMTP URL must be smtp:// or smtps:// with a host, got {url!r}")
    tls = parts.scheme == "smtps"
    return SmtpTarget(
        hostname=parts.hostname,
        port=parts.port or (465 if tls else 25),
        use_tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def email_bytes(
    *, sender: str, to: str, subject: str, body: str, message_id: str, event_id: str
) -> bytes:
    """A plain-text UTF-8 message, composed directly (the email package's header objects cost
    more than the whole SMTP exchange): RFC 2047 subject, base64 body, CRLF line ends."""
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {Header(subject, 'utf-8').encode(linesep=CRLF)}",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: <{message_id}@ssu.notification>",
        f"X-SSU-Event-Id: {event_id}",
        "MIME-Version: 1.0",
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: base64",
    ]
    encoded = base64.encodebytes(body.encode("utf-8")).decode("ascii").replace("\n", CRLF)
    return (CRLF.join(headers) + CRLF + CRLF + encoded).encode("ascii")


class SmtpSession:
    """One SMTP connection reused for many messages; reconnects after it is lost."""

    def __init__(self, target: SmtpTarget, *, timeout: float) -> None:
        self._target = target
        self._timeout = timeout
        self._client: aiosmtplib.SMTP | None = None

    async def send(self, *, sender: str, to: str, message: bytes) -> None:
        try:
            if self._client is None or not self._client.is_connected:
                client = aiosmtplib.SMTP(
                    hostname=self._target.hostname,
                    port=self._target.port,
                    use_tls=self._target.use_tls,
                    start_tls=None if not self._target.use_tls else False,
                    username=self._target.username,
                    password=self._target.password,
                    timeout=self._timeout,
                )
                await client.connect()
                self._client = client
            await self._client.sendmail(sender, [to], message, timeout=self._timeout)
        except aiosmtplib.SMTPResponseException as exc:
            # The server answered (refused this message); the connection stays usable
            # unless it said goodbye.
            if exc.code == 421:
                await self.close()
            raise SendError(f"smtp: {type(exc).__name__}: {exc}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await self.close()
            raise SendError(f"smtp: {type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await client.quit(timeout=self._timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


async def send_sms(
    *,
    client: httpx.AsyncClient,
    url: str,
    phone: str,
    text: str,
    timeout: float,
    delivery_id: str | None = None,
) -> None:
    # A worker killed after the gateway accepted and before the outcome was recorded sends
    # again: the delivery id as idempotency key lets the gateway drop the repeat (as the
    # Message-ID does for mail).
    headers = {"Idempotency-Key": delivery_id} if delivery_id else None
    try:
        response = await client.post(
            url, json={"phone": phone, "text": text}, headers=headers, timeout=timeout
        )
    except httpx.HTTPError as exc:
        raise SendError(f"sms: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise SendError(f"sms: gateway answered {response.status_code}")


Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of a host name as the system resolver answers, in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class PinnedAddress:
    """A callback host resolved once: the address that was checked, and will be connected to."""

    host: str
    port: int
    ip: str


async def resolve_callback(
    url: str, *, resolver: Resolver, timeout: float, allow_loopback: bool
) -> PinnedAddress:
    """Resolve the callback's host once and refuse it when any answer is a special-purpose
    address (development may allow loopback); the first answer is pinned."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        ipaddress.ip_address(host)
        addresses = [host]
    except ValueError:
        try:
            addresses = await asyncio.wait_for(resolver(host, port), timeout)
        except (OSError, TimeoutError) as exc:
            raise SendError(f"webhook: cannot resolve {host}: {exc}") from exc
    if not addresses:
        raise SendError(f"webhook: {host} has no address")
    if any(domain.refused_destination(a, allow_loopback=allow_loopback) for a in addresses):
        raise SendError(f"webhook: {host} resolves to a special-purpose address")
    return PinnedAddress(host=host, port=port, ip=addresses[0])


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects every request to the pinned address; TLS still verifies and sends the
    callback's host name (SNI), and the Host header is the URL's."""

    def __init__(self, ip: str) -> None:
        self._ip = ip
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            self._ip,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks never connect to a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_transport(ip: str, ssl_context: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connections all go to `ip`, no proxy from the environment."""
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, trust_env=False)
    # httpx builds its httpcore pool without a way to pass a network backend: replace it with
    # the same pool on the pinned backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context, max_connections=1, network_backend=_PinnedBackend(ip)
    )
    return transport


async def send_webhook(
    *,
    url: str,
    body: bytes,
    secrets: list[str],
    delivery_id: str,
    event_id: str,
    event_type: str,
    timeout: float,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
    allow_loopback: bool = False,
) -> None:
    """POST the envelope, signed after Standard Webhooks, to the one address checked; a
    redirect is a failure, never followed. `webhook-id` is the delivery id: a retry of one
    delivery keeps it, so the receiver can drop duplicates."""
    pinned = await resolve_callback(
        url, resolver=resolver, timeout=timeout, allow_loopback=allow_loopback
    )
    headers = {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        **domain.webhook_headers(
            message_id=delivery_id, body=body, secrets_=secrets, at=datetime.now(UTC)
        ),
        "X-SSU-Event-Id": event_id,
        "X-SSU-Event-Type": event_type,
    }
    transport = pinned_transport(pinned.ip, ssl_context or _default_ssl_context())
    try:
        async with httpx.AsyncClient(transport=transport, follow_redirects=False) as client:
            response = await client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SendError(
            f"webhook: {pinned.host} at {pinned.ip}: {type(exc).__name__}: {exc}"
        ) from exc
    if response.is_redirect:
        raise SendError(f"webhook: callback answered {response.status_code} (not followed)")
    if response.status_code >= 300:
        raise SendError(f"webhook: callback answered {response.status_code}")


_SSL: list[ssl.SSLContext] = []


def _default_ssl_context() -> ssl.SSLContext:
    # Loading the trust store costs milliseconds: once per process.
    if not _SSL:
        _SSL.append(httpx.create_ssl_context())
    return _SSL[0]


class RateLimit:
    """At most `per_second` starts per second in this process (0: unlimited), evenly spaced."""

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second if per_second > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self._interval:
            return
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)
