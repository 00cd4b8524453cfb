"""Settings of the billing service: `SSU_BILLING_*` plus the shared `SSU_*` values."""

from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSU_BILLING_", extra="ignore", populate_by_name=True
    )

    service: str = "billing"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_billing"
    port: int = 8083
