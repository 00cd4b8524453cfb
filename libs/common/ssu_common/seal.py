"""Sealing the audit log: signed Merkle tree heads, their copies elsewhere, and verification.

The sealer (one leader per service at a time: a transaction-scoped advisory lock taken with
`pg_try_advisory_xact_lock`, which writers never take) gives the committed unsealed records the
next leaf positions, extends the RFC 9162 tree, signs the new tree head with the service's
Ed25519 key, stores it and publishes it through the outbox; every other service keeps a copy.
`verify` trusts no hash stored beside the records: it recomputes every leaf and root, checks each
head's signature, the chain and consistency of successive heads, and the copies held elsewhere.
"""

import base64
import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from ssu_contracts import AUDIT_SEALED, AuditSealedV1

from ssu_common import merkle, outbox
from ssu_common.audit import AuditRecord, canonical_time
from ssu_common.consumer import PermanentError
from ssu_common.db import Connection
from ssu_common.logging import get_logger

log = get_logger(__name__)

HEAD_DOMAIN = b"ssu.audit.tree_head.v1\n"
# Any number that no other advisory lock of the suite uses; only sealers take it.
_SEAL_LOCK = 582_031_775
# Records sealed under one head at most; a sealer with a backlog seals again at once.
SEAL_BATCH = 10_000


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    """A service's private signing key."""

    key: Ed25519PrivateKey
    key_id: str

    @classmethod
    def load(cls, path: Path) -> "Signer":
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return cls(key=key, key_id=key_id_of(key.public_key()))


@dataclass(frozen=True)
class PublicKeys:
    """Every service's public keys by key id (a retired key stays so old heads verify)."""

    keys: Mapping[tuple[str, str], Ed25519PublicKey]

    @classmethod
    def load(cls, path: Path) -> "PublicKeys":
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        keys: dict[tuple[str, str], Ed25519PublicKey] = {}
        for entry in doc.get("keys", []):
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(entry["public_key"]))
            keys[(str(entry["service"]), key_id_of(public))] = public
        return cls(keys)

    def verifies(self, head: "TreeHead") -> bool:
        public = self.keys.get((head.service, head.key_id))
        if public is None:
            return False
        try:
            public.verify(head.signature, head.message())
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class TreeHead:
    service: str
    tree_size: int
    root_hash: bytes
    sealed_at: str
    previous_tree_size: int
    previous_root_hash: bytes | None
    key_id: str
    signature: bytes = b""

    def message(self) -> bytes:
        """What the signature covers: a domain prefix and the head's canonical JSON."""
        body = {
            "service": self.service,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "sealed_at": self.sealed_at,
            "previous_tree_size": self.previous_tree_size,
            "previous_root_hash": (
                self.previous_root_hash.hex() if self.previous_root_hash is not None else None
            ),
            "key_id": self.key_id,
        }
        return HEAD_DOMAIN + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def as_event(self) -> AuditSealedV1:
        return AUDIT_SEALED[self.service](
            service=self.service,
            tree_size=self.tree_size,
            root_hash=self.root_hash.hex(),
            sealed_at=self.sealed_at,
            previous_tree_size=self.previous_tree_size,
            previous_root_hash=(
                self.previous_root_hash.hex() if self.previous_root_hash is not None else None
            ),
            key_id=self.key_id,
            signature=base64.b64encode(self.signature).decode(),
        )

    @classmethod
    def from_event(cls, data: AuditSealedV1) -> "TreeHead":
        return cls(
            service=data.service,
            tree_size=data.tree_size,
            root_hash=bytes.fromhex(data.root_hash),
            sealed_at=data.sealed_at,
            previous_tree_size=data.previous_tree_size,
            previous_root_hash=(
                bytes.fromhex(data.previous_root_hash) if data.previous_root_hash else None
            ),
            key_id=data.key_id,
            signature=base64.b64decode(data.signature),
        )


def _head(service: str, row: asyncpg.Record) -> TreeHead:
    return TreeHead(
        service=service,
        tree_size=row["tree_size"],
        root_hash=row["root_hash"],
        sealed_at=row["sealed_at"],
        previous_tree_size=row["previous_tree_size"],
        previous_root_hash=row["previous_root_hash"],
        key_id=row["key_id"],
        signature=row["signature"],
    )


async def seal_once(
    conn: Connection, *, service: str, signer: Signer, batch: int = SEAL_BATCH
) -> TreeHead | None:
    """Seal the committed unsealed records under a new signed head; None when there were none
    or another replica is sealing right now."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _SEAL_LOCK):
            return None
        last = await conn.fetchrow(
            "SELECT tree_size, root_hash, frontier FROM audit_heads ORDER BY tree_size DESC LIMIT 1"
        )
        rows = await conn.fetch(
            "SELECT id, at, client, official, aggregate_type, aggregate_id, action, reason,"
            " correlation_id, causation_id FROM audit_records WHERE leaf_index IS NULL"
            " ORDER BY id LIMIT $1",
            batch,
        )
        if not rows:
            return None
        size = int(last["tree_size"]) if last is not None else 0
        frontier: list[bytes] = [bytes(h) for h in last["frontier"]] if last is not None else []
        ids, indexes, hashes = [], [], []
        for row in rows:
            leaf = merkle.leaf_hash(AuditRecord(**dict(row)).canonical())
            frontier = merkle.append(frontier, size, leaf)
            ids.append(row["id"])
            indexes.append(size)
            hashes.append(leaf)
            size += 1
        await conn.execute(
            "UPDATE audit_records r SET leaf_index = x.idx, leaf_hash = x.h"
            " FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS x(id, idx, h)"
            " WHERE r.id = x.id",
            ids,
            indexes,
            hashes,
        )
        unsigned = TreeHead(
            service=service,
            tree_size=size,
            root_hash=merkle.root_of_frontier(frontier),
            sealed_at=canonical_time(datetime.now(UTC)),
            previous_tree_size=int(last["tree_size"]) if last is not None else 0,
            previous_root_hash=bytes(last["root_hash"]) if last is not None else None,
            key_id=signer.key_id,
        )
        head = replace(unsigned, signature=signer.key.sign(unsigned.message()))
        await conn.execute(
            "INSERT INTO audit_heads (tree_size, root_hash, sealed_at, previous_tree_size,"
            " previous_root_hash, key_id, signature, frontier)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            head.tree_size,
            head.root_hash,
            head.sealed_at,
            head.previous_tree_size,
            head.previous_root_hash,
            head.key_id,
            head.signature,
            frontier,
        )
        if service in AUDIT_SEALED:
            await outbox.emit(conn, head.as_event(), subject=f"{service}/{head.tree_size}")
    log.info("audit.sealed", tree_size=head.tree_size, records=len(rows))
    return head


class ForgedHead(PermanentError):
    """A published head whose signature does not verify under its service's key."""


async def keep_copy(conn: Connection, *, head: TreeHead, keys: PublicKeys) -> bool:
    """Store another service's signed head; a second delivery changes nothing."""
    if not keys.verifies(head):
        raise ForgedHead(f"the signature of {head.service}'s head {head.tree_size} does not verify")
    status = await conn.execute(
        "INSERT INTO audit_head_copies (service, tree_size, root_hash, sealed_at,"
        " previous_tree_size, previous_root_hash, key_id, signature)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        head.service,
        head.tree_size,
        head.root_hash,
        head.sealed_at,
        head.previous_tree_size,
        head.previous_root_hash,
        head.key_id,
        head.signature,
    )
    return bool(status.endswith(" 1"))


async def heads(conn: Connection, *, service: str) -> list[TreeHead]:
    rows = await conn.fetch(
        "SELECT tree_size, root_hash, sealed_at, previous_tree_size, previous_root_hash, key_id,"
        " signature FROM audit_heads ORDER BY tree_size"
    )
    return [_head(service, r) for r in rows]


async def copies_of(conn: Connection, *, service: str) -> list[TreeHead]:
    """The heads of `service` that the database behind `conn` holds as copies."""
    rows = await conn.fetch(
        "SELECT tree_size, root_hash, sealed_at, previous_tree_size, previous_root_hash, key_id,"
        " signature FROM audit_head_copies WHERE service = $1 ORDER BY tree_size",
        service,
    )
    return [_head(service, r) for r in rows]


async def records(conn: Connection) -> list[AuditRecord]:
    rows = await conn.fetch(
        "SELECT id, at, client, official, aggregate_type, aggregate_id, action, reason,"
        " correlation_id, causation_id, leaf_index, leaf_hash FROM audit_records"
        " ORDER BY leaf_index NULLS LAST, id"
    )
    return [AuditRecord(**dict(r)) for r in rows]


@dataclass(frozen=True)
class Finding:
    where: str
    problem: str

    def __str__(self) -> str:
        return f"{self.where}: {self.problem}"


@dataclass
class Verification:
    records: int = 0
    sealed: int = 0
    heads: int = 0
    copies: int = 0
    findings: list[Finding] = field(default_factory=list)


def verify(
    *,
    service: str,
    records: Sequence[AuditRecord],
    own_heads: Sequence[TreeHead],
    copies: Mapping[str, Sequence[TreeHead]],
    keys: PublicKeys,
) -> Verification:
    """Every check of SECURITY.md on one service's log; pure, so the CLI and tests share it."""
    result = Verification(records=len(records), heads=len(own_heads))
    findings = result.findings
    sealed = [r for r in records if r.leaf_index is not None]
    result.sealed = len(sealed)

    # 1. The leaves: positions without gaps, content matching the hash the sealer took.
    leaves: list[bytes] = []
    for r in sealed:
        assert r.leaf_index is not None
        if r.leaf_index > len(leaves):
            missing = range(len(leaves), r.leaf_index)
            findings.append(Finding(_span("leaf", missing), "missing: a sealed record was deleted"))
            # Keep positions true so later leaves are checked where they belong.
            leaves.extend(b"" for _ in missing)
        elif r.leaf_index < len(leaves):
            findings.append(Finding(f"record {r.id}", "shares its leaf position with another"))
            continue
        recomputed = merkle.leaf_hash(r.canonical())
        if r.leaf_hash != recomputed:
            findings.append(
                Finding(f"record {r.id}", "edited after it was sealed (its leaf hash differs)")
            )
        leaves.append(recomputed)

    # 2. The heads stored here: each signed by the service's key.
    for head in own_heads:
        if not keys.verifies(head):
            findings.append(
                Finding(f"head {head.tree_size}", "the signature does not verify (altered)")
            )
    # 3. The copies held elsewhere: signed, and present and identical here.
    own_by_size = {h.tree_size: h for h in own_heads}
    trusted: dict[int, TreeHead] = {h.tree_size: h for h in own_heads if keys.verifies(h)}
    for holder in sorted(copies):
        for copy in copies[holder]:
            result.copies += 1
            where = f"head {copy.tree_size}"
            if not keys.verifies(copy):
                findings.append(Finding(where, f"the copy held by {holder} is not validly signed"))
                continue
            mine = own_by_size.get(copy.tree_size)
            if mine is None:
                findings.append(Finding(where, f"missing here; {holder} holds a signed copy"))
            elif mine.message() != copy.message():
                findings.append(Finding(where, f"differs from the copy held by {holder}"))
            trusted.setdefault(copy.tree_size, copy)

    # 4. Every authentic head against the records, and each against the one before it.
    ordered = [trusted[size] for size in sorted(trusted)]
    reproduced: dict[int, bool] = {}
    for head in ordered:
        where = f"head {head.tree_size}"
        if head.tree_size > len(leaves):
            findings.append(
                Finding(
                    where,
                    f"covers {head.tree_size} records, the log ends at {len(leaves)} (truncated)",
                )
            )
            reproduced[head.tree_size] = False
            continue
        ok = merkle.root(leaves[: head.tree_size]) == head.root_hash
        reproduced[head.tree_size] = ok
        if not ok:
            findings.append(Finding(where, "the records do not reproduce its signed root"))
    for earlier, later in itertools.pairwise(ordered):
        where = f"head {later.tree_size}"
        if later.previous_tree_size == earlier.tree_size and (
            later.previous_root_hash != earlier.root_hash
        ):
            findings.append(
                Finding(where, f"names a previous root other than head {earlier.tree_size}'s")
            )
        elif later.previous_tree_size > earlier.tree_size:
            findings.append(
                Finding(where, f"follows head {later.previous_tree_size}, which no one holds")
            )
        if reproduced.get(earlier.tree_size) and reproduced.get(later.tree_size):
            proof = merkle.consistency_proof(leaves[: later.tree_size], earlier.tree_size)
            if not merkle.verify_consistency(
                earlier.tree_size, later.tree_size, earlier.root_hash, later.root_hash, proof
            ):
                findings.append(Finding(where, f"is not consistent with head {earlier.tree_size}"))
    if ordered and ordered[0].previous_tree_size != 0:
        first = ordered[0]
        findings.append(
            Finding(
                f"head {first.tree_size}",
                f"follows head {first.previous_tree_size}, which no one holds",
            )
        )
    covered = ordered[-1].tree_size if ordered else 0
    if len(leaves) > covered:
        findings.append(
            Finding(
                _span("leaf", range(covered, len(leaves))),
                "marked sealed, but no signed head covers it (inserted)",
            )
        )
    return result


def _span(what: str, indexes: range) -> str:
    if len(indexes) == 1:
        return f"{what} {indexes.start}"
    return f"{what}s {indexes.start}-{indexes.stop - 1}"
