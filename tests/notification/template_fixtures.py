"""One event of every notified type, and the template context the service builds for it."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ssu_contracts import (
    Addressee,
    Alternative,
    ApplicationRejectedV1,
    ApplicationSubmittedV1,
    BudgetExhaustedV1,
    ConfirmationRequestedV1,
    Contact,
    EnrollmentDisruptedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    EnrollmentUnplacedV1,
    Event,
    Finding,
    InvoiceIssuedV1,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    LicenseSuspendedV1,
    OfferAcceptedV1,
    OfferLapsedV1,
    OfferMadeV1,
    Site,
    Subtype,
    WaitingJoinedV1,
)
from ssu_notification.departments import Department
from ssu_notification.domain import Person

BIN = "940140000385"
IIN = "061211600012"
EAST = "630000000"
# as billing makes it: the page's address and a 32-byte token in URL-safe base64
CONFIRMATION_LINK = "https://ssu.example.kz/confirm/" + "T" * 43
CONTACT = Contact(email="office@umit.kz", phone="+77011234567", language="ru")
SUBTYPES = [Subtype(form="stationary", category="elderly")]
SITES = [
    Site(site_id="s1", address="г. Усть-Каменогорск, ул. Абая, 10", kato="631010000", places=40)
]
LICENSE = {
    "license_number": "KZ-2026-000123",
    "bin": BIN,
    "provider_name": "ТОО «Умит»",
    "legal_form": "private",
    "region": EAST,
    "contact": CONTACT,
    "subtypes": SUBTYPES,
    "sites": SITES,
    "status": "active",
    "seq": 1,
    "effective_date": date(2026, 1, 5),
}
FINDINGS = [
    Finding(
        requirement_id="staff.nurse",
        kind="staff_ratio",
        core=True,
        blocking=True,
        met=False,
        expected="1.0 FTE на 10 мест",
        actual="0.5 FTE на 10 мест",
        title_kk="Мейірбикелер",
        title_ru="Медицинские сёстры",
    ),
    Finding(
        requirement_id="area",
        kind="area_per_place",
        core=False,
        blocking=False,
        met=True,
        expected="6 м²",
        actual="8 м²",
    ),
]
ADDRESSEE = Addressee(name="Айгерим Сейтова", phone="+77051112233", language="kk")
ALTERNATIVES = [
    Alternative(
        bin="990140004654",
        name="ОФ «Шапагат»",
        site_id="a1",
        address="г. Усть-Каменогорск, пр. Назарбаева, 3",
        free_places=7,
        phone="+77232000000",
    ),
]
DEPARTMENT = Department(
    region=EAST,
    name_kk="Шығыс Қазақстан облысының жұмыспен қамтуды үйлестіру және әлеуметтік "
    "бағдарламалар басқармасы",
    name_ru="Управление координации занятости и социальных программ "
    "(Восточно-Казахстанская область)",
    email="social.east-kazakhstan@example.gov.kz",
    phone="+7 700 000 13 13",
)
# A place offered from the waiting list (registry.offer.*): the recipient of the enrollments.
OFFER = {
    "offer_id": "O-1",
    "request_id": "W-1",
    "iin": IIN,
    "region": EAST,
    "form": "stationary",
    "category": "elderly",
    "provider_bin": "990140004654",
    "provider_name": "ОФ «Шапагат»",
    "license_number": "KZ-2026-000456",
    "site_id": "a1",
    "addressee": ADDRESSEE,
}
OFFER_MADE = OfferMadeV1(
    **OFFER,
    site_address="г. Усть-Каменогорск, пр. Назарбаева, 3",
    made_on=date(2026, 5, 4),
    expires_on=date(2026, 5, 11),
)
# The same offer at a shelter: its address reaches the woman herself, and no one else.
SHELTER_OFFER = OfferMadeV1(
    **{**OFFER, "form": "temporary_stay", "category": "domestic_violence"},
    site_address="г. Усть-Каменогорск, ул. Тихая, 7",
    made_on=date(2026, 5, 4),
    expires_on=date(2026, 5, 6),
)

EVENTS: dict[str, Event] = {
    "licensing.application.submitted": ApplicationSubmittedV1(
        application_id="APP-1",
        bin=BIN,
        provider_name="ТОО «Умит»",
        legal_form="private",
        region=EAST,
        contact=CONTACT,
        subtypes=SUBTYPES,
        sites=SITES,
        requirement_set="2026.1",
        findings=FINDINGS,
        submitted_at=datetime(2026, 1, 4, 20, 0, tzinfo=UTC),
    ),
    "licensing.application.rejected": ApplicationRejectedV1(
        application_id="APP-1",
        bin=BIN,
        provider_name="ТОО «Умит»",
        region=EAST,
        contact=CONTACT,
        reason="не хватает медицинского персонала",
        findings=FINDINGS,
        inspector="inspector-1",
        decided_at=datetime(2026, 1, 10, 9, 0, tzinfo=UTC),
    ),
    "licensing.license.issued": LicenseIssuedV1(**LICENSE),
    "licensing.license.suspended": LicenseSuspendedV1(
        **{**LICENSE, "status": "suspended", "seq": 2, "effective_date": date(2026, 3, 1)},
        reason="нарушение санитарных норм",
        until=date(2026, 4, 1),
    ),
    "licensing.license.reinstated": LicenseReinstatedV1(
        **{**LICENSE, "seq": 3, "effective_date": date(2026, 4, 1)}
    ),
    "licensing.license.revoked": LicenseRevokedV1(
        **{**LICENSE, "status": "revoked", "seq": 4, "effective_date": date(2026, 5, 1)},
        reason="повторное нарушение",
    ),
    "registry.enrollment.started": EnrollmentStartedV1(
        enrollment_id="E-1",
        iin=IIN,
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        license_number="KZ-2026-000123",
        site_id="s1",
        site_address="г. Усть-Каменогорск, ул. Абая, 10",
        region=EAST,
        form="stationary",
        category="elderly",
        start_date=date(2026, 2, 1),
        addressee=ADDRESSEE,
    ),
    "registry.enrollment.disrupted": EnrollmentDisruptedV1(
        enrollment_id="E-1",
        iin=IIN,
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        license_number="KZ-2026-000123",
        region=EAST,
        form="stationary",
        category="elderly",
        disrupted_on=date(2026, 3, 1),
        reason="лицензия поставщика приостановлена",
        alternatives=ALTERNATIVES,
        addressee=ADDRESSEE,
    ),
    "registry.enrollment.unplaced": EnrollmentUnplacedV1(
        enrollment_id="E-1",
        iin=IIN,
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        license_number="KZ-2026-000123",
        region=EAST,
        form="stationary",
        category="elderly",
        unplaced_on=date(2026, 5, 1),
        reason="license revoked: повторное нарушение",
        alternatives=ALTERNATIVES,
        addressee=ADDRESSEE,
    ),
    "registry.enrollment.resumed": EnrollmentResumedV1(
        enrollment_id="E-1",
        iin=IIN,
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        license_number="KZ-2026-000123",
        region=EAST,
        form="stationary",
        category="elderly",
        resumed_on=date(2026, 4, 1),
        addressee=ADDRESSEE,
    ),
    "registry.waiting.joined": WaitingJoinedV1(
        request_id="W-1",
        iin=IIN,
        region=EAST,
        form="stationary",
        category="elderly",
        preferred_bins=["990140004654"],
        asked_on=date(2026, 5, 2),
        disrupted=True,
        position=2,
        waiting=5,
        reason="license revoked: повторное нарушение",
        addressee=ADDRESSEE,
    ),
    "registry.offer.made": OFFER_MADE,
    "registry.offer.accepted": OfferAcceptedV1(
        **OFFER, enrollment_id="E-2", start_date=date(2026, 5, 6)
    ),
    "registry.offer.lapsed": OfferLapsedV1(**OFFER, reason="expired", lapsed_on=date(2026, 5, 12)),
    "billing.invoice.issued": InvoiceIssuedV1(
        invoice_id="I-1",
        invoice_number="INV-2026-01-0001",
        contract_number="C-2026-17",
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        region=EAST,
        period="2026-01",
        total=Decimal("1234567.89"),
        over_budget=Decimal("1500.5"),
        lines=42,
        issued_at=datetime(2026, 2, 1, 19, 30, tzinfo=UTC),
        contact=CONTACT,
    ),
    "billing.budget.exhausted": BudgetExhaustedV1(
        contract_number="C-2026-17",
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        region=EAST,
        year=2026,
        budget=Decimal("10000000"),
        invoiced=Decimal("9998499.5"),
        over_budget=Decimal("1500.5"),
        period="2026-01",
    ),
    "billing.confirmation.requested": ConfirmationRequestedV1(
        enrollment_id="E-2026-000042",
        iin=IIN,
        provider_bin=BIN,
        provider_name="ТОО «Умит»",
        region=EAST,
        form="stationary",
        category="elderly",
        month="2026-01",
        attended_days=20,
        link=CONFIRMATION_LINK,
        sms_code="404142",
        expires_on=date(2026, 3, 3),
    ),
}


def context_for(event_key: str, audience: str, data: Any = None) -> dict[str, Any]:
    data = data if data is not None else EVENTS[event_key]
    ctx: dict[str, Any] = {"e": data, "provider_name": "ТОО «Умит»"}
    if event_key == "licensing.application.rejected":
        ctx["unmet"] = [f for f in data.findings if not f.met]
    if audience in ("recipient", "guardian"):
        name = "Айгерим Сейтова" if audience == "recipient" else "Болат Сейтов"
        ctx["person"] = Person(audience, name, None, "+77051112233", "kk")
        ctx["recipient_name"] = "Айгерим Сейтова"
        ctx["department"] = DEPARTMENT
    if audience == "department":
        ctx["department"] = DEPARTMENT
        ctx["recipient_name"] = "Айгерим Сейтова"
        # The family was told through the guardian: the department calls him.
        ctx["person"] = Person("guardian", "Болат Сейтов", "bolat@example.kz", "+77019998877", "kk")
    return ctx
