"""A service that starts before its broker is reachable waits for it instead of exiting."""

import asyncio

import probe_service
import pytest
from harness import TcpProxy, reset_service


async def test_start_waits_for_an_unreachable_broker() -> None:
    await reset_service("probe")
    proxy = TcpProxy()  # not started: nothing listens on its port yet
    runtime = probe_service.build(amqp_url=proxy.amqp_url)
    starting = asyncio.create_task(runtime.start())
    await asyncio.sleep(1.5)
    assert not starting.done()
    await proxy.start()
    await asyncio.wait_for(starting, timeout=20)
    try:
        assert (await runtime.readiness()).checks == {"database": "ok", "broker": "ok"}
    finally:
        await runtime.stop()
        await proxy.cut()


async def test_start_gives_up_after_the_startup_timeout() -> None:
    proxy = TcpProxy()
    runtime = probe_service.build(amqp_url=proxy.amqp_url, startup_timeout_seconds=2.0)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        with pytest.raises(TimeoutError):
            await runtime.start()
        assert loop.time() - started < 6
    finally:
        await runtime.stop()
