"""The broker's ceiling for `bench/pipeline.py`: raw aio-pika, no database, no outbox, no inbox.

Two roles, each its own process, driven by the benchmark over stdin/stdout:

    python bench/pipeline_raw.py publisher AMQP_URL BODY_FILE
        reads "rate count first_seq" lines (rate 0 = as fast as it can) and publishes `count`
        persistent messages with publisher confirms (many in flight), then answers
        "done first_seq count seconds"; "quit" ends it.
    python bench/pipeline_raw.py consumer AMQP_URL PREFETCH
        consumes with manual acks and writes "seq published_at received_at" lines.

Exchange, queue type (durable quorum queue), persistence and message size are those of the
reliable path, so the difference between the two is what the outbox, relay and inbox cost.
"""

# bench/http.py sits beside this script: with the script's folder first on the path it would
# hide the standard library's `http` from everything imported after (httpx, asyncpg, uvicorn).
import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import asyncio
import time

import aio_pika

EXCHANGE = "bench.raw"
QUEUE = "bench_raw.events"
ROUTING_KEY = "bench.raw.event"
WINDOW = 1000  # publishes awaiting their confirm at once


async def declare(channel: aio_pika.abc.AbstractChannel) -> aio_pika.abc.AbstractExchange:
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
    queue = await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})
    await queue.bind(exchange, routing_key=ROUTING_KEY)
    return exchange


async def publisher(url: str, body_file: str) -> None:
    body = open(body_file, "rb").read()  # noqa: ASYNC230 - once, before any work
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await declare(channel)
    window = asyncio.Semaphore(WINDOW)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def publish(seq: int) -> None:
        try:
            await exchange.publish(
                aio_pika.Message(
                    body,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    content_type="application/cloudevents+json",
                    # "seq publish-time-in-µs" (AMQP header floats are single precision).
                    message_id=f"{seq} {time.time_ns() // 1000}",
                ),
                routing_key=ROUTING_KEY,
                mandatory=True,
            )
        finally:
            window.release()

    while line := (await reader.readline()).decode().strip():
        if line == "quit":
            break
        rate, count, first = (float(x) for x in line.split())
        started = time.monotonic()
        tasks = []
        for i in range(int(count)):
            if rate:
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await window.acquire()
            tasks.append(asyncio.create_task(publish(int(first) + i)))
        await asyncio.gather(*tasks)
        print(f"done {int(first)} {int(count)} {time.monotonic() - started:.3f}", flush=True)
    await connection.close()


async def consumer(url: str, prefetch: int) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    await declare(channel)
    queue = await channel.get_queue(QUEUE)
    lines: list[str] = []

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        lines.append(f"{message.message_id} {time.time_ns() // 1000}\n")
        await message.ack()

    await queue.consume(on_message)
    print("ready", flush=True)
    while True:
        await asyncio.sleep(0.05)
        if lines:
            sys.stdout.write("".join(lines))
            sys.stdout.flush()
            lines.clear()


def main() -> None:
    role, url, arg = sys.argv[1:4]
    if role == "publisher":
        asyncio.run(publisher(url, arg))
    else:
        asyncio.run(consumer(url, int(arg)))


if __name__ == "__main__":
    main()
