"""What every ssu service needs once: settings, logs, metrics, database, outbox, inbox, HTTP."""

from ssu_common import audit, tracing
from ssu_common.auth import (
    ApiKeys,
    Principal,
    authorize,
    hash_key,
    optional_principal,
    same_person,
)
from ssu_common.broker import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    connect_first,
    dlq_name,
    queue_name,
)
from ssu_common.consumer import REASON_HEADER, EventHandler, PermanentError
from ssu_common.context import current_causation_id, current_correlation_id, work_context
from ssu_common.crypto import CipherError, FieldCipher, ServiceKeys, generate_key, load_keys
from ssu_common.csvfiles import csv_text, read_csv_body, safe_cell
from ssu_common.db import Connection, create_pool, ensure_database, migrate
from ssu_common.jsontypes import Json, JsonObject
from ssu_common.keyrotation import SealedTable, reseal_batch
from ssu_common.logging import configure_logging, get_logger, mask_pii
from ssu_common.metrics import DomainGauge, GaugeRows
from ssu_common.outbox import OutboxRelay, emit, emit_many
from ssu_common.paging import Seq, TimeAndId, decode_cursor, encode_cursor
from ssu_common.problems import Problem, field_error, refusals
from ssu_common.runtime import ServiceRuntime, connection
from ssu_common.settings import REPO_ROOT, ServiceSettings, broker_addresses

__all__ = [
    "DEAD_LETTER_EXCHANGE",
    "EVENTS_EXCHANGE",
    "REASON_HEADER",
    "REPO_ROOT",
    "ApiKeys",
    "CipherError",
    "Connection",
    "DomainGauge",
    "EventHandler",
    "FieldCipher",
    "GaugeRows",
    "Json",
    "JsonObject",
    "OutboxRelay",
    "PermanentError",
    "Principal",
    "Problem",
    "SealedTable",
    "Seq",
    "ServiceKeys",
    "ServiceRuntime",
    "ServiceSettings",
    "TimeAndId",
    "audit",
    "authorize",
    "broker_addresses",
    "configure_logging",
    "connect_first",
    "connection",
    "create_pool",
    "csv_text",
    "current_causation_id",
    "current_correlation_id",
    "decode_cursor",
    "dlq_name",
    "emit",
    "emit_many",
    "encode_cursor",
    "ensure_database",
    "field_error",
    "generate_key",
    "get_logger",
    "hash_key",
    "load_keys",
    "mask_pii",
    "migrate",
    "optional_principal",
    "queue_name",
    "read_csv_body",
    "refusals",
    "reseal_batch",
    "safe_cell",
    "same_person",
    "tracing",
    "work_context",
]
