"""The three ways out: email over SMTP, SMS through an HTTP gateway, signed webhooks.

Every call is bounded by a timeout; a failure raises `SendError` with a reason for the log.
"""

import asyncio
import base64
import time
from dataclasses import dataclass
from email.header import Header
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpx

from ssu_notification.domain import is_private_address, sign

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


async def send_webhook(
    *,
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    secret: str,
    delivery_id: str,
    event_id: str,
    event_type: str,
    timeout: float,
    allow_private: bool = False,
) -> None:
    if not allow_private:
        await _refuse_private_destination(url, timeout=timeout)
    headers = {
        "Content-Type": "application/cloudevents+json; charset=utf-8",
        "X-SSU-Signature": sign(body, secret),
        "X-SSU-Delivery": delivery_id,
        "X-SSU-Event-Id": event_id,
        "X-SSU-Event-Type": event_type,
    }
    try:
        response = await client.post(
            url, content=body, headers=headers, timeout=timeout, follow_redirects=False
        )
    except httpx.HTTPError as exc:
        raise SendError(f"webhook: {type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise SendError(f"webhook: callback answered {response.status_code}")


async def _refuse_private_destination(url: str, *, timeout: float) -> None:
    """A callback host that resolves (now, at delivery) into our own networks is refused:
    checking only at subscription would let a DNS change point it inside later."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, parts.port or 443), timeout
        )
    except (OSError, TimeoutError) as exc:
        raise SendError(f"webhook: cannot resolve {host}: {exc}") from exc
    if any(is_private_address(str(info[4][0])) for info in infos):
        raise SendError(f"webhook: {host} resolves to a loopback or private address")


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
