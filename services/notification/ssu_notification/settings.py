"""Settings of the notification service: `SSU_NOTIFICATION_*` plus the shared `SSU_*` values."""

from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SSU_NOTIFICATION_", extra="ignore", populate_by_name=True)

    service: str = "notification"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_notification"
    port: int = 8084
