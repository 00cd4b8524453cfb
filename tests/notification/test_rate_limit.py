"""The per-channel rate limit holds: SMS leave no faster than the configured rate."""

from typing import Any

import pytest
import pytest_asyncio
from harness import eventually
from notification_world import license_fields, new_bin, notification_world, publish
from ssu_contracts import LicenseIssuedV1

pytestmark = pytest.mark.asyncio(loop_scope="session")

PER_SECOND = 5.0
COUNT = 10


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> Any:
    async with notification_world(sms_per_second=PER_SECOND) as w:
        yield w


async def test_sms_rate_limit_is_held(world: Any) -> None:
    svc, sinks = world
    bins = [new_bin() for _ in range(COUNT)]
    for bin_ in bins:
        await publish(LicenseIssuedV1(**license_fields(bin_, email=None)))
    numbers = {f"L-{b[-6:]}" for b in bins}

    def arrived() -> list[float] | None:
        times = [s["monotonic"] for s in sinks.received.sms if any(n in s["text"] for n in numbers)]
        return sorted(times) if len(times) == COUNT else None

    times = await eventually(arrived, timeout=20)
    # Sends start 1/rate apart; arrival times jitter on a busy machine, hence the slack.
    assert times[-1] - times[0] >= (COUNT - 1) / PER_SECOND - 0.3, times
    in_first_second = [t for t in times if t < times[0] + 1.0]
    assert len(in_first_second) <= PER_SECOND + 1, times
    sent = await svc.pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE channel = 'sms' AND status = 'sent'"
    )
    assert sent == COUNT
