"""The loops every service process runs beside its API: retention, audit sealing, readiness."""

import asyncio
from typing import TYPE_CHECKING

from ssu_common import seal
from ssu_common.logging import get_logger

if TYPE_CHECKING:
    from ssu_common.runtime import ServiceRuntime

log = get_logger(__name__)


async def retention(runtime: "ServiceRuntime") -> None:
    """Prune now and then; every replica may, the deletes do not conflict."""
    while True:
        try:
            await runtime.prune()
        except Exception as exc:
            log.warning("retention.failed", error=repr(exc)[:300])
        await asyncio.sleep(runtime.settings.retention_interval_seconds)


async def seal_periodically(runtime: "ServiceRuntime") -> None:
    """Seal the audit trail every `audit_seal_seconds`."""
    while True:
        await asyncio.sleep(runtime.settings.audit_seal_seconds)
        try:
            # A full batch means more is waiting: seal on until the backlog is gone.
            while (head := await runtime.seal_audit()) is not None and (
                head.tree_size - head.previous_tree_size >= seal.SEAL_BATCH
            ):
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("audit.seal_failed", error=repr(exc))


async def watch_readiness(runtime: "ServiceRuntime") -> None:
    """Keep ssu_ready current whether or not anyone asks /health/ready."""
    while True:
        await asyncio.sleep(runtime.settings.ready_interval_seconds)
        try:
            await runtime.readiness()
        except Exception as exc:
            log.warning("service.readiness_failed", error=repr(exc))
