"""Where the command line finds each service's database, the broker and the APIs."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from ssu_common import REPO_ROOT
from ssu_common.identities import OPS_USER, dev_password
from ssu_common.settings import amqp_url_with_credentials

SERVICES = ("licensing", "registry", "billing", "notification", "portal")
PORTS = {
    "licensing": 8081,
    "registry": 8082,
    "billing": 8083,
    "notification": 8084,
    "portal": 8085,
}


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SSU_", extra="ignore")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    # Dead letters are handled as the operators' broker identity (ssu_common.identities): it
    # reads every dead-letter queue and replays keeping each message's user_id. Development
    # password by default; SSU_OPS_AMQP_USERNAME / SSU_OPS_AMQP_PASSWORD elsewhere.
    ops_amqp_username: str = OPS_USER
    ops_amqp_password: str = dev_password(OPS_USER)
    api_key: str = Field(default="ssu-dev-admin", description="key used for API calls")
    licensing_database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_licensing"
    registry_database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_registry"
    billing_database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_billing"
    notification_database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_notification"
    portal_database_url: str = "postgresql://postgres@127.0.0.1:5432/ssu_portal"
    licensing_url: str = "http://127.0.0.1:8081"
    registry_url: str = "http://127.0.0.1:8082"
    billing_url: str = "http://127.0.0.1:8083"
    notification_url: str = "http://127.0.0.1:8084"
    portal_url: str = "http://127.0.0.1:8085"
    # Every service's Ed25519 public keys for its audit tree heads (SECURITY.md).
    audit_public_keys_file: Path = REPO_ROOT / "deploy" / "audit-keys" / "public.yaml"

    def ops_broker_url(self) -> str:
        return amqp_url_with_credentials(
            self.amqp_url, username=self.ops_amqp_username, password=self.ops_amqp_password
        )

    def database_url(self, service: str) -> str:
        return str(getattr(self, f"{service}_database_url"))

    def api_url(self, service: str) -> str:
        return str(getattr(self, f"{service}_url"))
