"""The producer's HTTP write path under concurrency (not a fault test: runs in `make test`).

Regression: every write request once appended to the audit chain while it still held its
pooled connection; with the audit record taken from the same pool, as many concurrent writes
as the pool has connections (SSU_DB_POOL_MAX, 10) deadlocked the service for good. Now each
write's record is part of its own transaction, so concurrent writes each leave one record.
"""

import asyncio
from pathlib import Path

import httpx
from fault_world import PRODUCER, spawn
from harness import ADMIN, reset_service, wait_ready

WRITES = 60


async def test_many_concurrent_writes_are_all_answered(tmp_path: Path) -> None:
    await reset_service(PRODUCER)
    producer = spawn("producer", PRODUCER, tmp_path)
    try:
        await wait_ready(producer)
        async with httpx.AsyncClient(headers=ADMIN, timeout=20) as client:
            answers = await asyncio.gather(
                *(client.post(f"{producer.url}/v1/things", json={"seq": i}) for i in range(WRITES))
            )
            assert [r.status_code for r in answers] == [201] * WRITES
            audit = await client.get(f"{producer.url}/v1/audit", params={"limit": 1000})
        assert audit.status_code == 200
        writes = [
            e["aggregate_id"] for e in audit.json()["items"] if e["action"] == "thing.created"
        ]
        assert sorted(writes, key=int) == [str(i) for i in range(WRITES)]
    finally:
        producer.stop()
