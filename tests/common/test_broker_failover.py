"""Several broker addresses: the service connects to one that answers and, when the node it
uses goes away, reconnects to the next; a publish after the loss is confirmed.

Two TCP relays in front of this machine's RabbitMQ stand for two nodes of a cluster, so the
test cuts one "node" without disturbing anyone else (the three-node cluster itself runs in
`make test-cluster`).
"""

import asyncio

import aio_pika
import pytest
from harness import AMQP_URL, VHOST, TcpProxy, eventually, free_port
from prometheus_client import CollectorRegistry
from ssu_common.messaging import broker_addresses, connect_first, create_broker


def test_the_addresses_are_a_comma_separated_list() -> None:
    assert broker_addresses(" amqp://a:b@n1:5672/v , amqp://a:b@n2:5672/v,") == [
        "amqp://a:b@n1:5672/v",
        "amqp://a:b@n2:5672/v",
    ]
    assert broker_addresses("amqp://guest:guest@127.0.0.1:5672/") == [
        "amqp://guest:guest@127.0.0.1:5672/"
    ]
    with pytest.raises(ValueError, match="names no broker"):
        broker_addresses(" , ")


async def test_connect_first_skips_a_node_that_does_not_answer() -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/{VHOST}"
    connection = await connect_first(f"{dead},{AMQP_URL}", timeout=3)
    try:
        assert connection.url.port == 5672
    finally:
        await connection.close()


async def test_the_broker_moves_to_the_next_node_when_its_node_goes_away() -> None:
    node_a, node_b = TcpProxy(), TcpProxy()
    await node_a.start()
    await node_b.start()
    broker = create_broker(
        url=f"{node_a.amqp_url},{node_b.amqp_url}",
        service="failover-test",
        registry=CollectorRegistry(),
    )
    try:
        await broker.connect()
        connection = broker._connection
        assert connection is not None
        first = connection.url.port
        assert first in (node_a.port, node_b.port)
        used, other = (node_a, node_b) if first == node_a.port else (node_b, node_a)
        # The node in use dies and stays dead: aio-pika alone would retry it for ever.
        await used.cut()
        await eventually(
            lambda: connection.url.port == other.port and connection.connected.is_set(),
            timeout=20,
        )
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(exclusive=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b"after the failover"), routing_key=queue.name, timeout=5
        )
        message = await queue.get(timeout=5)
        assert message.body == b"after the failover"
    finally:
        await broker.stop()
        await node_a.cut()
        await node_b.cut()
        await asyncio.sleep(0)
