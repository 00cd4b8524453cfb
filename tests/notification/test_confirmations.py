"""A closed month's attendance to confirm (issue 19): the recipient, or the guardian in their
place, is asked in their language by SMS with the code and by email with the link; the event
is never offered to webhooks."""

from dataclasses import asdict
from datetime import date
from typing import Any

import pytest
import pytest_asyncio
from harness import eventually
from notification_world import EAST, new_bin, new_iin, notification_world, publish, uid
from ssu_contracts import ConfirmationRequestedV1, Guardian, RecipientRegisteredV1
from ssu_notification import store

pytestmark = pytest.mark.asyncio(loop_scope="session")

LINK = "https://ssu.example.kz/confirm/" + "k" * 43


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> Any:
    async with notification_world() as w:
        yield w


async def deliveries(svc: Any, event_id: str) -> list[dict[str, Any]]:
    """An event's deliveries once it is handled and every one sent, by audience and channel."""

    async def read() -> tuple[list[dict[str, Any]]] | None:
        handled = await svc.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id=$1", event_id)
        async with svc.pool.acquire() as conn:
            rows = [
                asdict(r)
                for r in await store.list_deliveries(
                    conn,
                    event_id=event_id,
                    status=None,
                    channel=None,
                    region=None,
                    after_seq=0,
                    limit=100,
                )
            ]
        if not handled or any(r["status"] != "sent" for r in rows):
            return None
        return (sorted(rows, key=lambda r: (r["audience"], r["channel"])),)

    (rows,) = await eventually(read, timeout=15)
    return list(rows)


def asked(iin: str, *, code: str = "404142") -> ConfirmationRequestedV1:
    return ConfirmationRequestedV1(
        enrollment_id=uid(),
        iin=iin,
        provider_bin=new_bin(),
        provider_name="ТОО «Умит»",
        region=EAST,
        form="stationary",
        category="elderly",
        month="2026-01",
        attended_days=20,
        link=LINK,
        sms_code=code,
        expires_on=date(2026, 3, 3),
    )


async def test_an_adult_is_asked_in_kazakh_by_sms_with_the_code_and_email_with_the_link(
    world: Any,
) -> None:
    svc, sinks = world
    iin = new_iin(date(1950, 4, 12))
    await publish(
        RecipientRegisteredV1(
            iin=iin,
            full_name="Айгерим Сейтова",
            birth_date=date(1950, 4, 12),
            category="elderly",
            region=EAST,
            language="kk",
            phone="+77051112233",
            email="aigerim@example.kz",
        ),
        source="/ssu/registry",
    )
    event = await publish(asked(iin), source="/ssu/billing")

    rows = await deliveries(svc, event.id)

    assert [(r["audience"], r["channel"], r["destination"], r["language"]) for r in rows] == [
        ("recipient", "email", "aigerim@example.kz", "kk"),
        ("recipient", "sms", "+77051112233", "kk"),
    ]
    email, sms = rows
    assert sms["body"] == (
        "АӘҚ: Айгерим Сейтова, «ТОО «Умит»» 2026 жылғы қаңтар үшін 20 күн қызмет көрсетілгенін"
        f" хабарлады. Растау не дау: {LINK} Код: 404142. Кодты ешкімге бермеңіз."
    )
    assert email["subject"] == "2026 жылғы қаңтар: қызмет көрсетілген күндерді растаңыз"
    assert f"Растау немесе дауласу үшін сілтемені ашыңыз: {LINK}\n" in email["body"]
    assert "Қызмет көрсетілген күндер саны: 20\n" in email["body"]
    assert "кодты айтыңыз: 404142\n" in email["body"]
    sent = [(s["phone"], s["text"]) for s in sinks.received.sms]
    assert ("+77051112233", sms["body"]) in sent


async def test_a_minors_guardian_is_asked_in_russian(world: Any) -> None:
    svc, _ = world
    child = new_iin(date(2016, 6, 1), "male")
    await publish(
        RecipientRegisteredV1(
            iin=child,
            full_name="Ерлан Сейтов",
            birth_date=date(2016, 6, 1),
            category="child_disability",
            region=EAST,
            language="ru",
            phone="+77050000002",
            guardian=Guardian(name="Болат Сейтов", phone="+77019998877", email="bolat@example.kz"),
        ),
        source="/ssu/registry",
    )
    event = await publish(asked(child, code="000777"), source="/ssu/billing")

    rows = await deliveries(svc, event.id)

    assert [(r["audience"], r["channel"], r["destination"], r["language"]) for r in rows] == [
        ("guardian", "email", "bolat@example.kz", "ru"),
        ("guardian", "sms", "+77019998877", "ru"),
    ]
    email, sms = rows
    assert sms["body"] == (
        "ССУ: Болат Сейтов, поставщик «ТОО «Умит»» сообщил, что за январь 2026 вашему"
        " подопечному (Ерлан Сейтов) оказаны услуги 20 дн. Подтвердить или оспорить:"
        f" {LINK} Код: 000777. Никому не сообщайте код."
    )
    assert email["subject"] == "Подтвердите дни оказания услуг вашему подопечному за январь 2026"
    assert email["body"].startswith("Здравствуйте, Болат Сейтов!\n")
    assert "Получатель услуг: Ерлан Сейтов\n" in email["body"]
    assert f"Чтобы подтвердить или оспорить, откройте ссылку: {LINK}\n" in email["body"]


async def test_without_a_contact_no_one_is_told(world: Any) -> None:
    svc, _ = world
    event = await publish(asked(new_iin()), source="/ssu/billing")
    assert await deliveries(svc, event.id) == []
