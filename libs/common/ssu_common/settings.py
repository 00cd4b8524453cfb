"""Configuration shared by every service; each service subclasses it with its own prefix."""

from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ssu_common.crypto import FieldCipher, load_keys

REPO_ROOT = Path(__file__).resolve().parents[3]


def broker_addresses(url: str) -> list[str]:
    """The broker addresses in `SSU_AMQP_URL`: one URL, or the nodes of a cluster as URLs
    separated by commas (`amqp://u:p@rabbit-0:5672/ssu,amqp://u:p@rabbit-1:5672/ssu`)."""
    addresses = [part.strip() for part in url.split(",") if part.strip()]
    if not addresses:
        raise ValueError("SSU_AMQP_URL names no broker")
    return addresses


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
    # The service's own broker identity (`SSU_<SERVICE>_AMQP_USERNAME`, `..._PASSWORD`;
    # ssu_common.identities); when unset, the credentials of SSU_AMQP_URL are used.
    amqp_username: str | None = None
    amqp_password: str | None = None
    # Web origins allowed to read the public `/v1` registry from a browser (CORS: GET only,
    # no credentials), e.g. `SSU_CORS_ORIGINS='["https://egov.kz"]'`; none by default.
    cors_origins: list[str] = Field(default_factory=list, validation_alias="SSU_CORS_ORIGINS")
    api_keys_file: Path = Field(
        default=REPO_ROOT / "deploy" / "api-keys.dev.yaml", validation_alias="SSU_API_KEYS_FILE"
    )
    # Keys of personal fields at rest (`ssu_common.crypto`): the service's entry of the key
    # file, or the same document as JSON in `SSU_<SERVICE>_KEYS` (which wins when set).
    keys_file: Path | None = Field(
        default=REPO_ROOT / "deploy" / "keys.dev.yaml", validation_alias="SSU_KEYS_FILE"
    )
    keys: str | None = None
    # Rows re-encrypted per transaction by a key rotation (`ssu keys rotate`).
    rotation_batch: int = Field(default=500, validation_alias="SSU_ROTATION_BATCH")
    log_level: str = Field(default="INFO", validation_alias="SSU_LOG_LEVEL")
    # A message that keeps failing transiently is dead-lettered after this many deliveries.
    delivery_limit: int = Field(default=10, validation_alias="SSU_DELIVERY_LIMIT")
    # true: the broker's policies (deploy/k8s) set each queue's dead-letter exchange and
    # delivery limit, and the queues are declared without those arguments.
    queue_policies: bool = Field(default=False, validation_alias="SSU_QUEUE_POLICIES")
    prefetch: int = Field(default=64, validation_alias="SSU_PREFETCH")
    # Events applied per consumer transaction (each in its own savepoint).
    consumer_batch: int = Field(default=32, validation_alias="SSU_CONSUMER_BATCH")
    outbox_batch: int = Field(default=200, validation_alias="SSU_OUTBOX_BATCH")
    outbox_poll_seconds: float = Field(default=2.0, validation_alias="SSU_OUTBOX_POLL_SECONDS")
    max_body_bytes: int = Field(default=1_048_576, validation_alias="SSU_MAX_BODY_BYTES")
    max_file_bytes: int = Field(default=64 * 1_048_576, validation_alias="SSU_MAX_FILE_BYTES")
    # A file import answers the first this many row errors (with the count of all): a file of
    # bad rows would otherwise answer megabytes nobody reads.
    max_import_errors: int = Field(default=100, ge=1, validation_alias="SSU_MAX_IMPORT_ERRORS")
    # How long a starting service waits for its database and broker before it gives up.
    startup_timeout_seconds: float = Field(
        default=60.0, validation_alias="SSU_STARTUP_TIMEOUT_SECONDS"
    )
    # Retention (SECURITY.md): published outbox rows, and inbox ids after a window longer than
    # any redelivery can come late (queue waits, dead letters replayed within 30 days).
    outbox_retention_seconds: float = Field(
        default=7 * 86400, gt=0, validation_alias="SSU_OUTBOX_RETENTION_SECONDS"
    )
    inbox_retention_seconds: float = Field(
        default=45 * 86400, gt=0, validation_alias="SSU_INBOX_RETENTION_SECONDS"
    )
    retention_interval_seconds: float = Field(
        default=3600, gt=0, validation_alias="SSU_RETENTION_INTERVAL_SECONDS"
    )
    db_pool_max: int = Field(default=10, validation_alias="SSU_DB_POOL_MAX")
    db_command_timeout: float = Field(default=60.0, validation_alias="SSU_DB_COMMAND_TIMEOUT")
    # The Ed25519 key that signs this service's audit tree heads (`SSU_<SERVICE>_AUDIT_SIGNING_
    # KEY_FILE`); unset means the development key `deploy/audit-keys/dev/<service>.pem`.
    audit_signing_key_file: Path | None = None
    # Every service's public keys, to check the heads others publish (and `ssu audit verify`).
    audit_public_keys_file: Path = Field(
        default=REPO_ROOT / "deploy" / "audit-keys" / "public.yaml",
        validation_alias="SSU_AUDIT_PUBLIC_KEYS_FILE",
    )
    # How often the sealer gathers new audit records under a signed tree head.
    audit_seal_seconds: float = Field(default=10.0, validation_alias="SSU_AUDIT_SEAL_SECONDS")

    def signing_key_path(self) -> Path:
        return self.audit_signing_key_file or (
            REPO_ROOT / "deploy" / "audit-keys" / "dev" / f"{self.service}.pem"
        )

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

    def cipher(self) -> FieldCipher:
        """The service's field cipher, from its configured keys."""
        return FieldCipher(
            load_keys(service=self.service, keys_file=self.keys_file, keys_json=self.keys)
        )

    @property
    def declared_delivery_limit(self) -> int | None:
        """The delivery limit the queue declaration carries (None: a policy carries it)."""
        return None if self.queue_policies else self.delivery_limit

    def broker_url(self) -> str:
        """SSU_AMQP_URL with the service's own credentials in each of its addresses."""
        return ",".join(
            amqp_url_with_credentials(a, username=self.amqp_username, password=self.amqp_password)
            for a in broker_addresses(self.amqp_url)
        )

    def broker_user(self) -> str:
        """The user the service connects as: the AMQP `user_id` of what it publishes."""
        return amqp_user(self.broker_url())


def amqp_url_with_credentials(url: str, *, username: str | None, password: str | None) -> str:
    """The URL with its user and password replaced by the given ones (when given)."""
    if username is None:
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(username, safe="")
    if password is not None:
        userinfo += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def amqp_user(url: str) -> str:
    """The user named in an AMQP URL (`guest` when none, as the broker client assumes); of a
    list of nodes, the first (they all name the same user)."""
    username = urlsplit(broker_addresses(url)[0]).username
    return unquote(username) if username else "guest"


def amqp_vhost(url: str) -> str:
    """The virtual host named in an AMQP URL (`/` when none); of a list, the first's."""
    return unquote(urlsplit(broker_addresses(url)[0]).path.lstrip("/")) or "/"
