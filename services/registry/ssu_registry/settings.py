"""Settings of the registry service: `SSU_REGISTRY_*` plus the shared `SSU_*` values."""

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings

from ssu_registry.domain import priority_weights


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
    # The waiting list: the order of its priority criteria (ssu_registry.domain), how long an
    # offered place is held, after how many days a disrupted recipient who took no alternative
    # joins the line, and how often the registry looks for lapsed offers and such disruptions.
    waiting_priority: tuple[str, ...] = ("disrupted", "child", "group_one")
    offer_hold_days: int = 7
    disruption_wait_days: int = 14
    waiting_check_seconds: float = 60.0

    @field_validator("waiting_priority")
    @classmethod
    def _known_criteria(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        priority_weights(value)
        return value
