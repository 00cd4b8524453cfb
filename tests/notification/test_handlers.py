"""Events in, notices out: who is told of what, on which channel, in which language."""

from dataclasses import asdict
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from harness import eventually
from notification_world import (
    EAST,
    NOW,
    addressee,
    contact,
    license_fields,
    new_bin,
    new_iin,
    notification_world,
    publish,
    uid,
)
from ssu_contracts import (
    Alternative,
    ApplicationRejectedV1,
    ApplicationSubmittedV1,
    BudgetExhaustedV1,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    EnrollmentUnplacedV1,
    Finding,
    Guardian,
    InvoiceIssuedV1,
    LicenseAmendedV1,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    LicenseSuspendedV1,
    OfferMadeV1,
    RecipientRegisteredV1,
    RecipientUpdatedV1,
    WaitingJoinedV1,
    make_event,
)
from ssu_notification import service, store

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEPT_EAST = "social.east-kazakhstan@example.gov.kz"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world() -> Any:
    async with notification_world() as w:
        yield w


async def deliveries(svc: Any, event_id: str, *, settled: bool = True) -> list[dict[str, Any]]:
    """The deliveries of an event once none is queued any more, ordered by audience/channel."""

    async def read() -> tuple[list[dict[str, Any]]] | None:
        # The inbox first: deliveries are committed with it, so none is missed in between.
        handled = await svc.pool.fetchval("SELECT count(*) FROM inbox WHERE event_id=$1", event_id)
        async with svc.pool.acquire() as conn:
            # Through the store: the columns hold sealed values.
            rows = [
                asdict(r)
                for r in await store.list_deliveries(
                    conn,
                    event_id=event_id,
                    status=None,
                    channel=None,
                    region=None,
                    after_seq=0,
                    limit=1000,
                )
            ]
        rows.sort(key=lambda r: (r["audience"], r["channel"]))
        if not handled or (settled and any(r["status"] != "sent" for r in rows)):
            return None
        return (rows,)

    (result,) = await eventually(read, timeout=15)
    return list(result)


def shape(rows: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(r["audience"], r["channel"], r["destination"], r["language"]) for r in rows]


async def test_license_lifecycle_tells_provider_and_department(world: Any) -> None:
    svc, sinks = world
    bin_ = new_bin()
    fields = license_fields(bin_, language="kk")
    issued = await publish(LicenseIssuedV1(**fields))
    suspended = await publish(
        LicenseSuspendedV1(
            **{**fields, "status": "suspended", "seq": 2, "effective_date": date(2026, 3, 1)},
            reason="санитарлық нормаларды бұзу",
        )
    )
    reinstated = await publish(LicenseReinstatedV1(**{**fields, "seq": 3}))
    revoked = await publish(
        LicenseRevokedV1(**{**fields, "status": "revoked", "seq": 4}, reason="қайталанған бұзу")
    )
    amended = await publish(LicenseAmendedV1(**{**fields, "seq": 5}))
    provider = [
        ("provider", "email", "office@umit.kz", "kk"),
        ("provider", "sms", "+77011234567", "kk"),
    ]
    department = [("department", "email", DEPT_EAST, "kk+ru")]
    assert shape(await deliveries(svc, issued.id)) == provider
    assert shape(await deliveries(svc, suspended.id)) == department + provider
    assert shape(await deliveries(svc, reinstated.id)) == provider
    assert shape(await deliveries(svc, revoked.id)) == department + provider
    assert await deliveries(svc, amended.id) == []

    number = fields["license_number"]
    sms = [s["text"] for s in sinks.received.sms if number in s["text"]]
    assert (
        f"АӘҚ: № {number} лицензияның қолданылуы 01.03.2026 бастап тоқтатыла тұрды."
        " Себебі: санитарлық нормаларды бұзу"
    ) in sms
    to_department = [
        m for m in sinks.received.mail if m["event_id"] == suspended.id and m["to"] == [DEPT_EAST]
    ]
    assert len(to_department) == 1
    assert to_department[0]["subject"] == (
        f"№ {number} лицензия тоқтатыла тұрды (ТОО «Умит») / "
        f"Приостановлена лицензия № {number} (ТОО «Умит»)"
    )
    body = to_department[0]["body"]
    assert "Шығыс Қазақстан облысының жұмыспен қамтуды үйлестіру" in body
    assert "\n----------\n\nУправление координации занятости" in body


async def test_applications_tell_the_provider_in_their_language(world: Any) -> None:
    svc, sinks = world
    bin_ = new_bin()
    finding = Finding(
        requirement_id="staff.nurse",
        kind="staff_ratio",
        core=True,
        blocking=True,
        met=False,
        expected="1.0",
        actual="0.5",
        title_ru="Медсёстры",
    )
    submitted = await publish(
        ApplicationSubmittedV1(
            application_id="APP-" + bin_,
            bin=bin_,
            provider_name="ОФ «Жан»",
            legal_form="ngo",
            region=EAST,
            contact=contact("ru", phone=None, email="jan@example.kz"),
            subtypes=license_fields(bin_)["subtypes"],
            requirement_set="2026.1",
            findings=[finding],
            submitted_at=NOW,
        )
    )
    rejected = await publish(
        ApplicationRejectedV1(
            application_id="APP-" + bin_,
            bin=bin_,
            provider_name="ОФ «Жан»",
            region=EAST,
            contact=contact("ru", phone=None, email="jan@example.kz"),
            reason="нет персонала",
            findings=[finding],
            inspector="insp",
            decided_at=NOW,
        )
    )
    assert shape(await deliveries(svc, submitted.id)) == [
        ("provider", "email", "jan@example.kz", "ru")
    ]
    rows = await deliveries(svc, rejected.id)
    assert shape(rows) == [("provider", "email", "jan@example.kz", "ru")]
    assert rows[0]["subject"] == f"Заявление APP-{bin_} на лицензию отклонено"
    assert "- Медсёстры: требуется 1.0, фактически 0.5\n" in rows[0]["body"]
    mail = [m for m in sinks.received.mail if m["event_id"] == rejected.id]
    assert mail[0]["body"] == rows[0]["body"]


async def test_invoice_uses_the_contact_book_when_the_event_has_no_contact(world: Any) -> None:
    svc, _ = world
    bin_ = new_bin()
    await deliveries(svc, (await publish(LicenseIssuedV1(**license_fields(bin_)))).id)
    invoice = await publish(
        InvoiceIssuedV1(
            invoice_id=uid(),
            invoice_number="INV-1",
            contract_number="C-1",
            provider_bin=bin_,
            region=EAST,
            period="2026-01",
            total=Decimal("1234567.89"),
            lines=3,
            issued_at=NOW,
        ),
        source="/ssu/billing",
    )
    rows = await deliveries(svc, invoice.id)
    assert shape(rows) == [
        ("provider", "email", "office@umit.kz", "ru"),
        ("provider", "sms", "+77011234567", "ru"),
    ]
    assert rows[1]["body"] == "ССУ: выставлен счёт № INV-1 за январь 2026 на сумму 1 234 567,89 ₸."
    assert rows[0]["subject"] == "Счёт № INV-1 за январь 2026"
    assert "Здравствуйте, ТОО «Умит»!" in rows[0]["body"]


async def test_budget_exhausted_tells_the_department(world: Any) -> None:
    svc, _ = world
    event = await publish(
        BudgetExhaustedV1(
            contract_number="C-9",
            provider_bin=new_bin(),
            region="710000000",
            year=2026,
            budget=Decimal("100"),
            invoiced=Decimal("100"),
            over_budget=Decimal("5.5"),
            period="2026-02",
        ),
        source="/ssu/billing",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [("department", "email", "social.astana@example.gov.kz", "kk+ru")]
    assert rows[0]["subject"] == ("№ C-9 шарттың бюджеті таусылды / Исчерпан бюджет договора № C-9")


def _enrollment(iin: str, **kw: Any) -> dict[str, Any]:
    return {
        "enrollment_id": uid(),
        "iin": iin,
        "provider_bin": "940140000385",
        "provider_name": "ТОО «Умит»",
        "license_number": "L-1",
        "region": EAST,
        "form": "home",
        "category": "child_disability",
        **kw,
    }


async def test_guardian_is_told_in_place_of_a_minor(world: Any) -> None:
    svc, sinks = world
    child = new_iin(date(2015, 2, 3), "male")
    await publish(
        RecipientRegisteredV1(
            iin=child,
            full_name="Ерлан Сейтов",
            birth_date=date(2015, 2, 3),
            category="child_disability",
            region=EAST,
            language="kk",
            phone="+77050000001",
            guardian=Guardian(name="Болат Сейтов", phone="+77019998877"),
        ),
        source="/ssu/registry",
    )
    started = await publish(
        EnrollmentStartedV1(
            **_enrollment(child),
            site_id="s1",
            start_date=date(2026, 2, 1),
            addressee=addressee("Ерлан Сейтов", phone="+77050000001"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, started.id)
    assert shape(rows) == [("guardian", "sms", "+77019998877", "kk")]
    assert rows[0]["body"] == (
        "АӘҚ: Болат Сейтов, 01.02.2026 бастап қамқорыңыздағы адамға (Ерлан Сейтов)"
        " «ТОО «Умит»» жеткізушісі арнаулы әлеуметтік қызметтер көрсетеді."
    )
    assert {"phone": "+77019998877", "text": rows[0]["body"]}.items() <= next(
        s for s in sinks.received.sms if s["phone"] == "+77019998877"
    ).items()


async def test_disruption_tells_recipient_with_alternatives_and_department(world: Any) -> None:
    svc, _ = world
    adult = new_iin(date(1950, 1, 1))
    event = await publish(
        EnrollmentDisruptedV1(
            **_enrollment(adult),
            disrupted_on=date(2026, 3, 1),
            reason="лицензия приостановлена",
            alternatives=[
                Alternative(
                    bin="990140004654",
                    name="ОФ «Шапагат»",
                    site_id="a",
                    address="ул. Абая, 1",
                    free_places=3,
                )
            ],
            addressee=addressee("Айгерим", language="ru", email="aigerim@example.kz"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [
        ("department", "email", DEPT_EAST, "kk+ru"),
        ("recipient", "email", "aigerim@example.kz", "ru"),
        ("recipient", "sms", "+77051112233", "ru"),
    ]
    assert rows[2]["body"] == (
        "ССУ: Айгерим, оказание услуг у поставщика «ТОО «Умит»» прервано с 01.03.2026."
        " Свободные места: ОФ «Шапагат», ул. Абая, 1."
    )
    assert f"Получатель: Айгерим, ИИН {adult}\n" in rows[0]["body"]


async def test_events_outside_the_table_tell_no_one(world: Any) -> None:
    svc, _ = world
    ended = await publish(
        EnrollmentEndedV1(
            **_enrollment(new_iin()),
            end_date=date(2026, 3, 1),
            reason="переезд",
        ),
        source="/ssu/registry",
    )
    assert await deliveries(svc, ended.id) == []


async def test_a_redelivered_event_sends_once(world: Any) -> None:
    svc, sinks = world
    bin_ = new_bin()
    envelope = make_event(
        LicenseIssuedV1(**license_fields(bin_, phone=None)), source="/ssu/licensing", subject=bin_
    )
    await publish(envelope.data and LicenseIssuedV1(**license_fields(bin_)), envelope=envelope)
    await publish(LicenseIssuedV1(**license_fields(bin_)), envelope=envelope)
    rows = await deliveries(svc, envelope.id)
    assert shape(rows) == [("provider", "email", "office@umit.kz", "ru")]
    # Even past the inbox (a second handling of the same event) the log holds one row.
    async with svc.pool.acquire() as conn, conn.transaction():
        await service.handle_event(
            conn=conn, envelope=envelope, data=LicenseIssuedV1(**envelope.data)
        )
    assert len(await deliveries(svc, envelope.id)) == 1
    assert len([m for m in sinks.received.mail if m["event_id"] == envelope.id]) == 1


async def test_revocation_tells_the_unplaced_recipient_and_department(world: Any) -> None:
    svc, _ = world
    adult = new_iin(date(1950, 1, 1))
    event = await publish(
        EnrollmentUnplacedV1(
            **_enrollment(adult),
            unplaced_on=date(2026, 4, 1),
            reason="license revoked: повторные нарушения",
            alternatives=[
                Alternative(
                    bin="990140004654",
                    name="ОФ «Шапагат»",
                    site_id="a",
                    address="ул. Абая, 1",
                    free_places=3,
                )
            ],
            addressee=addressee("Айгерим", language="ru", email="aigerim@example.kz"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [
        ("department", "email", DEPT_EAST, "kk+ru"),
        ("recipient", "email", "aigerim@example.kz", "ru"),
        ("recipient", "sms", "+77051112233", "ru"),
    ]
    assert rows[1]["subject"] == "Лицензия поставщика отозвана: вам ищут новое место"
    assert rows[2]["body"] == (
        "ССУ: Айгерим, лицензия поставщика «ТОО «Умит»» отозвана с 01.04.2026, оказание услуг"
        " у него прекращено. Вас устроят к другому поставщику в первую очередь."
        " Свободные места: ОФ «Шапагат», ул. Абая, 1."
    )
    assert rows[0]["subject"] == (
        "Қызмет алушы орынсыз қалды: лицензия қайтарып алынды (ТОО «Умит»)"
        " / Получатель услуг остался без места: лицензия отозвана (ТОО «Умит»)"
    )
    assert f"Получатель: Айгерим, ИИН {adult}\n" in rows[0]["body"]


async def test_resumption_tells_the_guardian_of_a_minor_in_kazakh(world: Any) -> None:
    svc, _ = world
    child = new_iin(date(2015, 2, 3), "male")
    await publish(
        RecipientRegisteredV1(
            iin=child,
            full_name="Ерлан Сейтов",
            birth_date=date(2015, 2, 3),
            category="child_disability",
            region=EAST,
            language="kk",
            phone="+77050000002",
            guardian=Guardian(name="Болат Сейтов", phone="+77019998866"),
        ),
        source="/ssu/registry",
    )
    event = await publish(
        EnrollmentResumedV1(
            **_enrollment(child),
            resumed_on=date(2026, 3, 15),
            addressee=addressee("Ерлан Сейтов", phone="+77050000002"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [("guardian", "sms", "+77019998866", "kk")]
    assert rows[0]["body"] == (
        "АӘҚ: Болат Сейтов, «ТОО «Умит»» жеткізушісінің қамқорыңыздағы адамға (Ерлан Сейтов)"
        " қызмет көрсетуі 15.03.2026 бастап қайта басталды."
    )


async def test_a_guardians_new_phone_from_an_update_is_the_one_told(world: Any) -> None:
    svc, _ = world
    child = new_iin(date(2015, 4, 5), "female")
    snapshot = {
        "iin": child,
        "full_name": "Ару Сейтова",
        "birth_date": date(2015, 4, 5),
        "category": "child_disability",
        "region": EAST,
        "language": "kk",
        "phone": None,
    }
    await publish(
        RecipientRegisteredV1(**snapshot, guardian=Guardian(name="Болат", phone="+77019998800")),
        source="/ssu/registry",
    )
    await publish(
        RecipientUpdatedV1(
            **snapshot,
            guardian=Guardian(name="Болат", phone="+77019998811"),
            changed=["guardian"],
            version=2,
        ),
        source="/ssu/registry",
    )
    event = await publish(
        EnrollmentResumedV1(
            **_enrollment(child),
            resumed_on=date(2026, 3, 15),
            addressee=addressee("Ару Сейтова", phone=None),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [("guardian", "sms", "+77019998811", "kk")]


def _offer(iin: str, **kw: Any) -> dict[str, Any]:
    return {
        "offer_id": uid(),
        "request_id": uid(),
        "iin": iin,
        "region": EAST,
        "form": "stationary",
        "category": "elderly",
        "provider_bin": "990140004654",
        "provider_name": "ОФ «Шапагат»",
        "license_number": "L-2",
        "site_id": "a1",
        **kw,
    }


async def test_an_offer_tells_the_recipient_by_sms_and_email_and_the_department(
    world: Any,
) -> None:
    svc, sinks = world
    adult = new_iin(date(1950, 1, 1))
    event = await publish(
        OfferMadeV1(
            **_offer(adult),
            site_address="ул. Абая, 1",
            made_on=date(2026, 5, 4),
            expires_on=date(2026, 5, 11),
            addressee=addressee("Айгерим", language="ru", email="aigerim@example.kz"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [
        ("department", "email", DEPT_EAST, "kk+ru"),
        ("recipient", "email", "aigerim@example.kz", "ru"),
        ("recipient", "sms", "+77051112233", "ru"),
    ]
    sms = (
        "ССУ: Айгерим, вам предложено место у поставщика «ОФ «Шапагат»», ул. Абая, 1. Место за"
        " вами до 11.05.2026 включительно. Чтобы принять или отказаться, сообщите в отдел"
        " соцзащиты: +7 700 000 16 16."
    )
    assert rows[2]["body"] == sms
    assert rows[1]["subject"] == "Вам предложено место: ответьте до 11.05.2026"
    assert "Адрес: ул. Абая, 1\n" in rows[1]["body"]
    assert rows[0]["subject"] == (
        "Қызмет алушыға 11.05.2026 дейін орын ұсынылды (ОФ «Шапагат»)"
        " / Получателю предложено место до 11.05.2026 (ОФ «Шапагат»)"
    )
    assert f"Получатель: Айгерим, ИИН {adult}\n" in rows[0]["body"]
    assert (
        "Сообщено получателю: Айгерим, тел. +77051112233, aigerim@example.kz\n" in (rows[0]["body"])
    )
    # What was sent is what was logged: the gateway and both mailboxes got it.
    assert {"phone": "+77051112233", "text": sms}.items() <= next(
        s for s in sinks.received.sms if s["text"] == sms
    ).items()
    mail = {m["to"][0]: m for m in sinks.received.mail if m["event_id"] == event.id}
    assert set(mail) == {DEPT_EAST, "aigerim@example.kz"}
    assert mail[DEPT_EAST]["body"] == rows[0]["body"]
    assert mail["aigerim@example.kz"]["subject"] == rows[1]["subject"]


async def test_a_shelter_offer_keeps_its_address_from_the_department_and_sms(
    world: Any,
) -> None:
    svc, _ = world
    woman = new_iin(date(1990, 6, 1))
    event = await publish(
        OfferMadeV1(
            **_offer(woman, form="temporary_stay", category="domestic_violence"),
            site_address="ул. Тихая, 7",
            made_on=date(2026, 5, 4),
            expires_on=date(2026, 5, 6),
            addressee=addressee("Динара", language="kk", email="dinara@example.kz"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [
        ("department", "email", DEPT_EAST, "kk+ru"),
        ("recipient", "email", "dinara@example.kz", "kk"),
        ("recipient", "sms", "+77051112233", "kk"),
    ]
    assert "Тихая" not in rows[0]["body"] and "Тихая" not in rows[2]["body"]
    assert "Адрес: не указывается (приют)\n" in rows[0]["body"]
    assert "Мекенжайы: ул. Тихая, 7\n" in rows[1]["body"]


async def test_a_minor_joining_the_waiting_list_is_told_through_the_guardian(world: Any) -> None:
    svc, _ = world
    child = new_iin(date(2015, 2, 3), "male")
    await publish(
        RecipientRegisteredV1(
            iin=child,
            full_name="Ерлан Сейтов",
            birth_date=date(2015, 2, 3),
            category="child_disability",
            region=EAST,
            language="kk",
            phone="+77050000003",
            guardian=Guardian(name="Болат Сейтов", phone="+77019998855"),
        ),
        source="/ssu/registry",
    )
    event = await publish(
        WaitingJoinedV1(
            request_id=uid(),
            iin=child,
            region=EAST,
            form="home",
            category="child_disability",
            asked_on=date(2026, 5, 2),
            position=3,
            waiting=7,
            addressee=addressee("Ерлан Сейтов", phone="+77050000003"),
        ),
        source="/ssu/registry",
    )
    rows = await deliveries(svc, event.id)
    assert shape(rows) == [
        ("department", "email", DEPT_EAST, "kk+ru"),
        ("guardian", "sms", "+77019998855", "kk"),
    ]
    assert rows[1]["body"] == (
        "АӘҚ: Болат Сейтов, қамқорыңыздағы адам (Ерлан Сейтов) орын кезегіне қойылды"
        " (үйде қызмет көрсету нысаны, Шығыс Қазақстан облысы). Кезектегі орны: 3,"
        " кезекте барлығы 7 адам."
    )
    assert "Сообщено опекуну: Болат Сейтов, тел. +77019998855\n" in rows[0]["body"]
    assert f"Получатель: Ерлан Сейтов, ИИН {child}\n" in rows[0]["body"]
