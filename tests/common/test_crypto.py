"""Field encryption: tokens carry their key id, open only in their own field, under a held key;
the blind index is keyed; rows written in clear before encryption are sealed by a rotation."""

import json
from datetime import date

import pytest
from harness import drop_database, test_dsn
from ssu_common import (
    CipherError,
    FieldCipher,
    SealedTable,
    ServiceKeys,
    generate_key,
    reseal_batch,
)
from ssu_common.db import create_pool, ensure_database

K1, K2, INDEX = generate_key(), generate_key(), generate_key()


def cipher(current: str = "k1", index: str = INDEX, **keys: str) -> FieldCipher:
    return FieldCipher(ServiceKeys(current=current, data_keys=keys or {"k1": K1}, index_key=index))


def test_a_token_carries_its_key_id_and_opens_in_its_own_field_only() -> None:
    c = cipher()
    token = c.seal("Сейітова Аружан", column="full_name")
    assert token is not None
    assert token[:4] == b"\x01\x02k1" and FieldCipher.key_id_of(token) == "k1"
    assert "Аружан".encode() not in token
    assert c.open(token, column="full_name") == "Сейітова Аружан"
    # Same value, fresh nonce: tokens differ (equality does not leak).
    assert c.seal("Сейітова Аружан", column="full_name") != token
    with pytest.raises(CipherError, match="does not open"):
        c.open(token, column="phone")
    tampered = token[:-1] + bytes([token[-1] ^ 1])
    with pytest.raises(CipherError):
        c.open(tampered, column="full_name")
    assert c.seal(None, column="phone") is None and c.open(None, column="phone") is None
    assert c.open_date(c.seal_date(date(2016, 9, 2), column="bd"), column="bd") == date(2016, 9, 2)


def test_old_key_ids_open_while_new_values_use_the_current_key() -> None:
    old = cipher().seal("+77019998877", column="phone")
    both = cipher("k2", k1=K1, k2=K2)
    assert old is not None and both.open(old, column="phone") == "+77019998877"
    new = both.seal("+77019998877", column="phone")
    assert new is not None and FieldCipher.key_id_of(new) == "k2"
    resealed = both.reseal(old, column="phone")
    assert resealed is not None and FieldCipher.key_id_of(resealed) == "k2"
    assert both.reseal(new, column="phone") is new
    with pytest.raises(CipherError, match="no data key 'k2'"):
        cipher().open(new, column="phone")


def test_the_blind_index_is_keyed_and_deterministic() -> None:
    a, b = cipher(), cipher(index=generate_key())
    assert a.blind_index("791028302728") == a.blind_index("791028302728")
    assert a.blind_index("791028302728") != a.blind_index("061211600012")
    assert a.blind_index("791028302728") != b.blind_index("791028302728")
    assert a.blind_digest(["x", None]) != a.blind_digest(["x", ""])


def test_keys_are_checked_when_loaded() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ServiceKeys(current="k1", data_keys={"k1": "c2hvcnQ="}, index_key=INDEX)
    with pytest.raises(ValueError, match="current key"):
        FieldCipher(ServiceKeys(current="k9", data_keys={"k1": K1}, index_key=INDEX))
    settings_keys = json.loads(
        json.dumps({"current": "k1", "data_keys": {"k1": K1}, "index_key": INDEX})
    )
    assert ServiceKeys.model_validate(settings_keys).current == "k1"


@pytest.mark.asyncio(loop_scope="session")
async def test_a_rotation_seals_values_written_in_clear_before_encryption() -> None:
    """What a 0030 migration leaves: clear bytes, the index holding the clear IIN's bytes."""
    await drop_database("crypto")
    dsn = test_dsn("crypto")
    await ensure_database(dsn)
    pool = await create_pool(dsn, max_size=2)
    table = SealedTable("people", ("id", "integer"), ("iin", "name"), {"iin_index": "iin"})
    c = cipher()
    try:
        await pool.execute(
            "CREATE TABLE people (id integer PRIMARY KEY, iin bytea, name bytea,"
            " iin_index bytea UNIQUE)"
        )
        await pool.execute(
            "INSERT INTO people VALUES (1, '791028302728', 'Иванов Пётр', '791028302728'),"
            " (2, $1, $2, $3)",
            c.seal("061211600012", column="iin"),
            c.seal("Әлия", column="name"),
            c.blind_index("061211600012"),
        )
        async with pool.acquire() as conn, conn.transaction():
            step = await reseal_batch(conn, c, table, batch=10)
        assert (step.resealed, step.remaining) == (1, 0)
        rows = {r["id"]: r for r in await pool.fetch("SELECT * FROM people")}
        assert c.open(rows[1]["iin"], column="iin") == "791028302728"
        assert c.open(rows[1]["name"], column="name") == "Иванов Пётр"
        assert rows[1]["iin_index"] == c.blind_index("791028302728")
        assert b"791028302728" not in rows[1]["iin"]
        assert c.open(rows[2]["name"], column="name") == "Әлия"
    finally:
        await pool.close()
        await drop_database("crypto")
