"""Confirmation by the recipient (issue 19): a closed month's attendance is asked of the person,
answered once by a link's token or a 6-digit code, seen by providers and reviewed by regions."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest_asyncio
from billing_world import attend, enroll, feed, issued, licensed_provider
from harness import ADMIN, RunningService, reset_service, running_service, settings_for
from ssu_billing import domain
from ssu_billing.main import build
from ssu_billing.settings import Settings

EAST = "630000000"
ABAI = "100000000"
LINK_BASE = "https://ssu.example.kz/confirm"
PROVIDER_KEY = {"Authorization": "Bearer ssu-dev-provider"}  # BIN 940140000385
PROVIDER_BIN = "940140000385"
EAST_KEY = {"Authorization": "Bearer ssu-dev-east-kz"}
READER = {"Authorization": "Bearer ssu-dev-reader"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc() -> AsyncIterator[RunningService]:
    await reset_service("billing")
    settings = settings_for(Settings, "billing", confirmation_link_base=LINK_BASE)
    async with running_service(build(settings)) as running:  # type: ignore[arg-type]
        yield running


async def requested_events(svc: RunningService, month: str) -> dict[str, dict[str, Any]]:
    """The `billing.confirmation.requested.v1` events of a month in billing's outbox."""
    rows = await svc.pool.fetch(
        "SELECT body FROM outbox WHERE event_type = 'billing.confirmation.requested.v1'"
    )
    events = [json.loads(r["body"]) for r in rows]
    return {e["data"]["enrollment_id"]: e for e in events if e["data"]["month"] == month}


async def ask(svc: RunningService, month: str, **body: Any) -> dict[str, Any]:
    r = await svc.client.post(
        "/v1/confirmations/requests", headers=ADMIN, json={"month": month, **body}
    )
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def a_month(
    svc: RunningService, month: str, *, region: str = EAST, days: tuple[list[int], ...] = ([1],)
) -> tuple[str, list[str]]:
    """A provider with one enrollment per entry of `days`, attending those dates of `month`."""
    year = int(month[:4])
    bin_, lic, _ = await licensed_provider(svc, region=region, year=year)
    enrollments = [await enroll(svc, bin_, lic, date(year, 1, 1), region=region) for _ in days]
    await attend(svc, bin_, month, dict(zip(enrollments, days, strict=True)))
    return bin_, enrollments


async def answer(svc: RunningService, language: str | None = None, **body: Any) -> Any:
    headers = {"Accept-Language": language} if language else {}
    return await svc.client.post("/v1/confirmations/answer", json=body, headers=headers)


async def test_a_request_asks_each_enrollment_with_attendance_in_the_month(
    svc: RunningService,
) -> None:
    month = "2026-02"
    bin_, (first, second) = await a_month(svc, month, days=([2, 3, 4], [10]))
    # attendance in another month and an enrollment without any in this one are not asked
    year_lic = await licensed_provider(svc, region=EAST, year=2026)
    idle = await enroll(svc, year_lic[0], year_lic[1], date(2026, 1, 1), region=EAST)
    await attend(svc, year_lic[0], "2026-03", {idle: [5]})

    body = await ask(svc, month, region=EAST)

    assert body == {
        "month": month,
        "region": EAST,
        "requested": 2,
        "enrollments": sorted([first, second]),
    }
    rows = await svc.pool.fetch(
        "SELECT enrollment_id, month, state, attended_days, failed_attempts, answered_at,"
        "  token_digest IS NOT NULL AS has_token, code_digest IS NOT NULL AS has_code,"
        "  expires_at - requested_at AS valid"
        " FROM attendance_confirmations WHERE month = '2026-02-01' ORDER BY enrollment_id"
    )
    assert [dict(r) for r in rows] == [
        {
            "enrollment_id": e,
            "month": date(2026, 2, 1),
            "state": "requested",
            "attended_days": n,
            "failed_attempts": 0,
            "answered_at": None,
            "has_token": True,
            "has_code": True,
            "valid": timedelta(days=30),
        }
        for e, n in sorted([(first, 3), (second, 1)])
    ]
    events = await requested_events(svc, month)
    assert set(events) == {first, second}
    data = events[first]["data"]
    assert events[first]["type"] == "billing.confirmation.requested.v1"
    assert events[first]["subject"] == first
    token = data.pop("link").removeprefix(LINK_BASE + "/")
    code = data.pop("sms_code")
    expires_on = data.pop("expires_on")
    iin = data.pop("iin")
    assert data == {
        "enrollment_id": first,
        "provider_bin": bin_,
        "provider_name": f"Центр {bin_}",
        "region": EAST,
        "form": "stationary",
        "category": "elderly",
        "month": month,
        "attended_days": 3,
    }
    assert len(iin) == 12
    assert len(token) >= 40 and code.isdigit() and len(code) == 6
    assert date.fromisoformat(expires_on) >= datetime.now(UTC).date() + timedelta(days=29)
    # only keyed digests are kept: neither the token nor the code is in the row
    raw = await svc.pool.fetchrow(
        "SELECT token_digest, code_digest FROM attendance_confirmations WHERE enrollment_id = $1",
        first,
    )
    assert token.encode() not in raw["token_digest"] and code.encode() not in raw["code_digest"]

    # asked once: a second request for the month asks nobody again
    assert (await ask(svc, month, region=EAST))["requested"] == 0
    assert len(await requested_events(svc, month)) == 2
    audit = await svc.pool.fetch(
        "SELECT aggregate_id, reason FROM audit_records"
        " WHERE action = 'attendance.confirmation_requested' AND reason = $1",
        month,
    )
    assert sorted(r["aggregate_id"] for r in audit) == sorted([first, second])


async def test_a_month_not_ended_is_not_asked(svc: RunningService) -> None:
    this_month = datetime.now(UTC).strftime("%Y-%m")
    r = await svc.client.post(
        "/v1/confirmations/requests", headers=ADMIN, json={"month": this_month}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "month"
    r = await svc.client.post(
        "/v1/confirmations/requests", headers=READER, json={"month": "2026-01"}
    )
    assert r.status_code == 403


async def test_the_link_shows_the_month_and_confirms_it_once(svc: RunningService) -> None:
    month = "2026-04"
    bin_, (e,) = await a_month(svc, month, days=([6, 7],))
    await ask(svc, month, region=EAST)
    token = (await requested_events(svc, month))[e]["data"]["link"].rsplit("/", 1)[1]

    page = await svc.client.get(f"/v1/confirmations/by-token/{token}")
    assert page.status_code == 200, page.text
    assert page.headers.get_list("cache-control") == ["no-store"]
    shown = page.json()
    shown.pop("expires_at")
    assert shown == {
        "month": month,
        "provider_bin": bin_,
        "provider_name": f"Центр {bin_}",
        "form": "stationary",
        "attended_days": 2,
        "attended_dates": ["2026-04-06", "2026-04-07"],
        "state": "requested",
        "answers": ["confirm", "dispute"],
    }
    # reading the page answers nothing
    state = "SELECT state FROM attendance_confirmations WHERE enrollment_id = $1"
    assert await svc.pool.fetchval(state, e) == "requested"

    r = await answer(svc, token=token, answer="confirm")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "confirmed" and body["month"] == month
    assert body["message"] == {"kk": "Рақмет! Ай расталды.", "ru": "Спасибо! Месяц подтверждён."}
    row = await svc.pool.fetchrow(
        "SELECT state, answered_via, answered_at IS NOT NULL AS answered, dispute_reason"
        " FROM attendance_confirmations WHERE enrollment_id = $1",
        e,
    )
    assert dict(row) == {
        "state": "confirmed",
        "answered_via": "link",
        "answered": True,
        "dispute_reason": None,
    }

    # single use: the same link again, or a dispute by it, is refused
    for again, language, words in (("confirm", "kk", "бір рет"), ("dispute", "ru", "один раз")):
        r = await answer(svc, language, token=token, answer=again)
        assert r.status_code == 409, r.text
        assert r.json()["type"] == "/problems/confirmation-answered"
        assert r.json()["code"] == "answered"
        assert words in r.json()["detail"]
    assert await svc.pool.fetchval(state, e) == "confirmed"
    page = await svc.client.get(f"/v1/confirmations/by-token/{token}")
    assert page.json()["state"] == "confirmed" and page.json()["answers"] == []
    audit = await svc.pool.fetch(
        "SELECT action, reason, client FROM audit_records WHERE aggregate_id = $1"
        " AND action IN ('attendance.confirmed', 'attendance.disputed')",
        e,
    )
    assert [dict(r) for r in audit] == [
        {"action": "attendance.confirmed", "reason": f"{month} by link", "client": "anonymous"}
    ]


async def test_a_dispute_by_code_keeps_the_reason_sealed(svc: RunningService) -> None:
    month = "2026-05"
    _, (e,) = await a_month(svc, month, days=([1, 2, 3, 4, 5],))
    await ask(svc, month, region=EAST)
    code = (await requested_events(svc, month))[e]["data"]["sms_code"]
    reason = "Мамам 3-5 мамыр ауруханада болды / мама была в больнице 3-5 мая"

    r = await answer(svc, enrollment_id=e, code=code, answer="dispute", reason=reason)

    assert r.status_code == 200, r.text
    assert r.json()["state"] == "disputed"
    row = await svc.pool.fetchrow(
        "SELECT state, answered_via, dispute_reason FROM attendance_confirmations"
        " WHERE enrollment_id = $1",
        e,
    )
    assert (row["state"], row["answered_via"]) == ("disputed", "code")
    assert reason.encode() not in row["dispute_reason"]  # sealed at rest
    assert "больнице".encode() not in row["dispute_reason"]
    audit = await svc.pool.fetchval(
        "SELECT reason FROM audit_records"
        " WHERE aggregate_id = $1 AND action = 'attendance.disputed'",
        e,
    )
    assert audit == f"{month} by code, with a reason"
    # single use by code too
    again = await answer(svc, enrollment_id=e, code=code, answer="confirm")
    assert again.status_code == 409


async def test_a_wrong_code_or_token_tells_nothing_and_five_lock_the_code(
    svc: RunningService,
) -> None:
    month = "2026-06"
    _, (e, other) = await a_month(svc, month, days=([8], [9]))
    await ask(svc, month, region=EAST)
    events = await requested_events(svc, month)
    code = events[e]["data"]["sms_code"]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    unknown = [
        await answer(svc, enrollment_id=e, code=wrong, answer="confirm"),
        await answer(svc, enrollment_id=str(uuid.uuid4()), code=code, answer="confirm"),
        # the other enrollment's code is not this one's
        await answer(
            svc, enrollment_id=e, code=events[other]["data"]["sms_code"], answer="confirm"
        ),
        await answer(svc, token="x" * 43, answer="confirm"),
    ]
    assert [r.status_code for r in unknown] == [404, 404, 404, 404]
    assert len({r.json()["detail"] for r in unknown}) == 1
    assert unknown[0].json()["detail"] == "The code is not found or is wrong."
    assert {(r.json()["type"], r.json()["code"]) for r in unknown} == {
        ("/problems/confirmation-code-unknown", "unknown_code")
    }
    in_kazakh = await answer(svc, "kk", enrollment_id=e, code=wrong, answer="confirm")
    assert in_kazakh.json()["detail"] == "Код табылмады немесе қате."
    assert in_kazakh.headers["content-language"] == "kk"
    assert (await svc.client.get(f"/v1/confirmations/by-token/{'x' * 43}")).status_code == 404
    # malformed: refused before anything is looked up
    for body in (
        {"enrollment_id": e, "code": "12345", "answer": "confirm"},
        {"enrollment_id": e, "answer": "confirm"},
        {"token": "x" * 43, "enrollment_id": e, "code": code, "answer": "confirm"},
        {"token": "x" * 43, "answer": "confirm", "reason": "only with a dispute"},
        {"token": "x" * 43, "answer": "maybe"},
    ):
        assert (await answer(svc, **body)).status_code == 422, body

    # two wrong codes counted above; three more lock the code path of the enrollment
    for _ in range(2):
        assert (await answer(svc, enrollment_id=e, code=wrong, answer="confirm")).status_code == 404
    attempts = "SELECT failed_attempts FROM attendance_confirmations WHERE enrollment_id = $1"
    assert await svc.pool.fetchval(attempts, e) == domain.MAX_CODE_ATTEMPTS
    locked = await answer(svc, "ru", enrollment_id=e, code=code, answer="confirm")
    assert locked.status_code == 429, locked.text
    assert locked.json()["type"] == "/problems/confirmation-locked"
    assert locked.json()["detail"] == (
        "Слишком много неверных кодов; ответьте по ссылке или обратитесь в региональное управление."
    )
    assert await svc.pool.fetchval(
        "SELECT state FROM attendance_confirmations WHERE enrollment_id = $1", e
    ) == ("requested")
    # the link still answers (its token cannot be guessed); the other enrollment is untouched
    token = events[e]["data"]["link"].rsplit("/", 1)[1]
    assert (await answer(svc, token=token, answer="confirm")).status_code == 200
    assert await svc.pool.fetchval(attempts, other) == 0


async def test_an_expired_request_is_not_answered(svc: RunningService) -> None:
    month = "2026-07"
    _, (e,) = await a_month(svc, month)
    await ask(svc, month, region=EAST)
    token = (await requested_events(svc, month))[e]["data"]["link"].rsplit("/", 1)[1]
    await svc.pool.execute(
        "UPDATE attendance_confirmations SET expires_at = now() - interval '1 second'"
        " WHERE enrollment_id = $1",
        e,
    )
    r = await answer(svc, "kk", token=token, answer="confirm")
    assert r.status_code == 410
    assert r.json()["type"] == "/problems/confirmation-expired"
    assert r.json()["detail"] == "Жауап беру мерзімі өтті; аймақтық бөлімге хабарласыңыз."


async def test_providers_see_their_own_enrollments_and_regions_review_disputes(
    svc: RunningService,
) -> None:
    month = "2026-08"
    await feed(svc, issued(PROVIDER_BIN, "LIC-OWN-1", date(2026, 1, 1)))
    own_a = await enroll(svc, PROVIDER_BIN, "LIC-OWN-1", date(2026, 1, 1), region=EAST)
    own_b = await enroll(svc, PROVIDER_BIN, "LIC-OWN-1", date(2026, 1, 1), region=EAST)
    await attend(svc, PROVIDER_BIN, month, {own_a: [3], own_b: [4]})
    other_bin, (theirs,) = await a_month(svc, month)
    _, (abai,) = await a_month(svc, month, region=ABAI)
    await ask(svc, month)  # national: every region
    events = await requested_events(svc, month)
    assert set(events) == {own_a, own_b, theirs, abai}
    for e, reason in ((own_b, "не было"), (theirs, "не было"), (abai, "ни одного дня")):
        r = await answer(
            svc,
            enrollment_id=e,
            code=events[e]["data"]["sms_code"],
            answer="dispute",
            reason=reason,
        )
        assert r.status_code == 200, r.text

    # a provider's key: its own BIN only, without the person's words
    r = await svc.client.get("/v1/confirmations", headers=PROVIDER_KEY, params={"month": month})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["enrollment_id"], i["state"]) for i in items] == sorted(
        [(own_a, "requested"), (own_b, "disputed")]
    )
    assert all("reason" not in i for i in items)
    answered = {i["enrollment_id"]: i["answered_at"] for i in items}
    assert answered[own_a] is None and answered[own_b] is not None
    r = await svc.client.get(
        "/v1/confirmations", headers=PROVIDER_KEY, params={"provider_bin": other_bin}
    )
    assert r.status_code == 403
    assert r.json()["errors"] == [
        {"field": "provider_bin", "message": f"not the key's BIN {PROVIDER_BIN}"}
    ]

    # a region's review list: its disputed months, with the reasons (an audited read)
    r = await svc.client.get(
        "/v1/confirmations", headers=EAST_KEY, params={"state": "disputed", "month": month}
    )
    assert r.status_code == 200, r.text
    review = [(i["enrollment_id"], i["provider_bin"], i["reason"]) for i in r.json()["items"]]
    assert review == sorted([(own_b, PROVIDER_BIN, "не было"), (theirs, other_bin, "не было")])
    reads = await svc.pool.fetch(
        "SELECT aggregate_id FROM audit_records WHERE action = 'attendance.dispute_read'"
    )
    assert {own_b, theirs} <= {r["aggregate_id"] for r in reads}
    r = await svc.client.get("/v1/confirmations", headers=EAST_KEY, params={"region": ABAI})
    assert r.status_code == 404
    # a national key sees every region's; paged
    r = await svc.client.get(
        "/v1/confirmations",
        headers=ADMIN,
        params={"state": "disputed", "month": month, "limit": 2},
    )
    first_page = [i["enrollment_id"] for i in r.json()["items"]]
    r = await svc.client.get(
        "/v1/confirmations",
        headers=ADMIN,
        params={"state": "disputed", "month": month, "cursor": r.json()["next_cursor"]},
    )
    assert first_page + [i["enrollment_id"] for i in r.json()["items"]] == sorted(
        [own_b, theirs, abai]
    )
    assert r.json()["next_cursor"] is None
