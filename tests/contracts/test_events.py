import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from ssu_contracts import (
    AUDIT_SEALED,
    EVENTS,
    Addressee,
    Alternative,
    ApplicationRejectedV1,
    ApplicationSubmittedV1,
    BudgetExhaustedV1,
    ConfirmationRequestedV1,
    Contact,
    DeliveryFailedV1,
    EnrollmentDisruptedV1,
    EnrollmentEndedV1,
    EnrollmentResumedV1,
    EnrollmentStartedV1,
    EnrollmentUnplacedV1,
    Envelope,
    Event,
    Finding,
    Guardian,
    InvoiceIssuedV1,
    LicenseAmendedV1,
    LicenseIssuedV1,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    LicenseSuspendedV1,
    OfferAcceptedV1,
    OfferLapsedV1,
    OfferMadeV1,
    RecipientDeregisteredV1,
    RecipientRegisteredV1,
    RecipientUpdatedV1,
    RunCompletedV1,
    Site,
    Subtype,
    UnknownEventType,
    WaitingJoinedV1,
    make_event,
    parse_as,
    parse_data,
)

DESIGN = Path(__file__).resolve().parents[3] / "shared" / "DESIGN.md"
CATALOGUE = [
    "licensing.application.submitted",
    "licensing.application.rejected",
    "licensing.license.issued",
    "licensing.license.amended",
    "licensing.license.suspended",
    "licensing.license.reinstated",
    "licensing.license.revoked",
    "registry.recipient.registered",
    "registry.enrollment.started",
    "registry.enrollment.ended",
    "registry.enrollment.disrupted",
    "registry.enrollment.resumed",
    "billing.invoice.issued",
    "billing.budget.exhausted",
    "billing.run.completed",
    "notification.delivery.failed",
]
# Every service's signed audit tree heads (SECURITY.md), beside the domain catalogue of DESIGN §4.
AUDIT_CATALOGUE = [f"{service}.audit.sealed" for service in AUDIT_SEALED]
# Added by issue 13 and not yet in DESIGN §4 (read-only for helpers): the lead moves it into
# CATALOGUE when DESIGN.md lists it.
NOT_YET_IN_DESIGN = [
    "registry.enrollment.unplaced",
    "registry.recipient.updated",
    "registry.recipient.deregistered",
    "registry.waiting.joined",
    "registry.offer.made",
    "registry.offer.accepted",
    "registry.offer.lapsed",
    "billing.confirmation.requested",
]

BIN = "940140000385"
IIN = "791028302728"
REGION = "630000000"
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
CONTACT = Contact(email="centre@example.kz", phone="+77010000000", language="kk")
SUBTYPES = [Subtype(form="stationary", category="elderly")]
SITES = [Site(site_id="s1", address="Өскемен, Абай к-сі 1", kato="631010000", places=40)]
FINDINGS = [
    Finding(
        requirement_id="staff-nurse",
        kind="staff_ratio",
        core=True,
        blocking=True,
        met=False,
        expected="1.0 FTE per 10 places",
        actual="0.5",
        title_ru="Медсестры",
    )
]
ADDRESSEE = Addressee(name="Асем", phone="+77020000000", language="ru", is_guardian=True)
LICENSE = {
    "license_number": "L-0001",
    "bin": BIN,
    "provider_name": "Қамқор",
    "legal_form": "ngo",
    "region": REGION,
    "contact": CONTACT,
    "subtypes": SUBTYPES,
    "sites": SITES,
    "status": "active",
    "seq": 1,
    "effective_date": date(2026, 1, 5),
}
ENROLLMENT = {
    "enrollment_id": "e1",
    "iin": IIN,
    "provider_bin": BIN,
    "region": REGION,
    "form": "stationary",
    "category": "elderly",
}
OFFER = {
    "offer_id": "o1",
    "request_id": "w1",
    "iin": IIN,
    "region": REGION,
    "form": "stationary",
    "category": "elderly",
    "provider_bin": BIN,
    "provider_name": "Қамқор",
    "license_number": "L-0001",
    "site_id": "s1",
    "addressee": ADDRESSEE,
}

SAMPLES: list[Event] = [
    ApplicationSubmittedV1(
        application_id="a1",
        bin=BIN,
        provider_name="Қамқор",
        legal_form="ngo",
        region=REGION,
        contact=CONTACT,
        subtypes=SUBTYPES,
        sites=SITES,
        requirement_set="2025-1",
        findings=FINDINGS,
        submitted_at=NOW,
    ),
    ApplicationRejectedV1(
        application_id="a1",
        bin=BIN,
        provider_name="Қамқор",
        region=REGION,
        contact=CONTACT,
        reason="staffing",
        findings=FINDINGS,
        inspector="inspector-1",
        decided_at=NOW,
    ),
    LicenseIssuedV1(**LICENSE, application_id="a1"),
    LicenseAmendedV1(**{**LICENSE, "seq": 2}),
    LicenseSuspendedV1(
        **{**LICENSE, "status": "suspended", "seq": 3}, reason="inspection", until=None
    ),
    LicenseReinstatedV1(**{**LICENSE, "seq": 4}),
    LicenseRevokedV1(**{**LICENSE, "status": "revoked", "seq": 5}, reason="court order"),
    RecipientRegisteredV1(
        iin=IIN,
        full_name="Серік Әлиев",
        birth_date=date(1979, 10, 28),
        category="adult_disability",
        region=REGION,
        disability_group=2,
        language="kk",
        guardian=Guardian(name="Асем", phone="+77020000000"),
    ),
    EnrollmentStartedV1(
        **ENROLLMENT,
        license_number="L-0001",
        site_id="s1",
        start_date=date(2026, 1, 5),
        addressee=ADDRESSEE,
    ),
    EnrollmentEndedV1(**ENROLLMENT, end_date=date(2026, 2, 1), reason="moved"),
    EnrollmentDisruptedV1(
        **ENROLLMENT,
        license_number="L-0001",
        disrupted_on=date(2026, 1, 10),
        reason="license suspended",
        alternatives=[
            Alternative(
                bin="990140004654", name="Мейірім", site_id="s9", address="x", free_places=3
            )
        ],
        addressee=ADDRESSEE,
    ),
    EnrollmentResumedV1(**ENROLLMENT, resumed_on=date(2026, 1, 20), addressee=ADDRESSEE),
    InvoiceIssuedV1(
        invoice_id="i1",
        invoice_number="INV-2026-01-0001",
        contract_number="C-1",
        provider_bin=BIN,
        region=REGION,
        period="2026-01",
        total=Decimal("123456789012.35"),
        lines=3,
        issued_at=NOW,
    ),
    BudgetExhaustedV1(
        contract_number="C-1",
        provider_bin=BIN,
        region=REGION,
        year=2026,
        budget=Decimal("1000000.00"),
        invoiced=Decimal("1000000.00"),
        over_budget=Decimal("0.10"),
        period="2026-01",
    ),
    RunCompletedV1(
        run_id="r1",
        period="2026-01",
        invoices=1,
        lines=3,
        total=Decimal("0.30"),
        unbilled_dates=0,
        completed_at=NOW,
    ),
    ConfirmationRequestedV1(
        enrollment_id="e1",
        iin=IIN,
        provider_bin=BIN,
        provider_name="Мейірім",
        region=REGION,
        form="stationary",
        category="elderly",
        month="2026-01",
        attended_days=20,
        link="https://ssu.example.kz/confirm?token=t0k3n",
        sms_code="123456",
        expires_on=date(2026, 3, 3),
    ),
    DeliveryFailedV1(
        delivery_id="d1",
        event_id="e1",
        event_type="billing.invoice.issued.v1",
        channel="sms",
        attempts=5,
        last_error="gateway 503",
    ),
    *(
        model(
            service=service,
            tree_size=6,
            root_hash="ab" * 32,
            sealed_at="2026-01-05T09:30:00.000000Z",
            previous_tree_size=4,
            previous_root_hash="cd" * 32,
            key_id="31b39dfa0f669e10",
            signature="c2lnbmF0dXJl",
        )
        for service, model in AUDIT_SEALED.items()
    ),
    # last, so that the samples tests pick by position keep their places
    EnrollmentUnplacedV1(
        **ENROLLMENT,
        license_number="L-0001",
        unplaced_on=date(2026, 2, 1),
        reason="license revoked: repeated violations",
        alternatives=[
            Alternative(
                bin="990140004654", name="Мейірім", site_id="s9", address="x", free_places=3
            )
        ],
        addressee=ADDRESSEE,
    ),
    RecipientUpdatedV1(
        iin=IIN,
        full_name="Серік Әлиев",
        birth_date=date(1979, 10, 28),
        category="adult_disability",
        region=REGION,
        disability_group=1,
        language="kk",
        guardian=Guardian(name="Асем", phone="+77020000001"),
        changed=["disability_group", "guardian"],
        version=2,
    ),
    RecipientDeregisteredV1(
        iin=IIN,
        region=REGION,
        category="adult_disability",
        reason="moved",
        deregistered_on=date(2026, 2, 1),
        version=3,
    ),
    WaitingJoinedV1(
        request_id="w1",
        iin=IIN,
        region=REGION,
        form="stationary",
        category="elderly",
        preferred_bins=[BIN],
        asked_on=date(2026, 2, 1),
        disrupted=True,
        position=1,
        waiting=4,
        reason="license revoked: repeated violations",
        addressee=ADDRESSEE,
    ),
    OfferMadeV1(
        **OFFER,
        site_address="Өскемен, Абай к-сі 1",
        made_on=date(2026, 2, 3),
        expires_on=date(2026, 2, 10),
    ),
    OfferAcceptedV1(**OFFER, enrollment_id="e2", start_date=date(2026, 2, 5)),
    OfferLapsedV1(**OFFER, reason="expired", lapsed_on=date(2026, 2, 11)),
]


def test_every_catalogued_event_is_registered() -> None:
    assert sorted(EVENTS) == sorted(
        f"{name}.v1" for name in CATALOGUE + AUDIT_CATALOGUE + NOT_YET_IN_DESIGN
    )
    for event_type, model in EVENTS.items():
        assert model.event_type == event_type
        assert re.fullmatch(r"[A-Z][A-Za-z]+V1", model.__name__)


@pytest.mark.skipif(not DESIGN.exists(), reason="DESIGN.md not beside the checkout")
def test_catalogue_matches_design() -> None:
    text = DESIGN.read_text(encoding="utf-8")
    section = text.split("## 4. Event catalogue", 1)[1].split("## 5.", 1)[0]
    assert sorted(re.findall(r"`([a-z_.]+)`", section)) == sorted(CATALOGUE)


def test_samples_cover_every_event() -> None:
    assert sorted(type(s).event_type for s in SAMPLES) == sorted(EVENTS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).event_type)
def test_round_trip(sample: Event) -> None:
    envelope = make_event(sample, source="/ssu/test", subject="agg-1")
    received = Envelope.from_bytes(envelope.to_bytes())
    assert received == envelope
    assert parse_data(received) == sample
    assert parse_as(received, type(sample)) == sample
    assert received.type == type(sample).event_type


def test_envelope_is_cloudevents() -> None:
    envelope = make_event(SAMPLES[2], source="/ssu/licensing", subject="L-0001")
    body = json.loads(envelope.to_bytes())
    assert body["specversion"] == "1.0"
    assert body["datacontenttype"] == "application/json"
    assert body["type"] == "licensing.license.issued.v1"
    assert body["source"] == "/ssu/licensing"
    assert body["subject"] == "L-0001"
    assert body["time"].endswith("Z")
    assert "causationid" not in body  # absent, not null (CloudEvents)
    assert body["dataschema"] == "urn:ssu:schema:licensing.license.issued.v1"
    assert body["correlationid"] and body["id"] != body["correlationid"]


def test_causation_keeps_correlation() -> None:
    cause = make_event(SAMPLES[4], source="/ssu/licensing", subject="L-0001")
    effect = make_event(
        SAMPLES[10],
        source="/ssu/registry",
        subject="e1",
        correlation_id=cause.correlationid,
        causation_id=cause.id,
    )
    assert effect.correlationid == cause.correlationid
    assert effect.causationid == cause.id


def test_time_is_utc() -> None:
    envelope = make_event(SAMPLES[0], source="/ssu/licensing", subject="a1")
    shifted = envelope.model_copy(update={"time": None}).model_dump()
    shifted["time"] = datetime(2026, 1, 5, 14, 30, tzinfo=timezone(timedelta(hours=5)))
    assert Envelope.model_validate(shifted).time == NOW
    shifted["time"] = datetime(2026, 1, 5, 9, 30)
    with pytest.raises(ValidationError, match="timezone"):
        Envelope.model_validate(shifted)


def test_decimal_stays_exact() -> None:
    invoice = next(s for s in SAMPLES if isinstance(s, InvoiceIssuedV1))
    envelope = make_event(invoice, source="/ssu/billing", subject="i1")
    raw = json.loads(envelope.to_bytes())
    assert raw["data"]["total"] == "123456789012.35"
    assert '"total":"123456789012.35"' in envelope.to_bytes().decode()
    parsed = parse_data(Envelope.from_bytes(envelope.to_bytes()))
    assert isinstance(parsed, InvoiceIssuedV1)
    assert parsed.total == Decimal("123456789012.35")
    assert str(parsed.total) == "123456789012.35"


def test_unknown_type_raises() -> None:
    envelope = make_event(SAMPLES[0], source="/ssu/licensing", subject="a1")
    unknown = envelope.model_copy(update={"type": "licensing.application.submitted.v9"})
    with pytest.raises(UnknownEventType):
        parse_data(unknown)
    assert issubclass(UnknownEventType, ValueError)
    with pytest.raises(UnknownEventType):
        parse_as(envelope, LicenseIssuedV1)


def test_wrong_field_type_raises() -> None:
    envelope = make_event(SAMPLES[14], source="/ssu/billing", subject="r1")
    for field, value in [("invoices", "many"), ("total", "abc"), ("period", "2026-13")]:
        broken = envelope.model_copy(update={"data": {**envelope.data, field: value}})
        with pytest.raises(ValidationError):
            parse_data(broken)


def test_new_optional_field_is_compatible() -> None:
    envelope = make_event(SAMPLES[14], source="/ssu/billing", subject="r1")
    newer = envelope.model_copy(update={"data": {**envelope.data, "added_later": 1}})
    assert parse_data(newer) == SAMPLES[14]


def test_events_are_immutable() -> None:
    with pytest.raises(ValidationError):
        SAMPLES[14].run_id = "r2"  # type: ignore[attr-defined]


def test_recipient_birth_date_must_agree_with_iin() -> None:
    with pytest.raises(ValidationError, match="does not agree"):
        RecipientRegisteredV1(
            iin=IIN,
            full_name="x",
            birth_date=date(1979, 10, 29),
            category="elderly",
            region=REGION,
            language="ru",
        )


def test_at_most_three_alternatives() -> None:
    disrupted = next(s for s in SAMPLES if isinstance(s, EnrollmentDisruptedV1))
    data = disrupted.model_dump(mode="json")
    data["alternatives"] = data["alternatives"] * 4
    with pytest.raises(ValidationError):
        EnrollmentDisruptedV1.model_validate(data)


def test_delivery_failed_carries_the_failed_type_as_event_type() -> None:
    failed = next(s for s in SAMPLES if isinstance(s, DeliveryFailedV1))
    assert failed.model_dump(mode="json")["event_type"] == "billing.invoice.issued.v1"
    assert failed.failed_event_type == "billing.invoice.issued.v1"
    assert DeliveryFailedV1.event_type == "notification.delivery.failed.v1"
