"""`ssu keys rotate`: a running registry moves its sealed data to a new key in batches while it
keeps answering reads; afterwards the old key can go."""

import asyncio
import contextlib
import json
import os
import sys
from collections import Counter
from datetime import date
from pathlib import Path

import asyncpg
import httpx
import pytest
from harness import ADMIN, reset_service, spawn_service, test_dsn, wait_ready
from registry_world import recipient_body
from ssu_common import generate_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

OLD, NEW, INDEX = generate_key(), generate_key(), generate_key()
SSU = str(Path(sys.executable).parent / "ssu")


async def ssu(*args: str, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        SSU,
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


def keys(current: str, **data_keys: str) -> str:
    return json.dumps({"current": current, "data_keys": data_keys, "index_key": INDEX})


async def key_ids(dsn: str) -> Counter[str]:
    """Key ids of every sealed value of the recipients table, read from the raw tokens."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT iin, full_name, birth_date, phone FROM recipients")
    finally:
        await conn.close()
    ids: Counter[str] = Counter()
    for r in rows:
        for token in r.values():
            if token is not None:
                ids[token[2 : 2 + token[1]].decode()] += 1
    return ids


@pytest.mark.timeout(240)
async def test_keys_rotate_reseals_a_running_service_in_batches(tmp_path: Path) -> None:
    await reset_service("registry")
    dsn = test_dsn("registry")
    first = spawn_service(
        "registry", log_dir=tmp_path, env={"SSU_REGISTRY_KEYS": keys("k1", k1=OLD)}
    )
    people = [recipient_body(birth=date(1940 + i, 3, 4)) for i in range(23)]
    try:
        await wait_ready(first)
        async with httpx.AsyncClient(base_url=first.url, headers=ADMIN) as client:
            for body in people[:20]:
                assert (await client.post("/v1/recipients", json=body)).status_code == 201
    finally:
        first.stop()
    assert await key_ids(dsn) == Counter({"k1": 80})

    # The new key becomes current; the old one stays readable. Small batches: several steps.
    second = spawn_service(
        "registry",
        log_dir=tmp_path,
        env={"SSU_REGISTRY_KEYS": keys("k2", k1=OLD, k2=NEW), "SSU_ROTATION_BATCH": "6"},
    )
    try:
        await wait_ready(second)
        async with httpx.AsyncClient(base_url=second.url, headers=ADMIN) as client:
            for body in people[20:]:
                assert (await client.post("/v1/recipients", json=body)).status_code == 201
            assert await key_ids(dsn) == Counter({"k1": 80, "k2": 12})

            answers: list[tuple[int, str]] = []

            async def keep_reading() -> None:
                while True:
                    for body in people:
                        r = await client.get(f"/v1/recipients/{body['iin']}")
                        answers.append((r.status_code, r.json().get("full_name", "")))

            reader = asyncio.create_task(keep_reading())
            try:
                code, out = await ssu("keys", "rotate", "registry", SSU_REGISTRY_URL=second.url)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader
        assert code == 0, out
        lines = out.strip().splitlines()
        assert lines[0] == "registry: resealed 6, remaining 14"
        assert lines[-2:] == [
            "registry: resealed 20, remaining 0",
            "registry: done, every value under key k2",
        ]
        assert answers and set(answers) == {(200, "Айгерим Сейтқали")}
    finally:
        second.stop()
    assert await key_ids(dsn) == Counter({"k2": 92})

    # The old key is gone: everything still opens.
    third = spawn_service(
        "registry", log_dir=tmp_path, env={"SSU_REGISTRY_KEYS": keys("k2", k2=NEW)}
    )
    try:
        await wait_ready(third)
        async with httpx.AsyncClient(base_url=third.url, headers=ADMIN) as client:
            for body in people:
                r = await client.get(f"/v1/recipients/{body['iin']}")
                assert r.status_code == 200
                assert (r.json()["iin"], r.json()["phone"]) == (body["iin"], "+77051112233")
            code, out = await ssu("keys", "rotate", "registry", SSU_REGISTRY_URL=third.url)
            assert (code, out.strip().splitlines()[-1]) == (
                0,
                "registry: done, every value under key k2",
            )
    finally:
        third.stop()


@pytest.mark.timeout(120)
async def test_keys_rotate_needs_the_scope(tmp_path: Path) -> None:
    await reset_service("registry")
    proc = spawn_service("registry", log_dir=tmp_path)
    try:
        await wait_ready(proc)
        code, out = await ssu(
            "keys", "rotate", "registry", SSU_REGISTRY_URL=proc.url, SSU_API_KEY="ssu-dev-reader"
        )
        assert code == 1 and "403" in out
    finally:
        proc.stop()
