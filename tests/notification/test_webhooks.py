"""Webhooks across trust boundaries: Standard Webhooks signatures verified as a receiver does,
secret rotation, sealed secrets, callback addresses (special-purpose ranges, one resolution,
no redirects) and subscriptions to personal data limited to the key's region."""

import asyncio
import socket
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import standardwebhooks.webhooks as swh
import yaml
from harness import ADMIN, ROOT, eventually, find_pii
from notification_world import (
    ASTANA,
    EAST,
    addressee,
    license_fields,
    new_bin,
    new_iin,
    notification_world,
    publish,
    uid,
)
from raw_tables import raw_dump
from ssu_common import hash_key
from ssu_contracts import EnrollmentStartedV1, LicenseSuspendedV1, RecipientRegisteredV1
from ssu_notification import channels, domain
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

pytestmark = pytest.mark.asyncio(loop_scope="session")

ASTANA_ADMIN = {"Authorization": "Bearer test-astana-hooks"}
HOOKS_ONLY = {"Authorization": "Bearer test-hooks-only"}


def _keys_file(tmp: Path) -> Path:
    doc = yaml.safe_load((ROOT / "deploy" / "api-keys.dev.yaml").read_text(encoding="utf-8"))
    doc["clients"] += [
        {
            "client": "astana-hooks",
            "key_sha256": hash_key("test-astana-hooks"),
            "scopes": ["notification:admin", "registry:read"],
            "region": ASTANA,
        },
        {
            "client": "hooks-only",
            "key_sha256": hash_key("test-hooks-only"),
            "scopes": ["notification:admin"],
        },
    ]
    path = tmp / "api-keys.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    keys = _keys_file(tmp_path_factory.mktemp("keys"))
    async with notification_world(api_keys_file=keys) as w:
        yield w


async def _subscribe(svc: Any, url: str, types: list[str], headers: Any = ADMIN) -> Any:
    r = await svc.client.post(
        "/v1/subscriptions", json={"callback_url": url, "event_types": types}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()


async def _received(
    sinks: Any, event_id: str, count: int = 1, name: str | None = None
) -> list[dict[str, Any]]:
    async def read() -> Any:
        got = [
            h
            for h in sinks.received.hooks
            if h["headers"].get("x-ssu-event-id") == event_id and name in (None, h["name"])
        ]
        return got if len(got) >= count else None

    result: list[dict[str, Any]] = await eventually(read, timeout=15)
    return result


async def _suspend(region: str = EAST) -> Any:
    fields = {**license_fields(new_bin()), "region": region}
    return await publish(
        LicenseSuspendedV1(**{**fields, "status": "suspended", "seq": 2}, reason="проверка")
    )


class _Later(datetime):
    """The receiver's clock six minutes after the delivery (past the 5-minute tolerance)."""

    @classmethod
    def now(cls, tz: Any = None) -> "_Later":
        real = datetime.now(tz or UTC) + timedelta(minutes=6)
        return cls.fromtimestamp(real.timestamp(), tz or UTC)


async def test_a_delivery_verifies_as_standard_webhooks_and_a_later_replay_fails(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc, sinks = world
    sub = await _subscribe(svc, sinks.hook_url("std"), ["licensing.license.suspended.v1"])
    assert sub["secret"].startswith("whsec_")
    event = await _suspend()
    (call,) = await _received(sinks, event.id, name="std")
    body, headers = call["body"].encode(), call["headers"]
    # What a receiver does with the library of the standard:
    envelope = Webhook(sub["secret"]).verify(body, headers)
    assert envelope["id"] == event.id and envelope["type"] == "licensing.license.suspended.v1"
    assert headers["webhook-id"] and "x-ssu-signature" not in headers
    # A tampered body or a foreign secret does not verify.
    with pytest.raises(WebhookVerificationError):
        Webhook(sub["secret"]).verify(body.replace(b"suspended", b"revoked"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(domain.new_webhook_secret()).verify(body, headers)
    # The same capture replayed later than the tolerance is refused.
    monkeypatch.setattr(swh, "datetime", _Later)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(sub["secret"]).verify(body, headers)


async def test_during_a_rotation_either_secret_verifies(world: Any) -> None:
    svc, sinks = world
    sub = await _subscribe(svc, sinks.hook_url("rotating"), ["licensing.license.suspended.v1"])
    old = sub["secret"]
    r = await svc.client.post(
        f"/v1/subscriptions/{sub['id']}/secret",
        json={"previous_valid_seconds": 3600},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    rotated = r.json()
    new = rotated["secret"]
    assert new != old and new.startswith("whsec_")
    assert rotated["previous_secret_expires_at"] is not None
    event = await _suspend()
    (call,) = await _received(sinks, event.id, name="rotating")
    body, headers = call["body"].encode(), call["headers"]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["id"] == event.id
    # Once the previous secret expires, only the current one signs.
    r = await svc.client.post(
        f"/v1/subscriptions/{sub['id']}/secret",
        json={"previous_valid_seconds": 0},
        headers=ADMIN,
    )
    newest = r.json()["secret"]
    event = await _suspend()
    (call,) = await _received(sinks, event.id, name="rotating")
    body, headers = call["body"].encode(), call["headers"]
    assert len(headers["webhook-signature"].split(" ")) == 1
    assert Webhook(newest).verify(body, headers)["id"] == event.id
    for stale in (old, new):
        with pytest.raises(WebhookVerificationError):
            Webhook(stale).verify(body, headers)
    gone = await svc.client.post(f"/v1/subscriptions/{uid()}/secret", json={}, headers=ADMIN)
    assert gone.status_code == 404


async def test_secrets_are_sealed_at_rest(world: Any) -> None:
    svc, sinks = world
    sub = await _subscribe(svc, sinks.hook_url("sealed"), ["billing.invoice.issued.v1"])
    await svc.client.post(f"/v1/subscriptions/{sub['id']}/secret", json={}, headers=ADMIN)
    raw = await svc.pool.fetchrow(
        "SELECT secret, previous_secret FROM subscriptions WHERE id = $1::uuid", sub["id"]
    )
    secret_bytes = sub["secret"].encode()
    for token in (raw["secret"], raw["previous_secret"]):
        assert token[0] == 1 and secret_bytes not in token
        assert token[2 : 2 + token[1]].decode() == "dev-notification-1"
    dump = await svc.pool.fetchval("SELECT string_agg(s::text, ' ') FROM subscriptions s")
    assert "whsec_" not in dump


@pytest.mark.parametrize(
    "url",
    [
        "https://100.64.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/hook",
        "https://[::ffff:169.254.169.254]/hook",
        "https://[::ffff:a9fe:a9fe]/hook",
    ],
)
async def test_special_purpose_callbacks_are_refused(world: Any, url: str) -> None:
    svc, _ = world
    # A development service allows loopback; these are never loopback.
    r = await svc.client.post(
        "/v1/subscriptions",
        json={"callback_url": url, "event_types": ["billing.invoice.issued.v1"]},
        headers=ADMIN,
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0] == {
        "field": "callback_url",
        "message": "must not point at a loopback, private or special-purpose address",
    }


@pytest.mark.parametrize("address", ["100.64.0.1", "169.254.169.254", "fd00::1", "::ffff:10.0.0.1"])
async def test_a_name_resolving_to_a_special_purpose_address_is_refused_at_delivery(
    address: str,
) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return [address]

    with pytest.raises(channels.SendError, match="resolves to a special-purpose address"):
        await channels.send_webhook(
            url="https://hooks.example.kz/h",
            body=b"{}",
            secrets=[domain.new_webhook_secret()],
            delivery_id="d",
            event_id="e",
            event_type="t",
            timeout=2.0,
            resolver=resolver,
        )


class _Receiver:
    """A bare HTTP server on loopback that records requests and answers a fixed response."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.status, self.headers = status, headers or {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
        length = int(fields.get("Content-Length", fields.get("content-length", "0")))
        if length:
            await reader.readexactly(length)
        self.requests.append((head[0], {k.lower(): v for k, v in fields.items()}))
        extra = "".join(f"{k}: {v}\r\n" for k, v in self.headers.items())
        head_out = f"HTTP/1.1 {self.status} X\r\n{extra}Content-Length: 0\r\n"
        writer.write((head_out + "Connection: close\r\n\r\n").encode())
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> "_Receiver":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


class _Rebinding:
    """A resolver that answers one address first and another on every later question."""

    def __init__(self, first: str, then: str) -> None:
        self.first, self.then, self.questions = first, then, 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.questions += 1
        return [self.first if self.questions == 1 else self.then]


async def test_the_address_checked_is_the_address_connected_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the system resolver answers the callback's name with a public address
    first, then with our loopback receiver. The delivery goes to the public address it checked
    (unreachable here): the name is never resolved again, nothing reaches inside."""
    real = socket.getaddrinfo
    questions: list[str] = []

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        # anyio asks with the IDNA-encoded name (bytes), asyncio with str.
        if (host.decode() if isinstance(host, bytes) else host) != "rebind.example.kz":
            return real(host, port, *args, **kwargs)
        questions.append("rebind.example.kz")
        ip = "93.184.215.14" if len(questions) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    async with _Receiver() as inside:
        with pytest.raises(channels.SendError, match=r"rebind\.example\.kz at 93\.184\.215\.14"):
            await channels.send_webhook(
                url=f"http://rebind.example.kz:{inside.port}/hook",
                body=b"{}",
                secrets=[domain.new_webhook_secret()],
                delivery_id="d",
                event_id="e",
                event_type="t",
                timeout=1.0,
            )
        assert questions == ["rebind.example.kz"]
        assert inside.requests == []


async def test_the_pinned_address_is_connected_to_with_the_host_name_kept() -> None:
    """Development (loopback allowed): the first answer is connected to, the second never
    asked, and the request still names the callback's host."""
    async with _Receiver() as first:
        resolver = _Rebinding(first="127.0.0.1", then="10.255.255.1")
        await channels.send_webhook(
            url=f"http://hooks.example.kz:{first.port}/hook",
            body=b"{}",
            secrets=[domain.new_webhook_secret()],
            delivery_id="d",
            event_id="e",
            event_type="t",
            timeout=2.0,
            resolver=resolver,
            allow_loopback=True,
        )
        assert resolver.questions == 1
        ((line, headers),) = first.requests
        assert line == "POST /hook HTTP/1.1"
        assert headers["host"] == f"hooks.example.kz:{first.port}"


async def test_a_redirect_is_not_followed() -> None:
    async with _Receiver() as target:
        location = {"Location": f"http://127.0.0.1:{target.port}/elsewhere"}
        async with _Receiver(status=302, headers=location) as redirecting:
            with pytest.raises(channels.SendError, match=r"302 \(not followed\)"):
                await channels.send_webhook(
                    url=f"http://127.0.0.1:{redirecting.port}/hook",
                    body=b"{}",
                    secrets=[domain.new_webhook_secret()],
                    delivery_id="d",
                    event_id="e",
                    event_type="t",
                    timeout=2.0,
                    allow_loopback=True,
                )
            assert len(redirecting.requests) == 1
        assert target.requests == []


async def _register_and_start(region: str) -> tuple[Any, str]:
    iin = new_iin(date(1980, 5, 6))
    await publish(
        RecipientRegisteredV1(
            iin=iin,
            full_name="Гүлнар Омарова",
            birth_date=date(1980, 5, 6),
            category="adult_disability",
            region=region,
            language="kk",
            phone="+77057778899",
        ),
        source="/ssu/registry",
    )
    started = await publish(
        EnrollmentStartedV1(
            enrollment_id=uid(),
            iin=iin,
            provider_bin="940140000385",
            provider_name="ТОО «Умит»",
            license_number="L-1",
            region=region,
            form="home",
            category="adult_disability",
            site_id="s1",
            start_date=date(2026, 2, 1),
            addressee=addressee("Гүлнар Омарова", phone="+77057778899"),
        ),
        source="/ssu/registry",
    )
    return started, iin


async def test_personal_data_events_reach_only_the_subscribing_keys_region(world: Any) -> None:
    svc, sinks = world
    types = ["registry.enrollment.started.v1"]
    regional = await _subscribe(svc, sinks.hook_url("astana"), types, headers=ASTANA_ADMIN)
    assert regional["region"] == ASTANA
    national = await _subscribe(svc, sinks.hook_url("national"), types)
    assert national["region"] is None
    east, _ = await _register_and_start(EAST)
    astana, _ = await _register_and_start(ASTANA)
    await _received(sinks, east.id, name="national")
    await _received(sinks, astana.id, name="national")
    (call,) = await _received(sinks, astana.id, name="astana")
    assert Webhook(regional["secret"]).verify(call["body"].encode(), call["headers"])
    await asyncio.sleep(0.5)
    east_calls = [h for h in sinks.received.hooks if h["headers"]["x-ssu-event-id"] == east.id]
    assert [c["name"] for c in east_calls] == ["national"]
    # The regional key sees and manages its own subscriptions only.
    listed = (await svc.client.get("/v1/subscriptions", headers=ASTANA_ADMIN)).json()["items"]
    assert [s["id"] for s in listed] == [regional["id"]]
    other = await svc.client.get(f"/v1/subscriptions/{national['id']}", headers=ASTANA_ADMIN)
    assert other.status_code == 404


async def test_personal_data_events_need_a_key_that_reads_registry(world: Any) -> None:
    svc, sinks = world
    r = await svc.client.post(
        "/v1/subscriptions",
        json={"callback_url": sinks.hook_url("x"),
              "event_types": ["billing.invoice.issued.v1", "registry.recipient.registered.v1"]},
        headers=HOOKS_ONLY,
    )  # fmt: skip
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "/problems/personal-events-need-registry-read"
    assert r.json()["errors"] == [
        {
            "field": "event_types.1",
            "message": "registry.recipient.registered.v1 carries personal data:"
            " the key needs registry:read",
        }
    ]
    ok = await _subscribe(svc, sinks.hook_url("x"), ["billing.invoice.issued.v1"], HOOKS_ONLY)
    assert ok["region"] is None


async def test_offers_and_the_waiting_list_carry_personal_data(world: Any) -> None:
    svc, sinks = world
    types = [
        "registry.waiting.joined.v1",
        "registry.offer.made.v1",
        "registry.offer.accepted.v1",
        "registry.offer.lapsed.v1",
    ]
    for event_type in types:
        r = await svc.client.post(
            "/v1/subscriptions",
            json={"callback_url": sinks.hook_url("x"), "event_types": [event_type]},
            headers=HOOKS_ONLY,
        )
        assert r.status_code == 403, r.text
        assert r.json()["errors"] == [
            {
                "field": "event_types.0",
                "message": f"{event_type} carries personal data: the key needs registry:read",
            }
        ]
    regional = await _subscribe(svc, sinks.hook_url("astana"), types, headers=ASTANA_ADMIN)
    assert regional["region"] == ASTANA and regional["event_types"] == sorted(types)


async def test_the_delivery_log_holds_no_clear_personal_data(world: Any) -> None:
    svc, sinks = world
    await _subscribe(svc, sinks.hook_url("pii"), ["registry.enrollment.started.v1"])
    started, iin = await _register_and_start(EAST)
    await _received(sinks, started.id, name="pii")
    dump = await raw_dump(svc.pool)
    assert iin not in dump
    assert "Гүлнар" not in dump and "Омарова" not in dump
    assert "77057778899" not in dump
    assert find_pii(dump) == []
