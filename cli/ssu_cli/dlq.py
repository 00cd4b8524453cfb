"""Dead letters: list without consuming, replay into the service's own queue, purge."""

import json
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import HeadersType
from ssu_common import REASON_HEADER, connect_first, dlq_name, queue_name


@dataclass(frozen=True)
class DeadLetter:
    message_id: str | None
    routing_key: str
    reason: str
    dead_lettered_at: str
    body_preview: str


def _describe(message: aio_pika.abc.AbstractIncomingMessage) -> DeadLetter:
    headers: HeadersType = dict(message.headers or {})
    reason = headers.get(REASON_HEADER)
    routing_key = headers.get("x-ssu-original-routing-key")
    if reason is None:
        # Dead-lettered by the broker itself (delivery limit reached), not by our consumer.
        deaths = headers.get("x-death") or [{}]
        death = deaths[0] if isinstance(deaths, list) and deaths else {}
        reason = f"broker: {death.get('reason', 'unknown')!s}" if isinstance(death, dict) else "?"
        keys = death.get("routing-keys") if isinstance(death, dict) else None
        routing_key = keys[0] if isinstance(keys, list) and keys else message.routing_key
    return DeadLetter(
        message_id=message.message_id,
        routing_key=str(routing_key or ""),
        reason=str(reason.decode() if isinstance(reason, bytes) else reason),
        dead_lettered_at=str(headers.get("x-ssu-dead-lettered-at", "")),
        body_preview=message.body[:200].decode("utf-8", errors="replace"),
    )


async def list_dead_letters(amqp_url: str, service: str, limit: int) -> list[DeadLetter]:
    """Peek: take messages unacknowledged and close the channel, so all of them stay."""
    connection = await connect_first(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(dlq_name(service), passive=True)
        seen: list[DeadLetter] = []
        while len(seen) < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            seen.append(_describe(message))
        await channel.close()  # unacknowledged messages return to the queue
        return seen


async def replay(amqp_url: str, service: str, limit: int) -> int:
    """Move dead letters back into the service's queue (only that service sees them again)."""
    connection = await connect_first(amqp_url)
    moved = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(dlq_name(service), passive=True)
        while moved < limit:
            message = await queue.get(no_ack=False, fail=False)
            if message is None:
                break
            headers = {
                k: v
                for k, v in (message.headers or {}).items()
                if not k.startswith("x-ssu-") and k != "x-death"
            }
            headers["x-ssu-replayed"] = True
            await channel.default_exchange.publish(
                aio_pika.Message(
                    message.body,
                    headers=headers,
                    message_id=message.message_id,
                    correlation_id=message.correlation_id,
                    content_type=message.content_type,
                    # The publisher's identity, vouched for by the broker the first time; kept
                    # (the operators' identity may impersonate) so the consumer checks it again.
                    user_id=message.user_id,
                    type=message.type,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                ),
                routing_key=queue_name(service),
            )
            await message.ack()  # only after the broker confirmed the copy
            moved += 1
    return moved


async def purge(amqp_url: str, service: str) -> int:
    connection = await connect_first(amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(dlq_name(service), passive=True)
        result = await queue.purge()
        return int(result.message_count or 0)


def as_json(letters: list[DeadLetter]) -> str:
    return json.dumps([letter.__dict__ for letter in letters], ensure_ascii=False, indent=2)
