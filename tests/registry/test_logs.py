"""Full IINs never reach the logs of a running registry process."""

from pathlib import Path

import httpx
import pytest
from harness import ADMIN, processes, reset_service, spawn_service, wait_ready
from registry_world import recipient_body

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.mark.timeout(120)
async def test_iins_are_masked_in_the_service_log(tmp_path: Path) -> None:
    await reset_service("registry")
    proc = spawn_service("registry", log_dir=tmp_path, env={"SSU_LOG_LEVEL": "DEBUG"})
    body = recipient_body(guardian={"name": "Қамқоршы", "phone": "+77019998877"})
    iin = body["iin"]
    with processes(proc):
        await wait_ready(proc)
        async with httpx.AsyncClient(base_url=proc.url, headers=ADMIN, timeout=10) as http:
            assert (await http.post("/v1/recipients", json=body)).status_code == 201
            assert (await http.post("/v1/recipients", json=body)).status_code == 200
            assert (await http.get(f"/v1/recipients/{iin}")).status_code == 200
            conflict = {**body, "full_name": "Басқа"}
            assert (await http.post("/v1/recipients", json=conflict)).status_code == 409
            csv = (
                "iin,full_name,birth_date,category,region,disability_group,language,"
                f"guardian_name,guardian_phone,guardian_email\n{iin},x,1900-01-01,elderly,"
                "630000000,,kk,,,\n"
            )
            r = await http.post(
                "/v1/recipients/import", content=csv, headers={"Content-Type": "text/csv"}
            )
            assert r.status_code == 200
    log = proc.log_path.read_text(encoding="utf-8")
    assert "recipient.registered" in log
    assert iin not in log
    assert f"{iin[:2]}********{iin[-2:]}" in log
    assert "+77019998877" not in log
