"""Configuration shared by every service; each service subclasses it with its own prefix."""

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]


class ServiceSettings(BaseSettings):
    """Settings every service has: `SSU_*` for shared values, `SSU_<SERVICE>_*` for its own."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    service: str = "ssu"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu"
    port: int = 8080
    host: str = "127.0.0.1"

    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/", validation_alias="SSU_AMQP_URL"
    )
    api_keys_file: Path = Field(
        default=REPO_ROOT / "deploy" / "api-keys.dev.yaml", validation_alias="SSU_API_KEYS_FILE"
    )
    log_level: str = Field(default="INFO", validation_alias="SSU_LOG_LEVEL")
    # A message that keeps failing transiently is dead-lettered after this many deliveries.
    delivery_limit: int = Field(default=10, validation_alias="SSU_DELIVERY_LIMIT")
    prefetch: int = Field(default=64, validation_alias="SSU_PREFETCH")
    # Events applied per consumer transaction (each in its own savepoint).
    consumer_batch: int = Field(default=32, validation_alias="SSU_CONSUMER_BATCH")
    outbox_batch: int = Field(default=200, validation_alias="SSU_OUTBOX_BATCH")
    outbox_poll_seconds: float = Field(default=2.0, validation_alias="SSU_OUTBOX_POLL_SECONDS")
    max_body_bytes: int = Field(default=1_048_576, validation_alias="SSU_MAX_BODY_BYTES")
    max_file_bytes: int = Field(default=64 * 1_048_576, validation_alias="SSU_MAX_FILE_BYTES")
    # How long a starting service waits for its database and broker before it gives up.
    startup_timeout_seconds: float = Field(
        default=60.0, validation_alias="SSU_STARTUP_TIMEOUT_SECONDS"
    )
    db_pool_max: int = Field(default=10, validation_alias="SSU_DB_POOL_MAX")
    db_command_timeout: float = Field(default=60.0, validation_alias="SSU_DB_COMMAND_TIMEOUT")
    # What the process needs to serve its API; anything else that fails is reported as
    # degraded. A process that only consumes can require the broker too.
    ready_requires: tuple[str, ...] = Field(
        default=("database",), validation_alias="SSU_READY_REQUIRES"
    )
    ready_interval_seconds: float = Field(
        default=5.0, validation_alias="SSU_READY_INTERVAL_SECONDS"
    )
    # Traces are exported over OTLP/HTTP when either standard variable names a collector;
    # unset, nothing is traced (the SDK reads the other OTEL_* variables itself).
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
