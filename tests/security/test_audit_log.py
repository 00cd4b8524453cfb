"""The audit log cannot be rewritten quietly: each tampering, done in SQL as someone with write
access to registry's database would, is found by `ssu audit verify registry` with its finding.

Registry seals its records under two signed heads (4 and 6 records) and licensing, a real
service consuming `registry.audit.sealed.v1`, keeps copies of both.
"""

import asyncio
import base64
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
import pytest_asyncio
import yaml
from harness import (
    ADMIN,
    AMQP_URL,
    ROOT,
    RunningService,
    eventually,
    publish_raw,
    read_dlq,
    reset_service,
    running_service,
    settings_for,
    test_dsn,
)
from ssu_common import merkle, seal
from ssu_common.audit import AuditRecord
from ssu_contracts import RegistryAuditSealedV1, make_event, make_iin
from ssu_licensing.main import build as build_licensing
from ssu_licensing.settings import Settings as LicensingSettings
from ssu_registry.main import build as build_registry
from ssu_registry.settings import Settings as RegistrySettings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SSU = str(Path(sys.executable).parent / "ssu")
# What each service's database keeps of registry's log, saved once and restored after each test.
SAVE = {
    "registry": [
        "CREATE TABLE saved_records AS SELECT * FROM audit_records",
        "CREATE TABLE saved_heads AS SELECT * FROM audit_heads",
    ],
    "licensing": ["CREATE TABLE saved_copies AS SELECT * FROM audit_head_copies"],
}
RESTORE = {
    "registry": [
        "TRUNCATE audit_records, audit_heads",
        "INSERT INTO audit_records SELECT * FROM saved_records",
        "INSERT INTO audit_heads SELECT * FROM saved_heads",
    ],
    "licensing": [
        "TRUNCATE audit_head_copies",
        "INSERT INTO audit_head_copies SELECT * FROM saved_copies",
    ],
}
KEYS = seal.PublicKeys.load(ROOT / "deploy" / "audit-keys" / "public.yaml")


def _recipient(serial: int) -> dict[str, object]:
    birth = date(1950, 1, 1 + serial)
    return {
        "iin": make_iin(birth, "female", serial=800 + serial),
        "full_name": "Айгерим Сейтқали",
        "birth_date": birth.isoformat(),
        "category": "elderly",
        "region": "630000000",
        "language": "kk",
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> AsyncIterator[tuple[RunningService, RunningService]]:
    await reset_service("registry")
    await reset_service("licensing")
    async with (
        running_service(build_licensing(settings_for(LicensingSettings, "licensing"))) as lic,
        running_service(build_registry(settings_for(RegistrySettings, "registry"))) as reg,
    ):
        for n in range(3):
            r = await reg.client.post("/v1/recipients", json=_recipient(n), headers=ADMIN)
            assert r.status_code == 201, r.text
        iin = _recipient(0)["iin"]
        official = {**ADMIN, "X-SSU-Official": quote("operator Б. Нұрланов")}
        assert (await reg.client.get(f"/v1/recipients/{iin}", headers=official)).status_code == 200
        first = await reg.runtime.seal_audit()
        for n in range(3, 5):
            r = await reg.client.post("/v1/recipients", json=_recipient(n), headers=ADMIN)
            assert r.status_code == 201, r.text
        second = await reg.runtime.seal_audit()
        assert (first and first.tree_size, second and second.tree_size) == (4, 6)

        async def copies() -> int:
            return int(await lic.pool.fetchval("SELECT count(*) FROM audit_head_copies"))

        await eventually(lambda: _equals(copies, 2), timeout=20)
        for running, statements in zip((reg, lic), SAVE.values(), strict=True):
            for statement in statements:
                await running.pool.execute(statement)
        yield reg, lic


async def _equals(check, expected: int) -> bool:  # type: ignore[no-untyped-def]
    return bool(await check() == expected)


@pytest_asyncio.fixture(loop_scope="session")
async def svc(world: tuple[RunningService, RunningService]) -> AsyncIterator[RunningService]:
    """The registry, its log and licensing's copies as sealed; restored after each test."""
    yield world[0]
    for running, statements in zip(world, RESTORE.values(), strict=True):
        for statement in statements:
            await running.pool.execute(statement)


async def verify() -> tuple[int, list[str], str]:
    """`ssu audit verify registry` as an operator runs it: exit code, findings, summary."""
    env = {
        **os.environ,
        "SSU_REGISTRY_DATABASE_URL": test_dsn("registry"),
        "SSU_LICENSING_DATABASE_URL": test_dsn("licensing"),
        "SSU_BILLING_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        "SSU_NOTIFICATION_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
        "SSU_AMQP_URL": AMQP_URL,
    }
    proc = await asyncio.create_subprocess_exec(
        SSU,
        "audit",
        "verify",
        "registry",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    lines = out.decode().splitlines()
    assert proc.returncode is not None
    assert lines, f"exit {proc.returncode}: {err.decode()[-2000:]}"
    return proc.returncode, lines[:-1], lines[-1]


async def _id_at(svc: RunningService, leaf: int) -> int:
    return int(await svc.pool.fetchval("SELECT id FROM audit_records WHERE leaf_index = $1", leaf))


async def test_an_untouched_log_verifies_and_names_actor_official_and_reads(svc) -> None:  # type: ignore[no-untyped-def]
    assert await verify() == (
        0,
        [],
        "registry: 6 records (6 sealed), 2 signed heads, 2 copies elsewhere, 0 problems",
    )
    rows = await svc.pool.fetch(
        "SELECT client, official, aggregate_type, action, reason FROM audit_records"
        " ORDER BY leaf_index"
    )
    assert [tuple(r) for r in rows] == [
        ("dev-admin", None, "recipient", "recipient.registered", None),
        ("dev-admin", None, "recipient", "recipient.registered", None),
        ("dev-admin", None, "recipient", "recipient.registered", None),
        ("dev-admin", "operator Б. Нұрланов", "recipient", "recipient.read", "record"),
        ("dev-admin", None, "recipient", "recipient.registered", None),
        ("dev-admin", None, "recipient", "recipient.registered", None),
    ]


async def test_an_edited_record_is_found(svc) -> None:  # type: ignore[no-untyped-def]
    edited = await _id_at(svc, 1)
    await svc.pool.execute("UPDATE audit_records SET client = 'nobody' WHERE leaf_index = 1")
    assert await verify() == (
        3,
        [
            f"record {edited}: edited after it was sealed (its leaf hash differs)",
            "head 4: the records do not reproduce its signed root",
            "head 6: the records do not reproduce its signed root",
        ],
        "registry: 6 records (6 sealed), 2 signed heads, 2 copies elsewhere, 3 problems",
    )


async def test_a_deleted_record_is_found(svc) -> None:  # type: ignore[no-untyped-def]
    await svc.pool.execute("DELETE FROM audit_records WHERE leaf_index = 3")
    code, findings, _ = await verify()
    assert (code, findings) == (
        3,
        [
            "leaf 3: missing: a sealed record was deleted",
            "head 4: the records do not reproduce its signed root",
            "head 6: the records do not reproduce its signed root",
        ],
    )


async def test_an_inserted_record_is_found(svc) -> None:  # type: ignore[no-untyped-def]
    # A forged record slipped into history at position 2, later ones moved up, its leaf hash
    # computed correctly.
    await svc.pool.execute(
        "UPDATE audit_records SET leaf_index = -leaf_index - 1 WHERE leaf_index >= 2"
    )
    await svc.pool.execute("UPDATE audit_records SET leaf_index = -leaf_index WHERE leaf_index < 0")
    row = await svc.pool.fetchrow(
        "INSERT INTO audit_records (client, aggregate_type, aggregate_id, action, correlation_id,"
        " leaf_index) VALUES ('dev-admin', 'recipient', '791028302728', 'recipient.registered',"
        " $1, 2) RETURNING *",
        str(uuid.uuid4()),
    )
    forged = AuditRecord(**dict(row))
    await svc.pool.execute(
        "UPDATE audit_records SET leaf_hash = $1 WHERE id = $2",
        merkle.leaf_hash(forged.canonical()),
        forged.id,
    )
    code, findings, _ = await verify()
    assert (code, findings) == (
        3,
        [
            "head 4: the records do not reproduce its signed root",
            "head 6: the records do not reproduce its signed root",
            "leaf 6: marked sealed, but no signed head covers it (inserted)",
        ],
    )


async def test_a_truncated_log_is_found_through_the_copies(svc) -> None:  # type: ignore[no-untyped-def]
    # The last records and the head that covers them are gone; what is left is consistent.
    await svc.pool.execute("DELETE FROM audit_records WHERE leaf_index >= 4")
    await svc.pool.execute("DELETE FROM audit_heads WHERE tree_size > 4")
    assert await verify() == (
        3,
        [
            "head 6: missing here; licensing holds a signed copy",
            "head 6: covers 6 records, the log ends at 4 (truncated)",
        ],
        "registry: 4 records (4 sealed), 1 signed heads, 2 copies elsewhere, 2 problems",
    )


async def test_a_rewrite_that_recomputes_every_hash_is_found(svc) -> None:  # type: ignore[no-untyped-def]
    # The attacker edits a record and recomputes everything there is to recompute: the leaf
    # hash, both roots, the frontier and the previous-root link. Only the signatures cannot be
    # made again without the service's private key.
    await svc.pool.execute("UPDATE audit_records SET client = 'nobody' WHERE leaf_index = 1")
    records = await seal.records(svc.pool)
    leaves = [merkle.leaf_hash(r.canonical()) for r in records]
    for r, leaf in zip(records, leaves, strict=True):
        await svc.pool.execute("UPDATE audit_records SET leaf_hash = $1 WHERE id = $2", leaf, r.id)
    root4, root6 = merkle.root(leaves[:4]), merkle.root(leaves[:6])
    await svc.pool.execute("UPDATE audit_heads SET root_hash = $1 WHERE tree_size = 4", root4)
    await svc.pool.execute(
        "UPDATE audit_heads SET root_hash = $1, previous_root_hash = $2 WHERE tree_size = 6",
        root6,
        root4,
    )
    code, findings, _ = await verify()
    assert (code, findings) == (
        3,
        [
            "head 4: the signature does not verify (altered)",
            "head 6: the signature does not verify (altered)",
            "head 4: differs from the copy held by licensing",
            "head 6: differs from the copy held by licensing",
            "head 4: the records do not reproduce its signed root",
            "head 6: the records do not reproduce its signed root",
        ],
    )


async def test_consistency_of_successive_heads_is_checked(svc) -> None:  # type: ignore[no-untyped-def]
    heads = await seal.heads(svc.pool, service="registry")
    leaves = [merkle.leaf_hash(r.canonical()) for r in await seal.records(svc.pool)]
    proof = merkle.consistency_proof(leaves, 4)
    assert merkle.verify_consistency(4, 6, heads[0].root_hash, heads[1].root_hash, proof)
    assert (heads[1].previous_tree_size, heads[1].previous_root_hash) == (4, heads[0].root_hash)
    # A later head that does not name the earlier one as its predecessor is reported.
    await svc.pool.execute("DELETE FROM audit_heads WHERE tree_size = 4")
    await svc.pool.execute("DELETE FROM audit_head_copies")  # nowhere else either
    assert [str(f) for f in _verify_here(heads[1:], await seal.records(svc.pool))] == [
        "head 6: follows head 4, which no one holds"
    ]


def _verify_here(heads: list[seal.TreeHead], records: list[AuditRecord]) -> list[seal.Finding]:
    return seal.verify(
        service="registry", records=records, own_heads=heads, copies={}, keys=KEYS
    ).findings


async def test_a_forged_head_is_refused_by_the_copy_holders(svc, world) -> None:  # type: ignore[no-untyped-def]
    lic = world[1]
    forged = RegistryAuditSealedV1(
        service="registry",
        tree_size=7,
        root_hash="00" * 32,
        sealed_at="2026-01-01T00:00:00.000000Z",
        previous_tree_size=6,
        previous_root_hash=None,
        key_id="909944245d80fbff",
        signature=base64.b64encode(b"\x00" * 64).decode(),
    )
    envelope = make_event(forged, source="/ssu/registry", subject="registry/7")
    await publish_raw(envelope.to_bytes(), routing_key=envelope.type)
    [letter] = await read_dlq("licensing", expect=1)
    assert letter.headers["x-ssu-dead-letter-reason"] == (
        "refused: the signature of registry's head 7 does not verify"
    )
    assert await lic.pool.fetchval("SELECT max(tree_size) FROM audit_head_copies") == 6
    assert json.loads(letter.body)["id"] == envelope.id


async def test_one_sealer_leads_at_a_time(svc) -> None:  # type: ignore[no-untyped-def]
    signer = svc.runtime.signer
    assert signer is not None
    r = await svc.client.post("/v1/recipients", json=_recipient(9), headers=ADMIN)
    assert r.status_code == 201
    async with svc.pool.acquire() as holder, holder.transaction():
        # Another replica is sealing right now: this one stands aside.
        await holder.execute("SELECT pg_advisory_xact_lock(582031775)")
        async with svc.pool.acquire() as conn:
            assert await seal.seal_once(conn, service="registry", signer=signer) is None
    async with svc.pool.acquire() as conn:
        head = await seal.seal_once(conn, service="registry", signer=signer)
    assert head is not None
    assert (head.tree_size, head.previous_tree_size) == (7, 6)
    assert KEYS.verifies(head)
    await svc.pool.execute("DELETE FROM outbox WHERE event_type = 'registry.audit.sealed.v1'")


async def test_an_outsider_verifies_with_the_code_in_security_md(svc, world) -> None:  # type: ignore[no-untyped-def]
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    documented: dict[str, object] = {}
    exec(code, documented)  # the documented example, run as written
    check = documented["check"]
    items = (await svc.client.get("/v1/audit", headers=ADMIN)).json()["items"]
    records = sorted(
        (i for i in items if i["leaf_index"] is not None), key=lambda i: i["leaf_index"]
    )
    public = next(
        k["public_key"]
        for k in yaml.safe_load((ROOT / "deploy/audit-keys/public.yaml").read_text())["keys"]
        if k["service"] == "registry"
    )
    copies = await seal.copies_of(world[1].pool, service="registry")
    assert [c.tree_size for c in copies] == [4, 6]
    for copy in copies:
        check(copy.as_event().model_dump(), records, public)  # type: ignore[operator]
    await svc.pool.execute("UPDATE audit_records SET reason = 'x' WHERE leaf_index = 5")
    items = (await svc.client.get("/v1/audit", headers=ADMIN)).json()["items"]
    records = sorted(items, key=lambda i: i["leaf_index"])
    check(copies[0].as_event().model_dump(), records, public)  # type: ignore[operator]
    with pytest.raises(AssertionError, match="records do not match the signed head"):
        check(copies[1].as_event().model_dump(), records, public)  # type: ignore[operator]
