"""Settings of the billing service: `SSU_BILLING_*` plus the shared `SSU_*` values."""

from decimal import Decimal

from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings

D = Decimal

# National minimum and maximum rate per form and unit, KZT (set as JSON in
# SSU_BILLING_TARIFF_LIMITS when the Minister's order changes them).
DEFAULT_TARIFF_LIMITS: dict[str, dict[str, tuple[Decimal, Decimal]]] = {
    "stationary": {"day": (D("1000"), D("60000")), "month": (D("30000"), D("1800000"))},
    "semi_stationary": {"day": (D("500"), D("40000")), "month": (D("15000"), D("1200000"))},
    "home": {"day": (D("300"), D("20000")), "month": (D("9000"), D("600000"))},
    "temporary_stay": {"day": (D("800"), D("50000")), "month": (D("24000"), D("1500000"))},
}


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSU_BILLING_", extra="ignore", populate_by_name=True
    )

    service: str = "billing"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_billing"
    port: int = 8083
    tariff_limits: dict[str, dict[str, tuple[Decimal, Decimal]]] = DEFAULT_TARIFF_LIMITS
    # A billing run holds one transaction for a national month: allow it time.
    run_timeout_seconds: float = 300.0
    # The page a recipient's link opens: `<base>/<token>`; the page shows the month
    # (GET /v1/confirmations/by-token/{token}) and sends the answer (POST .../answer).
    confirmation_link_base: str = "https://ssu.example.kz/confirm"
