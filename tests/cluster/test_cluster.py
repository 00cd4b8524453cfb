"""Two replicas of every service on a three-node RabbitMQ cluster, under the faults a
national system meets: the node leading the queues killed, one replica of each service
SIGKILLed, a node restarted while the relays publish, a node paused past the heartbeat.

The first phase tells the story on the quiet cluster; each fault phase tells the same story
(another region and year) with its fault at half the enrollments, and must end exactly
like the quiet one: no event lost, none applied twice, license statuses in registry and
billing equal to licensing's, every notice delivered once, the same invoice totals.
`make test-cluster` runs it and prints the report (run with -s to see it).
"""

import asyncio
import importlib.util
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio
from cluster_world import (
    SERVICES,
    Api,
    Counts,
    Phase,
    World,
    amqp_env,
    close_connections,
    recovered_after,
    report_line,
    reset_databases,
    settle,
    snapshot,
)
from harness import ADMIN, ROOT
from rabbit_cluster import HEARTBEAT_SECONDS, Node, RabbitCluster
from ssu_common import identities
from ssu_common.messaging import dead_letter_policy, declare_suite_topology, queue_name

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]

_spec = importlib.util.spec_from_file_location("ssu_dev_sinks", ROOT / "deploy" / "sinks.py")
assert _spec is not None and _spec.loader is not None
sinks_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sinks_module)

MIN_EVENTS = 5000
DELIVERY_LIMIT = 10
WORKER_BATCH = 200  # notification's worker_batch default: what one worker has in flight
# Longer than a client needs to give a silent node up (three missed heartbeats and a bit),
# shorter than the nodes' net_ticktime, so the cluster itself does not partition.
PAUSE_SECONDS = 4 * HEARTBEAT_SECONDS + 3


@dataclass
class Told:
    counts: Counts
    totals: dict[int, Decimal]
    recovered_in: float | None
    seconds: float


QUIET: dict[str, Told] = {}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    base = tmp_path_factory.mktemp("cluster")
    cluster = RabbitCluster(base / "rabbit")
    started = time.monotonic()
    sinks = await sinks_module.start_sinks()
    try:
        await asyncio.to_thread(cluster.start)
        cluster_up = time.monotonic() - started
        await reset_databases()
        # Each service connects as its own broker user (ssu_common.identities), as on the
        # machine's broker; the deployment declares every consumer's queue before they start.
        await asyncio.to_thread(cluster.import_definitions, identities.definitions(cluster.vhost))
        # Dead-lettering by policy, as deploy/k8s runs it (SSU_QUEUE_POLICIES below).
        for service in SERVICES:
            await asyncio.to_thread(
                cluster.set_policy,
                f"ssu-{service}-events",
                f"^{re.escape(queue_name(service))}$",
                dead_letter_policy(service, delivery_limit=DELIVERY_LIMIT),
            )
        await declare_suite_topology(cluster.urls(), delivery_limit=None)
        world = World(
            cluster=cluster,
            log_dir=base,
            sinks=sinks,
            env={
                "SSU_AMQP_URL": amqp_env(cluster),
                "SSU_SMTP_URL": sinks.smtp_url,
                "SSU_SMS_URL": sinks.sms_url,
                "SSU_LOG_LEVEL": "WARNING",
                # Eight processes on a PostgreSQL shared with others: small pools.
                "SSU_DB_POOL_MAX": "4",
                "SSU_QUEUE_POLICIES": "true",
                "SSU_DELIVERY_LIMIT": str(DELIVERY_LIMIT),
                # The story's suspensions lie weeks back: registry's waiting timer would put
                # their recipients on the waiting line (and offer them places) whenever its
                # pass falls in a phase, so each phase's events would depend on the clock,
                # not on the faults. The waiting line has tests of its own.
                "SSU_REGISTRY_DISRUPTION_WAIT_DAYS": "100000",
            },
        )
        try:
            await world.start()
            world.reports.append(
                f"cluster of {cluster.size} nodes up in {cluster_up:.0f}s;"
                f" {len(SERVICES)} services x 2 replicas up in"
                f" {time.monotonic() - started - cluster_up:.0f}s"
            )
            members = await asyncio.to_thread(cluster.queue_members)
            policies = await asyncio.to_thread(cluster.effective_policies)
            arguments = await asyncio.to_thread(cluster.queue_arguments)
            for service in SERVICES:
                assert len(members[f"{service}.events"]) == cluster.size, members
                assert policies[queue_name(service)] == dead_letter_policy(
                    service, delivery_limit=DELIVERY_LIMIT
                )
                # Nothing declared that would override the policy.
                assert arguments[queue_name(service)] == {"x-queue-type": "quorum"}, arguments
            yield world
        finally:
            world.stop()
            await close_connections()
            print("\n== cluster report")
            for line in world.reports:
                print(line)
    finally:
        await asyncio.to_thread(cluster.stop)
        await sinks.stop()


Fault = Callable[[World, Phase], Awaitable[Callable[[], Awaitable[None]]]]


async def tell(world: World, index: int, fault: Fault | None) -> Told:
    """One phase of the story; `fault` injects at half the enrollments and returns the
    coroutine that restores what it broke (run while recovery is measured)."""
    before = await snapshot()
    started = time.monotonic()
    recovered_in: float | None = None
    async with httpx.AsyncClient(headers=ADMIN, timeout=60) as http:
        phase = Phase(index, Api(http, world.replicas))

        async def at_half() -> None:
            nonlocal recovered_in
            assert fault is not None
            at = time.monotonic()
            restore = asyncio.create_task((await fault(world, phase))())
            recovered_in = await recovered_after(phase, at)
            await restore

        await phase.license()
        await phase.wait_registry_knows_providers()
        await phase.enroll(at_half if fault is not None else None)
        await phase.report_attendance()
        await phase.suspend_and_reinstate()
        await phase.wait_disruptions_settled()
        totals = await phase.bill()
        counted = await settle(phase, before, world.sinks)
        assert await phase.statuses_agree()
    await healthy(world.cluster)
    return Told(counted, totals, recovered_in, time.monotonic() - started)


async def healthy(cluster: RabbitCluster) -> None:
    """All nodes running again and every quorum queue with a live member on each."""
    deadline = time.monotonic() + 120
    while True:
        try:
            running = await asyncio.to_thread(cluster.running_nodes)
            members = await asyncio.to_thread(cluster.queue_online)
            if len(running) == cluster.size and all(
                len(m) == cluster.size for m in members.values()
            ):
                return
        except Exception as exc:
            running, members = [repr(exc)], {}
        if time.monotonic() > deadline:
            raise AssertionError(f"cluster not healthy: running={running} members={members}")
        await asyncio.sleep(1.0)


def busiest(cluster: RabbitCluster) -> Node:
    """The node that leads the most of the services' queues."""
    leaders = [cluster.queue_leader(f"{s}.events") for s in SERVICES]
    return max(cluster.nodes, key=lambda n: sum(1 for leader in leaders if leader is n))


def assert_like_the_quiet_run(name: str, told: Told, world: World, *, may_resend: int = 0) -> None:
    c = told.counts
    world.reports.append(report_line(name, c, told.recovered_in, told.seconds))
    assert c.events >= MIN_EVENTS
    assert (c.lost, c.duplicated, c.unsent, c.undelivered) == (0, 0, 0, 0)
    # Only a delivery worker killed mid-batch sends again, and never more than its batch.
    assert c.resent <= may_resend
    quiet = QUIET.get("quiet")
    if quiet is None:
        return
    assert c.by_type == quiet.counts.by_type
    assert c.notices_by_kind == quiet.counts.notices_by_kind
    assert told.totals == quiet.totals


async def test_quiet_cluster(world: World) -> None:
    told = await tell(world, 0, None)
    assert_like_the_quiet_run("quiet cluster (the measure)", told, world)
    assert sum(told.totals.values()) > 0
    QUIET["quiet"] = told


def _needs_quiet() -> None:
    if "quiet" not in QUIET:
        pytest.skip("the quiet phase did not pass")


async def test_node_leading_the_queues_killed(world: World) -> None:
    _needs_quiet()

    async def kill_leader(world: World, phase: Phase) -> Callable[[], Awaitable[None]]:
        node = await asyncio.to_thread(busiest, world.cluster)
        await asyncio.to_thread(world.cluster.kill, node)

        async def restore() -> None:
            await asyncio.sleep(10)
            await asyncio.to_thread(world.cluster.start_node, node)
            await asyncio.to_thread(world.cluster.await_node, node)

        return restore

    told = await tell(world, 1, kill_leader)
    assert_like_the_quiet_run("node leading the queues SIGKILLed", told, world)


async def test_one_replica_of_each_service_killed(world: World) -> None:
    _needs_quiet()

    async def kill_replicas(world: World, phase: Phase) -> Callable[[], Awaitable[None]]:
        killed = await world.kill_one_replica_each()

        async def restore() -> None:
            await asyncio.sleep(5)
            await world.restart(killed)

        return restore

    told = await tell(world, 2, kill_replicas)
    assert_like_the_quiet_run(
        "one replica of each service SIGKILLed", told, world, may_resend=WORKER_BATCH
    )


async def test_node_restarted_while_the_relays_publish(world: World) -> None:
    _needs_quiet()

    async def restart_node(world: World, phase: Phase) -> Callable[[], Awaitable[None]]:
        node = await asyncio.to_thread(busiest, world.cluster)

        async def restore() -> None:
            await asyncio.to_thread(world.cluster.restart, node)

        return restore

    told = await tell(world, 3, restart_node)
    assert_like_the_quiet_run("node restarted while relays publish", told, world)


async def test_node_paused_longer_than_the_heartbeat(world: World) -> None:
    _needs_quiet()

    async def pause_node(world: World, phase: Phase) -> Callable[[], Awaitable[None]]:
        node = await asyncio.to_thread(busiest, world.cluster)
        world.cluster.pause(node)

        async def restore() -> None:
            await asyncio.sleep(PAUSE_SECONDS)
            world.cluster.resume(node)

        return restore

    told = await tell(world, 4, pause_node)
    assert_like_the_quiet_run(f"node SIGSTOPped for {PAUSE_SECONDS}s", told, world)
