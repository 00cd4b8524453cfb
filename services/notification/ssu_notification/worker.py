"""The delivery worker: a background job that sends due deliveries and records the outcome.

Due rows are claimed with a lease (their next attempt moves into the future), sent
concurrently under per-channel rate limits, and their outcomes written in one transaction.
Retry times live in the database, so a restarted process picks up where it left off.
"""

import asyncio
from uuid import UUID

import asyncpg
import httpx
from ssu_common import ServiceRuntime, get_logger, tracing

from ssu_notification import channels, service, store
from ssu_notification.settings import Settings

log = get_logger(__name__)


class DeliveryWorker:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        settings: Settings,
        client: httpx.AsyncClient,
        resolver: channels.Resolver = channels.system_resolver,
    ):
        self.pool = pool
        self.settings = settings
        self.client = client
        self.resolver = resolver
        self.smtp = channels.parse_smtp_url(settings.smtp_url)
        self.limits = {
            "email": channels.RateLimit(settings.email_per_second),
            "sms": channels.RateLimit(settings.sms_per_second),
            "webhook": channels.RateLimit(settings.webhook_per_second),
        }

    async def run_once(self) -> int:
        """Send one batch of due deliveries; returns how many were attempted."""
        s = self.settings
        async with self.pool.acquire() as conn:
            rows = await store.claim_due_deliveries(
                conn, limit=s.worker_batch, lease_seconds=s.worker_lease_seconds
            )
            hook_ids = list({r.subscription_id for r in rows if r.subscription_id})
            secrets = await store.subscription_secrets(conn, hook_ids) if hook_ids else {}
        if not rows:
            return 0
        emails = [r for r in rows if r.channel == "email"]
        others = [r for r in rows if r.channel != "email"]
        # Mail goes out over a few reused SMTP connections, each sending its share in turn.
        lanes = max(1, min(s.smtp_connections, len(emails)))
        mailed, sent = await asyncio.gather(
            asyncio.gather(
                *(self._mail_lane(emails[i::lanes]) for i in range(lanes) if emails[i::lanes])
            ),
            asyncio.gather(*(self._attempt(row, secrets) for row in others)),
        )
        attempts = [a for lane in mailed for a in lane] + list(sent)
        async with self.pool.acquire() as conn:
            await service.record_attempts(
                conn=conn,
                attempts=attempts,
                max_attempts=s.max_attempts,
                retry_base_seconds=s.retry_base_seconds,
                retry_max_seconds=s.retry_max_seconds,
            )
        return len(rows)

    async def _mail_lane(self, rows: list[store.DueDelivery]) -> list[service.Attempt]:
        session = channels.SmtpSession(self.smtp, timeout=self.settings.send_timeout_seconds)
        try:
            return [await self._attempt(row, {}, session) for row in rows]
        finally:
            await session.close()

    async def _attempt(
        self,
        row: store.DueDelivery,
        secrets: dict[UUID, list[str]],
        session: channels.SmtpSession | None = None,
    ) -> service.Attempt:
        error: str | None = None
        give_up = False
        channel = row.channel
        try:
            if channel == "webhook" and row.subscription_id not in secrets:
                give_up = True
                raise channels.SendError("webhook: the subscription was deleted")
            await self.limits[channel].wait()
            # The send belongs to the trace of the event that queued it.
            with (
                tracing.continued(row.traceparent),
                tracing.span(f"{channel} delivery", **{"ssu.delivery.id": str(row.id)}),
            ):
                await self._send(row, secrets, session)
        except channels.SendError as exc:
            error = str(exc)
        except Exception as exc:  # a bug must not stop the other deliveries of the batch
            error = f"{type(exc).__name__}: {exc}"
            log.exception("delivery.unexpected_error", delivery_id=str(row.id))
        if error is None:
            log.info("delivery.sent", delivery_id=str(row.id), channel=channel)
        else:
            log.warning(
                "delivery.attempt_failed",
                delivery_id=str(row.id),
                channel=channel,
                attempt=row.attempts + 1,
                error=error,
            )
        return service.Attempt(
            id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            correlation_id=row.correlation_id,
            channel=channel,
            attempts_before=row.attempts,
            error=error,
            give_up=give_up,
        )

    async def _send(
        self,
        row: store.DueDelivery,
        secrets: dict[UUID, list[str]],
        session: channels.SmtpSession | None,
    ) -> None:
        timeout = self.settings.send_timeout_seconds
        channel = row.channel
        if channel == "email":
            assert session is not None
            message = channels.email_bytes(
                sender=self.settings.mail_from,
                to=row.destination,
                subject=row.subject or "",
                body=row.body,
                message_id=str(row.id),
                event_id=row.event_id,
            )
            await session.send(sender=self.settings.mail_from, to=row.destination, message=message)
        elif channel == "sms":
            await channels.send_sms(
                client=self.client,
                url=self.settings.sms_url,
                phone=row.destination,
                text=row.body,
                timeout=timeout,
                delivery_id=str(row.id),
            )
        elif channel == "webhook":
            subscription_id = row.subscription_id
            assert subscription_id is not None  # checked by _attempt
            await channels.send_webhook(
                url=row.destination,
                body=row.body.encode(),
                secrets=secrets[subscription_id],
                resolver=self.resolver,
                delivery_id=str(row.id),
                event_id=row.event_id,
                event_type=row.event_type,
                timeout=timeout,
                allow_loopback=self.settings.allow_loopback_webhooks,
            )
        else:
            raise channels.SendError(f"unknown channel {channel!r}")

    async def run(self) -> None:
        """Send until cancelled; back off while the database is unavailable."""
        backoff = 0.5
        while True:
            try:
                sent = await self.run_once()
                backoff = 0.5
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("delivery.worker_failed", error=repr(exc))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            if sent < self.settings.worker_batch:
                await asyncio.sleep(self.settings.worker_poll_seconds)


async def delivery_worker(
    runtime: ServiceRuntime, *, resolver: channels.Resolver = channels.system_resolver
) -> None:
    """Background job of the service runtime: the delivery worker."""
    settings = runtime.settings
    assert isinstance(settings, Settings)
    async with httpx.AsyncClient() as client:
        worker = DeliveryWorker(
            pool=runtime.pool, settings=settings, client=client, resolver=resolver
        )
        await worker.run()
