from datetime import date

import probe_service
from harness import event_probe, eventually, reset_service, running_service
from ssu_contracts import RecipientRegisteredV1


async def test_event_goes_out_and_comes_back_in() -> None:
    await reset_service("probe")
    await reset_service("probe_registry")
    async with (
        event_probe("registry.#") as probe,
        running_service(probe_service.build()) as svc,
        running_service(probe_service.build(publishes_as="registry")) as producer,
    ):
        event = RecipientRegisteredV1(
            iin="791028302728",
            full_name="Айгерим",
            birth_date=date(1979, 10, 28),
            category="adult_disability",
            region="630000000",
            language="kk",
        )
        async with producer.pool.acquire() as conn:
            env = await probe_service.write_thing_and_event(conn, "t1", event)
        got = await probe.wait_for(lambda e: e["id"] == env.id)
        assert got["data"]["full_name"] == "Айгерим"
        assert got["source"] == "/ssu/registry"

        async def applied() -> int:
            return await svc.pool.fetchval("SELECT count(*) FROM effects WHERE event_id=$1", env.id)

        assert await eventually(applied) == 1
