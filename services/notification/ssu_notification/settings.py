"""Settings of the notification service: `SSU_NOTIFICATION_*` plus the shared `SSU_*` values."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from ssu_common import REPO_ROOT, ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSU_NOTIFICATION_", extra="ignore", populate_by_name=True
    )

    service: str = "notification"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_notification"
    port: int = 8084

    smtp_url: str = Field(default="smtp://127.0.0.1:1025", validation_alias="SSU_SMTP_URL")
    sms_url: str = Field(default="http://127.0.0.1:1026/sms", validation_alias="SSU_SMS_URL")
    departments_file: Path = Field(
        default=REPO_ROOT / "deploy" / "departments.yaml", validation_alias="SSU_DEPARTMENTS_FILE"
    )
    mail_from: str = "ssu-notify@example.gov.kz"

    # Delivery worker: how many rows it claims at once, how often it looks for due rows, and
    # how long a claimed row is held before another worker may take it (a crash mid-send).
    worker_batch: int = 200
    worker_poll_seconds: float = 0.5
    worker_lease_seconds: float = 60.0
    # Retries: attempt n (1-based) that fails waits retry_base_seconds * 2**(n-1), capped.
    max_attempts: int = 6
    retry_base_seconds: float = 5.0
    retry_max_seconds: float = 3600.0
    # Mail of one batch goes out over this many SMTP connections, each reused for its share.
    smtp_connections: int = 4
    # Every outgoing call (SMTP, SMS gateway, webhook) gives up after this many seconds.
    send_timeout_seconds: float = 10.0
    # Per-channel rate limits in messages per second for this process; 0 means unlimited.
    email_per_second: float = 0.0
    sms_per_second: float = 20.0
    webhook_per_second: float = 0.0
    # Webhook callbacks must be https; development may allow http to loopback addresses.
    allow_loopback_webhooks: bool = False
