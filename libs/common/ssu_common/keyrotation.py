"""Moving a service's sealed columns to its current data key, one batch per transaction.

Every service declares the tables and columns it seals (`SealedTable`); `reseal_batch` takes the
next rows that hold a value under another key (or clear text written before encryption), opens
and reseals them and recomputes their blind indexes, skipping rows other writers hold. Reads
keep working throughout: the cipher opens every key it still holds.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

from ssu_common.crypto import FieldCipher
from ssu_common.db import Connection


@dataclass(frozen=True)
class SealedTable:
    """A table with sealed columns; `key` identifies a row (column, SQL type); `indexes` maps a
    blind index column to the sealed column it indexes; `same_as` lets a column hold tokens
    moved from another (a previous secret) under that column's associated data."""

    table: str
    key: tuple[str, str]
    columns: tuple[str, ...]
    indexes: dict[str, str] = field(default_factory=dict)
    same_as: dict[str, str] = field(default_factory=dict)

    def column_name(self, column: str) -> str:
        """The associated data of a column's tokens: the field's name, so a value copied
        between tables of one service (an IIN on an enrollment) opens in either."""
        return self.same_as.get(column, column)


@dataclass(frozen=True)
class RotationStep:
    table: str
    resealed: int
    remaining: int


def _stale(table: SealedTable) -> str:
    return " OR ".join(
        f"({c} IS NOT NULL AND substring({c} FROM 1 FOR $1) <> $2)" for c in table.columns
    )


async def reseal_batch(
    conn: Connection, cipher: FieldCipher, table: SealedTable, *, batch: int
) -> RotationStep:
    """Reseal up to `batch` rows of one table under the current key (in the caller's
    transaction); returns how many moved and how many are left."""
    prefix = cipher.current_prefix
    key, key_type = table.key
    cols = ", ".join(table.columns)
    # Identifiers are the declarations' constants, never input.
    rows = await conn.fetch(
        f"SELECT {key} AS row_key, {cols} FROM {table.table} WHERE {_stale(table)}"  # noqa: S608
        f" LIMIT $3 FOR UPDATE SKIP LOCKED",
        len(prefix),
        prefix,
        batch,
    )
    if rows:
        values: list[list[bytes | None]] = []
        for column in table.columns:
            name = table.column_name(column)
            values.append([cipher.reseal(r[column], column=name) for r in rows])
        index_values: list[list[bytes | None]] = []
        for source in table.indexes.values():
            name = table.column_name(source)
            index_values.append([_index(cipher, cipher.open(r[source], column=name)) for r in rows])
        targets = [*table.columns, *table.indexes]
        sets = ", ".join(f"{c} = v.{c}" for c in targets)
        casts = ", ".join(f"${i + 2}::bytea[]" for i in range(len(targets)))
        await conn.execute(
            f"UPDATE {table.table} t SET {sets}"  # noqa: S608
            f" FROM unnest($1::{key_type}[], {casts}) AS v(row_key, {', '.join(targets)})"
            f" WHERE t.{key} = v.row_key",
            [r["row_key"] for r in rows],
            *values,
            *index_values,
        )
    remaining = await conn.fetchval(
        f"SELECT count(*) FROM {table.table} WHERE {_stale(table)}",  # noqa: S608
        len(prefix),
        prefix,
    )
    return RotationStep(table=table.table, resealed=len(rows), remaining=int(remaining))


def _index(cipher: FieldCipher, clear: str | None) -> bytes | None:
    return cipher.blind_index(clear) if clear is not None else None


async def stale_counts(
    conn: Connection, cipher: FieldCipher, tables: Sequence[SealedTable]
) -> dict[str, int]:
    """Rows per table holding a value not under the current key."""
    prefix = cipher.current_prefix
    out: dict[str, int] = {}
    for table in tables:
        out[table.table] = int(
            await conn.fetchval(
                f"SELECT count(*) FROM {table.table} WHERE {_stale(table)}",  # noqa: S608
                len(prefix),
                prefix,
            )
        )
    return out
