"""HTTP API: the delivery log and webhook subscriptions, with signed webhook deliveries."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml
from harness import ADMIN, ROOT, eventually
from notification_world import (
    EAST,
    license_fields,
    new_bin,
    notification_world,
    publish,
)
from ssu_common import hash_key
from ssu_contracts import LicenseIssuedV1, LicenseSuspendedV1
from standardwebhooks import Webhook

pytestmark = pytest.mark.asyncio(loop_scope="session")

READER = {"Authorization": "Bearer ssu-dev-reader"}
APPROVER = {"Authorization": "Bearer ssu-dev-approver"}
ASTANA_READER = {"Authorization": "Bearer test-astana-notification-reader"}
SECRET = "whsec_" + base64.b64encode(b"a-long-shared-secret-0123456789!").decode()


def _keys_file(tmp: Path) -> Path:
    """The development keys plus a regional notification reader (Astana)."""
    doc = yaml.safe_load((ROOT / "deploy" / "api-keys.dev.yaml").read_text(encoding="utf-8"))
    doc["clients"].append(
        {
            "client": "astana-reader",
            "key_sha256": hash_key("test-astana-notification-reader"),
            "scopes": ["notification:read"],
            "region": "710000000",
        }
    )
    path = tmp / "api-keys.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    keys = _keys_file(tmp_path_factory.mktemp("keys"))
    async with notification_world(api_keys_file=keys) as w:
        yield w


async def _sent(svc: Any, event_id: str, count: int) -> list[dict[str, Any]]:
    async def read() -> Any:
        r = await svc.client.get(
            "/v1/deliveries", params={"event_id": event_id, "status": "sent"}, headers=ADMIN
        )
        items = r.json()["items"]
        return items if len(items) >= count else None

    items: list[dict[str, Any]] = await eventually(read, timeout=15)
    return items


async def test_deliveries_need_a_key_with_a_notification_scope(world: Any) -> None:
    svc, _ = world
    assert (await svc.client.get("/v1/deliveries")).status_code == 401
    r = await svc.client.get("/v1/deliveries", headers=APPROVER)
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    assert (await svc.client.get("/v1/deliveries", headers=READER)).status_code == 200


async def test_deliveries_filter_page_and_mask(world: Any) -> None:
    svc, _ = world
    event = await publish(LicenseIssuedV1(**license_fields(new_bin())))
    items = await _sent(svc, event.id, 2)
    assert [(i["channel"], i["destination"]) for i in items] == [
        ("email", "o***@umit.kz"),
        ("sms", "+7*******67"),
    ]
    assert set(items[0]) == {
        "id", "event_id", "event_type", "audience", "addressee", "channel", "destination",
        "language", "subject", "status", "attempts", "next_attempt_at", "last_error",
        "created_at", "sent_at",
    }  # fmt: skip
    r = await svc.client.get(
        "/v1/deliveries", params={"event_id": event.id, "channel": "sms"}, headers=READER
    )
    assert [i["channel"] for i in r.json()["items"]] == ["sms"]
    first = await svc.client.get(
        "/v1/deliveries", params={"event_id": event.id, "limit": 1}, headers=READER
    )
    page = first.json()
    assert [i["channel"] for i in page["items"]] == ["email"] and page["next_cursor"]
    second = await svc.client.get(
        "/v1/deliveries",
        params={"event_id": event.id, "limit": 1, "cursor": page["next_cursor"]},
        headers=READER,
    )
    assert [i["channel"] for i in second.json()["items"]] == ["sms"]
    assert second.json()["next_cursor"] is None


async def test_delivery_queries_are_validated(world: Any) -> None:
    svc, _ = world
    for params, field in [
        ({"status": "lost"}, "query.status"),
        ({"channel": "pigeon"}, "query.channel"),
        ({"event_id": "x"}, "query.event_id"),
        ({"limit": 0}, "query.limit"),
        ({"cursor": "not-a-cursor"}, "query.cursor"),
    ]:
        r = await svc.client.get("/v1/deliveries", params=params, headers=READER)
        assert r.status_code == 422, params
        assert r.json()["errors"][0]["field"] == field


async def test_a_regional_key_sees_its_region_only(world: Any) -> None:
    svc, _ = world
    event = await publish(LicenseIssuedV1(**license_fields(new_bin())))
    assert len(await _sent(svc, event.id, 2)) == 2
    r = await svc.client.get("/v1/deliveries", params={"event_id": event.id}, headers=ASTANA_READER)
    assert r.status_code == 200 and r.json()["items"] == []
    assert license_fields("x")["region"] == EAST != "710000000"


async def test_subscription_lifecycle_and_the_secret_shown_once(world: Any) -> None:
    svc, _ = world
    r = await svc.client.post(
        "/v1/subscriptions",
        json={
            "callback_url": "https://crm.example.kz/ssu",
            "event_types": ["licensing.license.revoked.v1"],
            "description": "CRM",
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert len(created["secret"]) >= 32
    assert created["callback_url"] == "https://crm.example.kz/ssu"
    assert created["event_types"] == ["licensing.license.revoked.v1"]
    assert created["created_by"] == "dev-admin"
    sub_id = created["id"]
    listed = (await svc.client.get("/v1/subscriptions", headers=ADMIN)).json()["items"]
    mine = [s for s in listed if s["id"] == sub_id]
    assert len(mine) == 1 and "secret" not in mine[0]
    one = await svc.client.get(f"/v1/subscriptions/{sub_id}", headers=ADMIN)
    assert one.status_code == 200 and "secret" not in one.json()
    assert (
        await svc.client.delete(f"/v1/subscriptions/{sub_id}", headers=ADMIN)
    ).status_code == 204
    assert (
        await svc.client.delete(f"/v1/subscriptions/{sub_id}", headers=ADMIN)
    ).status_code == 404
    assert (await svc.client.get(f"/v1/subscriptions/{sub_id}", headers=ADMIN)).status_code == 404


async def test_subscriptions_need_the_admin_scope(world: Any) -> None:
    svc, _ = world
    r = await svc.client.post(
        "/v1/subscriptions",
        json={"callback_url": "https://a.kz/h", "event_types": ["licensing.license.revoked.v1"]},
        headers=READER,
    )
    assert r.status_code == 403
    assert (await svc.client.get("/v1/subscriptions", headers=READER)).status_code == 403


@pytest.mark.parametrize(
    ("body", "field", "message", "kind"),
    [
        (
            {"callback_url": "http://crm.example.kz/ssu",
             "event_types": ["billing.run.completed.v1"]},
            "callback_url",
            "must use https (http is allowed for loopback addresses only)",
            "callback-url-refused",
        ),
        (
            {"callback_url": "https://crm.example.kz/ssu",
             "event_types": ["billing.run.completed.v1", "billing.run.done.v1"]},
            "event_types.1",
            "unknown event type 'billing.run.done.v1'",
            "invalid-input",
        ),
        (
            {"callback_url": "https://crm.example.kz/ssu",
             "event_types": ["notification.delivery.failed.v1"]},
            "event_types.0",
            "unknown event type 'notification.delivery.failed.v1'",
            "invalid-input",
        ),
        (
            {"callback_url": "https://crm.example.kz/ssu",
             "event_types": ["billing.confirmation.requested.v1"]},
            "event_types.0",
            "billing.confirmation.requested.v1 carries a person's single-use code:"
            " it is never sent to webhooks",
            "event-not-for-webhooks",
        ),
        (
            {"callback_url": "https://crm.example.kz/ssu", "event_types": []},
            "event_types",
            None,
            "invalid-input",
        ),
        (
            {"callback_url": "https://crm.example.kz/ssu",
             "event_types": ["billing.run.completed.v1"], "secret": "short"},
            "secret",
            None,
            "invalid-input",
        ),
        (
            {"callback_url": "https://crm.example.kz/ssu",
             "event_types": ["billing.run.completed.v1"],
             "secret": "a-long-shared-secret-0123456789"},
            "secret",
            "must be a Standard Webhooks secret: whsec_ and base64",
            "webhook-secret-refused",
        ),
    ],
)  # fmt: skip
async def test_bad_subscriptions_are_refused(
    world: Any, body: dict[str, Any], field: str, message: str | None, kind: str
) -> None:
    svc, _ = world
    r = await svc.client.post("/v1/subscriptions", json=body, headers=ADMIN)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == f"/problems/{kind}"
    error = r.json()["errors"][0]
    assert error["field"] == field
    if message:
        assert error["message"] == message


async def test_a_refused_callback_is_explained_in_kazakh_and_russian(world: Any) -> None:
    svc, _ = world
    body = {"callback_url": "https://10.0.0.7/hook", "event_types": ["billing.run.completed.v1"]}
    for language, detail, title in [
        (
            "kk",
            "loopback, жеке немесе арнайы мақсаттағы мекенжайға нұсқамауы керек",
            "Кері шақыру URL-і қабылданбады",
        ),
        (
            "ru",
            "не должен указывать на loopback-, частный или специальный адрес",
            "URL обратного вызова отклонён",
        ),
    ]:
        r = await svc.client.post(
            "/v1/subscriptions", json=body, headers={**ADMIN, "Accept-Language": language}
        )
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "/problems/callback-url-refused"
        assert (r.json()["title"], r.json()["detail"]) == (title, detail)
        assert r.json()["errors"] == [{"field": "callback_url", "message": detail}]


async def test_a_bad_secret_on_rotation_is_its_own_kind(world: Any) -> None:
    svc, _ = world
    created = await svc.client.post(
        "/v1/subscriptions",
        json={"callback_url": "https://crm.example.kz/ssu",
              "event_types": ["billing.run.completed.v1"]},
        headers=ADMIN,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    r = await svc.client.post(
        f"/v1/subscriptions/{created.json()['id']}/secret",
        json={"secret": "whsec_" + base64.b64encode(b"x" * 20).decode()},
        headers=ADMIN,
    )
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "/problems/webhook-secret-refused"
    assert r.json()["errors"] == [
        {"field": "secret", "message": "must hold at least 24 random bytes"}
    ]


async def test_subscription_refusals_are_documented(world: Any) -> None:
    svc, _ = world
    doc = (await svc.client.get("/openapi.json")).json()
    create = doc["paths"]["/v1/subscriptions"]["post"]["responses"]
    examples = create["422"]["content"]["application/problem+json"]["examples"]
    assert set(examples) == {
        "callback-url-refused",
        "event-not-for-webhooks",
        "webhook-secret-refused",
        "invalid-input",
    }
    forbidden = create["403"]["content"]["application/problem+json"]["examples"]
    assert set(forbidden) == {"personal-events-need-registry-read"}
    rotate = doc["paths"]["/v1/subscriptions/{subscription_id}/secret"]["post"]["responses"]
    assert set(rotate["422"]["content"]["application/problem+json"]["examples"]) == {
        "webhook-secret-refused",
        "invalid-input",
    }


async def test_webhook_is_the_signed_envelope(world: Any) -> None:
    svc, sinks = world
    r = await svc.client.post(
        "/v1/subscriptions",
        json={
            "callback_url": sinks.hook_url("registry-of-social-services"),
            "event_types": ["licensing.license.suspended.v1"],
            "secret": SECRET,
        },
        headers=ADMIN,
    )
    assert r.status_code == 201, r.text
    sub_id = r.json()["id"]
    fields = license_fields(new_bin())
    issued = await publish(LicenseIssuedV1(**fields))
    suspended = await publish(
        LicenseSuspendedV1(**{**fields, "status": "suspended", "seq": 2}, reason="проверка")
    )
    items = await _sent(svc, suspended.id, 4)
    hooks = [i for i in items if i["channel"] == "webhook"]
    assert [(h["audience"], h["addressee"]) for h in hooks] == [
        ("subscriber", f"subscription:{sub_id}")
    ]
    received = [h for h in sinks.received.hooks if h["headers"]["x-ssu-event-id"] == suspended.id]
    assert len(received) == 1
    call = received[0]
    body = call["body"].encode()
    # What the receiver does: verify with the Standard Webhooks library and the shared secret.
    assert Webhook(SECRET).verify(body, call["headers"])["id"] == suspended.id
    assert call["headers"]["content-type"].startswith("application/cloudevents+json")
    envelope = json.loads(body)
    assert envelope["specversion"] == "1.0"
    assert envelope["id"] == suspended.id
    assert envelope["type"] == "licensing.license.suspended.v1"
    assert envelope["data"]["reason"] == "проверка"
    assert not [h for h in sinks.received.hooks if h["headers"]["x-ssu-event-id"] == issued.id]
    assert (
        await svc.client.delete(f"/v1/subscriptions/{sub_id}", headers=ADMIN)
    ).status_code == 204
    again = await publish(
        LicenseSuspendedV1(**{**fields, "status": "suspended", "seq": 3}, reason="ещё раз")
    )
    after = await _sent(svc, again.id, 3)
    assert [i["channel"] for i in after] == ["email", "sms", "email"]


async def test_subscriptions_are_listed_page_by_page(world: Any) -> None:
    svc, _ = world
    made = []
    for name in ("a", "b", "c"):
        r = await svc.client.post(
            "/v1/subscriptions",
            json={"callback_url": f"https://{name}.example.kz/h",
                  "event_types": ["billing.invoice.issued.v1"]},
            headers=ADMIN,
        )  # fmt: skip
        made.append(r.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await svc.client.get("/v1/subscriptions", params=params, headers=ADMIN)).json()
        assert len(page["items"]) <= 2
        seen += [s["id"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s for s in seen if s in made] == made
    assert len(seen) == len(set(seen))
    r = await svc.client.get("/v1/subscriptions", params={"cursor": "x"}, headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.cursor"
