"""Settings of the licensing service: `SSU_LICENSING_*` plus the shared `SSU_*` values."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict
from ssu_common import REPO_ROOT, ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSU_LICENSING_", extra="ignore", populate_by_name=True
    )

    service: str = "licensing"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_licensing"
    port: int = 8081
    # Requirement set files (`<version>.yaml`) loaded at start; a version already stored is kept.
    requirement_sets_dir: Path = REPO_ROOT / "deploy" / "requirement-sets"
    # How often the suspension timer looks for suspensions whose end date has come.
    suspension_check_seconds: float = 60.0
    # Lists return at most this many items per page.
    max_page: int = 200
