"""Personal fields encrypted at rest, one value at a time (DESIGN §6).

A value is sealed with AES-256-GCM under the service's current data key; the token carries the
key's id, so a key rotation can move rows to a new key while reads still open the old ones.
The field's name is the associated data: a ciphertext moved into another field (a name into
a phone) does not open. IINs are found through a blind index, HMAC-SHA256 under a separate
key, so equality lookups and joins work on the index without the clear value in the database.

Token layout: version byte 1, key id length (1 byte), key id (ASCII), 12-byte nonce, GCM
ciphertext with its 16-byte tag.
"""

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import yaml
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, field_validator

if TYPE_CHECKING:
    from asyncpg import Record

VERSION = 1
NONCE_BYTES = 12


class CipherError(Exception):
    """A token names a key this process does not hold, or does not open (tampered, wrong column)."""


class ServiceKeys(BaseModel):
    """One service's keys as configured: data keys by id, the id new values use, the index key."""

    model_config = ConfigDict(frozen=True)

    current: str
    data_keys: dict[str, str]
    index_key: str

    @field_validator("data_keys")
    @classmethod
    def _keys_are_256_bit(cls, keys: dict[str, str]) -> dict[str, str]:
        for key_id, value in keys.items():
            if not key_id or len(key_id.encode("ascii")) > 255:
                raise ValueError(f"key id {key_id!r} must be 1-255 ASCII characters")
            if len(_b64(value)) != 32:
                raise ValueError(f"data key {key_id!r} must be 32 bytes, base64")
        return keys

    @field_validator("index_key")
    @classmethod
    def _index_key_is_long(cls, value: str) -> str:
        if len(_b64(value)) < 32:
            raise ValueError("index key must be at least 32 bytes, base64")
        return value


def load_keys(*, service: str, keys_file: Path | None, keys_json: str | None) -> ServiceKeys:
    """The service's keys from `keys_json` (environment) when set, else from its entry in the
    key file (YAML: `<service>: {current, data_keys: {id: base64}, index_key: base64}`)."""
    if keys_json:
        return ServiceKeys.model_validate(json.loads(keys_json))
    if keys_file is None:
        raise ValueError(f"no keys for {service}: set SSU_KEYS_FILE or SSU_{service.upper()}_KEYS")
    doc = yaml.safe_load(keys_file.read_text(encoding="utf-8")) or {}
    if service not in doc:
        raise ValueError(f"{keys_file} has no keys for {service}")
    return ServiceKeys.model_validate(doc[service])


class FieldCipher:
    """Seals and opens one service's personal fields; computes its blind index."""

    def __init__(self, keys: ServiceKeys) -> None:
        self._aeads: Mapping[str, AESGCM] = {
            key_id: AESGCM(_b64(value)) for key_id, value in keys.data_keys.items()
        }
        if keys.current not in self._aeads:
            raise ValueError(f"current key {keys.current!r} is not among the data keys")
        self.current_key_id = keys.current
        self._current = self._aeads[keys.current]
        kid = keys.current.encode("ascii")
        self.current_prefix = bytes([VERSION, len(kid)]) + kid
        # A keyed HMAC state copied per value: cheaper than keying a new one each time.
        self._index = hmac.new(_b64(keys.index_key), digestmod=hashlib.sha256)
        self._nonces = b""
        self._nonce_at = 0

    def seal(self, value: str | None, *, column: str) -> bytes | None:
        """The token of a value (None stays None)."""
        if value is None:
            return None
        nonce = self._nonce()
        sealed = self._current.encrypt(nonce, value.encode("utf-8"), column.encode("ascii"))
        return self.current_prefix + nonce + sealed

    def _nonce(self) -> bytes:
        # Random 96-bit nonces, drawn from the OS a few thousand at a time (one system call
        # per 4096 values instead of one per value).
        at = self._nonce_at
        if at >= len(self._nonces):
            self._nonces, at = os.urandom(NONCE_BYTES * 4096), 0
        self._nonce_at = at + NONCE_BYTES
        return self._nonces[at : at + NONCE_BYTES]

    def open(self, token: bytes | None, *, column: str) -> str | None:
        """The clear value of a token sealed under any key this process holds."""
        if token is None:
            return None
        if token[:1] != bytes([VERSION]):
            # Written in clear before encryption (the migration kept it as bytes): readable
            # until `ssu keys rotate` seals it.
            return token.decode("utf-8")
        key_id, body = _split(token)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise CipherError(f"no data key {key_id!r} (column {column})")
        try:
            clear = aead.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], column.encode("ascii"))
        except Exception as exc:  # cryptography's InvalidTag carries no message
            raise CipherError(f"token does not open under {key_id!r} (column {column})") from exc
        return clear.decode("utf-8")

    def seal_date(self, value: date | None, *, column: str) -> bytes | None:
        return self.seal(value.isoformat() if value is not None else None, column=column)

    def open_date(self, token: bytes | None, *, column: str) -> date | None:
        clear = self.open(token, column=column)
        return date.fromisoformat(clear) if clear is not None else None

    def reseal(self, token: bytes | None, *, column: str) -> bytes | None:
        """The token under the current key (unchanged when it already is)."""
        if token is None or token.startswith(self.current_prefix):
            return token
        return self.seal(self.open(token, column=column), column=column)

    def blind_index(self, value: str) -> bytes:
        """Keyed index of a value (an IIN): equal values, equal index; no way back, no key."""
        state = self._index.copy()
        state.update(value.encode("utf-8"))
        return state.digest()

    def blind_digest(self, values: Sequence[str | None]) -> bytes:
        """Keyed digest of several values (equal tuples, equal digest), for comparing sealed
        records in SQL without opening them."""
        # Unit separators cannot occur in the values; None is told apart from "".
        return self.blind_index("\x1f".join("\x00" if v is None else v for v in values))

    def open_fields(  # type: ignore[explicit-any]
        self,
        row: "Record | Mapping[str, object]",
        *,
        text: Iterable[str] = (),
        dates: Iterable[str] = (),
    ) -> dict[str, Any]:
        """A row as a dict with the named sealed fields opened (those present)."""
        # Typed as the row it copies: asyncpg gives a Record's values as `Any`, and the store
        # reads them into its typed records field by field; `object` would only move a cast
        # to every one of those reads.
        out = dict(row.items())
        # A sealed column is bytea: asyncpg hands it over as bytes (or None).
        for name in text:
            if name in out:
                out[name] = self.open(cast("bytes | None", out[name]), column=name)
        for name in dates:
            if name in out:
                out[name] = self.open_date(cast("bytes | None", out[name]), column=name)
        return out

    @staticmethod
    def key_id_of(token: bytes) -> str:
        """The id of the key a token was sealed under, read without opening it."""
        return _split(token)[0]


def _split(token: bytes) -> tuple[str, bytes]:
    if len(token) < 2 or token[0] != VERSION:
        raise CipherError("not a sealed value")
    length = token[1]
    return token[2 : 2 + length].decode("ascii"), token[2 + length :]


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def generate_key() -> str:
    """A fresh 256-bit key, base64 (for a key file)."""
    return base64.b64encode(os.urandom(32)).decode("ascii")
