"""CORS for the public registry (issue 14): configured web origins may read `/v1` with GET,
without credentials; writes and other origins are not opened to browsers."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "licensing"))
from licensing_world import licensing_service

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_public_reads_are_open_to_configured_web_origins() -> None:
    async with licensing_service(cors_origins=["https://egov.kz"]) as svc:
        c = svc.client
        preflight = {"Origin": "https://egov.kz", "Access-Control-Request-Method": "GET"}
        r = await c.options("/v1/licenses", headers=preflight)
        assert r.status_code == 200, r.text
        assert r.headers["access-control-allow-origin"] == "https://egov.kz"
        r = await c.get("/v1/licenses", headers={"Origin": "https://egov.kz"})
        assert r.headers["access-control-allow-origin"] == "https://egov.kz"
        assert "etag" in r.headers["access-control-expose-headers"].lower()
        # Writes are not opened to browsers, nor other origins.
        r = await c.options(
            "/v1/applications", headers={**preflight, "Access-Control-Request-Method": "POST"}
        )
        assert r.status_code == 400
        r = await c.get("/v1/licenses", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
