"""Settings of the registry service: `SSU_REGISTRY_*` plus the shared `SSU_*` values."""

from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSU_REGISTRY_", extra="ignore", populate_by_name=True
    )

    service: str = "registry"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_registry"
    port: int = 8082
    # An enrollment may start at most this many days after today (Asia/Almaty).
    enrollment_max_days_ahead: int = 90
    # Pension age (the Social Code's elderly category), by the sex the IIN encodes.
    pension_age_men: int = 63
    pension_age_women: int = 61
