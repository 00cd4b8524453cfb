"""Settings of the billing service: `SSU_BILLING_*` plus the shared `SSU_*` values."""

from decimal import Decimal
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings

from ssu_billing.domain import CheckPolicy

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
    # How often the run worker looks for accepted runs without being woken (a NOTIFY wakes it
    # when a run is accepted) and for a run that a stopped process left running.
    run_poll_seconds: float = Field(default=2.0, gt=0)

    # Checks before payment (issue 19, domain.CheckPolicy). A month the recipient was asked to
    # confirm and has not answered: `pay` (default: many recipients, the elderly and those in
    # residential care, never answer, and care given is not to go unpaid for their silence; the
    # finding is shown on the line, and a dispute always holds), `hold` (held for review like a
    # blocking rule) or `partial` (the `unconfirmed_share` is paid, the rest held).
    unconfirmed: Literal["pay", "hold", "partial"] = "pay"
    unconfirmed_share: Decimal = Field(default=Decimal("0.5"), ge=0, le=1)
    # Rules recorded on the line but not holding it (`disputed_month` cannot be one of them).
    advisory_rules: frozenset[str] = frozenset({"outside_enrollment"})

    def check_policy(self) -> CheckPolicy:
        return CheckPolicy(
            unconfirmed=self.unconfirmed,
            unconfirmed_share=self.unconfirmed_share,
            advisory=frozenset(self.advisory_rules),
        )

    # The page a recipient's link opens: `<base>/<token>`; the page shows the month
    # (GET /v1/confirmations/by-token/{token}) and sends the answer (POST .../answer).
    confirmation_link_base: str = "https://ssu.example.kz/confirm"
