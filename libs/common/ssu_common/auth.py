"""API keys with scopes, an optional region restriction and an optional provider BIN (DESIGN §6).

A key names a client system. A person acting through it (an official who approves, inspects or
releases) names themselves with `X-SSU-Official` (read into the audit context by the HTTP
middleware, `ssu_common.audit`); decisions record both, and the four-eyes rules compare
officials (`same_person`), so two officials of one ministry system may be the two pairs of
eyes, but one official cannot be both through two systems.
A key with `bin` belongs to a provider and acts only for that BIN (`licensing:apply`,
`billing:report`).

Keys are configured as SHA-256 hashes; a presented key is hashed and compared in constant time
against every configured hash, so neither the key nor its position leaks through timing.
"""

import hashlib
import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import yaml
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes

from ssu_common import audit
from ssu_common.problems import Problem


@dataclass(frozen=True)
class Principal:
    """The calling client system, as its key describes it."""

    client: str
    scopes: frozenset[str]
    region: str | None = None
    bin: str | None = None
    official: str | None = None

    def sees_region(self, region: str | None) -> bool:
        return self.region is None or region == self.region

    def acts_for(self, bin_: str) -> bool:
        """A provider's key acts only for its own BIN; other keys for any."""
        return self.bin is None or bin_ == self.bin

    @property
    def actor(self) -> str:
        """Who acted, as decisions and the audit log record it: `client` or `client/official`."""
        return f"{self.client}/{self.official}" if self.official else self.client


def same_person(first: str, second: str) -> bool:
    """Whether two recorded actors (`Principal.actor`) are one person for the four-eyes rules.

    With an official on both sides the officials are compared (one official through two client
    systems is still one person; two officials of one system are two). Without, the clients are.
    """
    first_client, _, first_official = first.partition("/")
    second_client, _, second_official = second.partition("/")
    if first_official and second_official:
        return first_official == second_official
    return first_client == second_client


@dataclass(frozen=True)
class ApiKey:
    client: str
    key_sha256: str
    scopes: frozenset[str]
    region: str | None
    bin: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(self, keys: list[ApiKey]) -> None:
        self._keys = keys

    @classmethod
    def load(cls, path: Path) -> "ApiKeys":
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        keys = [
            ApiKey(
                client=str(k["client"]),
                key_sha256=str(k["key_sha256"]).lower(),
                scopes=frozenset(k.get("scopes", [])),
                region=str(k["region"]) if k.get("region") else None,
                bin=str(k["bin"]) if k.get("bin") else None,
            )
            for k in doc.get("clients", [])
        ]
        return cls(keys)

    def lookup(self, presented: str) -> ApiKey | None:
        digest = hash_key(presented)
        found: ApiKey | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.key_sha256):
                found = key
        return found


_bearer = HTTPBearer(auto_error=False)


def principal_of(key: ApiKey, request: Request) -> Principal:
    return Principal(
        client=key.client,
        scopes=key.scopes,
        region=key.region,
        bin=key.bin,
        # Read and checked by the HTTP middleware, which refuses a malformed header with a 422
        # and keeps the official in the audit context (ssu_common.audit).
        official=audit.current_actor().official,
    )


def bearer_token(authorization: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header, as HTTPBearer reads it."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def identify(keys: ApiKeys, token: str | None) -> ApiKey:
    """The configured key presented, or the 401 problem (before any body is read, for writes)."""
    if not token:
        raise Problem(
            401,
            "an API key is required: Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = keys.lookup(token)
    if key is None:
        raise Problem(401, "the API key is not known", headers={"WWW-Authenticate": "Bearer"})
    return key


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """For public routes: None without a key (the public view), the caller with a known key,
    401 with a key that is not known (a typo should not silently give the public view)."""
    if credentials is None or not credentials.credentials:
        return None
    keys: ApiKeys = request.app.state.api_keys
    key = identify(keys, credentials.credentials)
    principal = principal_of(key, request)
    request.state.principal = principal
    return principal


async def authorize(
    security: SecurityScopes,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Resolve the caller; 401 without a known key, 403 without every required scope."""
    keys: ApiKeys = request.app.state.api_keys
    key = identify(keys, credentials.credentials if credentials is not None else None)
    # A required entry may name alternatives ("notification:read|notification:admin").
    missing = [s for s in security.scopes if not key.scopes.intersection(s.split("|"))]
    if missing:
        raise Problem(
            403,
            f"the key of {key.client} lacks the scope {', '.join(missing)}",
            required_scopes=security.scopes,
        )
    principal = principal_of(key, request)
    request.state.principal = principal
    return principal
