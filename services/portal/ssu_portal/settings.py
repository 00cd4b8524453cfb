"""Settings of the portal: `SSU_PORTAL_*` plus the shared `SSU_*` values."""

from pathlib import Path

from pydantic_settings import SettingsConfigDict
from ssu_common import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="SSU_PORTAL_", extra="ignore", populate_by_name=True
    )

    service: str = "portal"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_portal"
    port: int = 8085

    # The services the signed-in operators act through, with their own keys.
    licensing_url: str = "http://127.0.0.1:8081"
    registry_url: str = "http://127.0.0.1:8082"
    upstream_timeout_seconds: float = 15.0
    # Where people reach the portal: the certificate's QR code opens a page under it.
    public_url: str = "http://127.0.0.1:8085"
    # Development serves plain http on loopback: the session cookie then cannot be Secure.
    development: bool = False
    session_hours: float = 8.0
    # Seals the operators' keys kept with their sessions and keys the recipients' hashes.
    # Production sets its own; the default is for development and tests only.
    secret: str = "ssu-portal-development-secret-not-for-production"
    # A centre with at most this many places is "small" in the refusal statistics.
    small_centre_places: int = 30
    font_dir: Path = Path("/usr/share/fonts/truetype/dejavu")
