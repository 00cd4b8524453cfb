"""Event payloads of the suite (DESIGN §4): immutable, past tense, versioned."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

from ssu_contracts.enums import (
    DeliveryChannel,
    Language,
    LegalForm,
    LicenseStatus,
    RecipientCategory,
    ServiceForm,
)
from ssu_contracts.ids import Bin, Iin, Kato, RegionCode, iin_birth_date

# Serialised as a JSON string ("1234.50") so no consumer ever reads money as a float.
Money = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "format": "decimal"}),
]
# A month of the system's life: years before 2000 or after 2099 are typing errors, not periods.
Period = Annotated[str, Field(pattern=r"^20[0-9]{2}-(0[1-9]|1[0-2])$", examples=["2026-01"])]


class Event(BaseModel):
    """Base of every event payload; unknown fields are ignored so new optional fields are safe."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]


class Part(BaseModel):
    """Base of the value objects events are made of."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Contact(Part):
    email: str | None = None
    phone: str | None = None
    language: Language


class Subtype(Part):
    form: ServiceForm
    category: RecipientCategory


class Site(Part):
    site_id: str
    address: str
    kato: Kato
    places: int | None = Field(default=None, ge=0)


class Addressee(Part):
    """Who is told about an enrollment: the recipient or their guardian."""

    name: str
    email: str | None = None
    phone: str | None = None
    language: Language
    is_guardian: bool = False


class Guardian(Part):
    name: str
    phone: str | None = None
    email: str | None = None
    iin: Iin | None = None


class Finding(Part):
    """Outcome of one requirement of a requirement set for an application or license."""

    requirement_id: str
    kind: str
    core: bool
    blocking: bool
    met: bool
    expected: str
    actual: str
    title_kk: str | None = None
    title_ru: str | None = None


class Alternative(Part):
    """A provider site with free places for the same subtype in the same region."""

    bin: Bin
    name: str
    site_id: str
    address: str
    free_places: int = Field(ge=0)
    license_number: str | None = None
    phone: str | None = None


# licensing


class ApplicationSubmittedV1(Event):
    """A provider applied for a license; findings come from the requirement set in force."""

    event_type: ClassVar[str] = "licensing.application.submitted.v1"

    application_id: str
    bin: Bin
    provider_name: str
    legal_form: LegalForm
    region: RegionCode
    contact: Contact
    subtypes: list[Subtype]
    sites: list[Site] = Field(default_factory=list)
    requirement_set: str
    findings: list[Finding]
    submitted_at: datetime


class ApplicationRejectedV1(Event):
    """An inspector rejected an application; findings are the unmet requirements."""

    event_type: ClassVar[str] = "licensing.application.rejected.v1"

    application_id: str
    bin: Bin
    provider_name: str
    region: RegionCode
    contact: Contact
    reason: str
    findings: list[Finding]
    inspector: str
    decided_at: datetime


class LicenseEvent(Event):
    """Full snapshot of a license after a change; consumers keep the highest seq."""

    license_number: str
    bin: Bin
    provider_name: str
    legal_form: LegalForm
    region: RegionCode
    contact: Contact
    subtypes: list[Subtype]
    sites: list[Site]
    status: LicenseStatus
    seq: int = Field(ge=1)
    effective_date: date
    # The premises' step-free access as the application stated it; absent from older events.
    step_free_access: bool | None = None


class LicenseIssuedV1(LicenseEvent):
    """A license was issued on approval of an application."""

    event_type: ClassVar[str] = "licensing.license.issued.v1"

    application_id: str | None = None


class LicenseAmendedV1(LicenseEvent):
    """A license changed (a site or subtype added) without changing its status."""

    event_type: ClassVar[str] = "licensing.license.amended.v1"

    change: str | None = None


class LicenseSuspendedV1(LicenseEvent):
    """A license was suspended from effective_date, until a date or until reinstated."""

    event_type: ClassVar[str] = "licensing.license.suspended.v1"

    reason: str
    until: date | None = None


class LicenseReinstatedV1(LicenseEvent):
    """A suspension ended; the license is active again from effective_date."""

    event_type: ClassVar[str] = "licensing.license.reinstated.v1"


class LicenseRevokedV1(LicenseEvent):
    """A license was revoked from effective_date; revocation is final."""

    event_type: ClassVar[str] = "licensing.license.revoked.v1"

    reason: str


# registry


class RecipientRegisteredV1(Event):
    """A recipient of special social services was registered (or re-registered by IIN)."""

    event_type: ClassVar[str] = "registry.recipient.registered.v1"

    iin: Iin
    full_name: str
    birth_date: date
    category: RecipientCategory
    region: RegionCode
    disability_group: int | None = Field(default=None, ge=1, le=3)
    language: Language
    phone: str | None = None
    email: str | None = None
    guardian: Guardian | None = None

    @model_validator(mode="after")
    def _birth_date_agrees_with_iin(self) -> "RecipientRegisteredV1":
        if iin_birth_date(self.iin) != self.birth_date:
            raise ValueError(
                f"birth_date {self.birth_date.isoformat()} does not agree with the IIN"
            )
        return self


class RecipientUpdatedV1(Event):
    """A recipient's record changed; the snapshot after the change (the fields the
    registration carries), `changed` naming the fields, `version` counting the changes."""

    event_type: ClassVar[str] = "registry.recipient.updated.v1"

    iin: Iin
    full_name: str
    birth_date: date
    category: RecipientCategory
    region: RegionCode
    disability_group: int | None = Field(default=None, ge=1, le=3)
    language: Language
    phone: str | None = None
    email: str | None = None
    guardian: Guardian | None = None
    changed: list[str]
    version: int = Field(ge=2)


class RecipientDeregisteredV1(Event):
    """A recipient was de-registered (moved, died or declined) from a date; their open
    enrollments end the day before (each with its own `registry.enrollment.ended.v1`)."""

    event_type: ClassVar[str] = "registry.recipient.deregistered.v1"

    iin: Iin
    region: RegionCode
    category: RecipientCategory
    reason: Literal["moved", "died", "declined"]
    deregistered_on: date
    version: int = Field(ge=2)


class EnrollmentStartedV1(Event):
    """A recipient started receiving a service at a provider's site."""

    event_type: ClassVar[str] = "registry.enrollment.started.v1"

    enrollment_id: str
    iin: Iin
    provider_bin: Bin
    provider_name: str | None = None
    license_number: str
    site_id: str
    site_address: str | None = None
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    start_date: date
    addressee: Addressee
    # Counts up with each published change of the enrollment; absent from older publishers.
    seq: int | None = Field(default=None, ge=1)


class EnrollmentEndedV1(Event):
    """An enrollment ended; end_date is the last date of service."""

    event_type: ClassVar[str] = "registry.enrollment.ended.v1"

    enrollment_id: str
    iin: Iin
    provider_bin: Bin
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    end_date: date
    reason: str
    # Counts up with each published change of the enrollment; absent from older publishers.
    seq: int | None = Field(default=None, ge=1)


class EnrollmentDisruptedV1(Event):
    """An active enrollment was disrupted by its provider's license suspension."""

    event_type: ClassVar[str] = "registry.enrollment.disrupted.v1"

    enrollment_id: str
    iin: Iin
    provider_bin: Bin
    provider_name: str | None = None
    license_number: str
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    disrupted_on: date
    reason: str
    alternatives: list[Alternative] = Field(default_factory=list, max_length=3)
    addressee: Addressee
    # Counts up with each published change of the enrollment; absent from older publishers.
    seq: int | None = Field(default=None, ge=1)


class EnrollmentResumedV1(Event):
    """A disrupted enrollment became active again on its provider's reinstatement."""

    event_type: ClassVar[str] = "registry.enrollment.resumed.v1"

    enrollment_id: str
    iin: Iin
    provider_bin: Bin
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    resumed_on: date
    addressee: Addressee
    # Counts up with each published change of the enrollment; absent from older publishers.
    seq: int | None = Field(default=None, ge=1)
    provider_name: str | None = None
    license_number: str | None = None


class EnrollmentUnplacedV1(Event):
    """An enrollment ended because its provider's license was revoked: the recipient has no
    place until an enrollment of the same form starts for them (they stay on the disruption
    board as `unplaced`). Published with the enrollment's `registry.enrollment.ended.v1`."""

    event_type: ClassVar[str] = "registry.enrollment.unplaced.v1"

    enrollment_id: str
    iin: Iin
    provider_bin: Bin
    provider_name: str | None = None
    license_number: str
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    unplaced_on: date
    reason: str
    alternatives: list[Alternative] = Field(default_factory=list, max_length=3)
    addressee: Addressee
    # Counts up with each published change of the enrollment; absent from older publishers.
    seq: int | None = Field(default=None, ge=1)


# registry: waiting list and placement offers


class WaitingJoinedV1(Event):
    """A recipient joined the waiting list for a place of a subtype in a region (asked by the
    department, or put there by a revocation or by a disruption nobody resolved in time).
    `position` is the place in line when joining, by the registry's stated priority."""

    event_type: ClassVar[str] = "registry.waiting.joined.v1"

    request_id: str
    iin: Iin
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    preferred_bins: list[Bin] = Field(default_factory=list)
    asked_on: date
    disrupted: bool = Field(
        default=False, description="lost a place through a license's suspension or revocation"
    )
    position: int = Field(ge=1)
    waiting: int = Field(ge=1, description="recipients waiting for this subtype and region")
    reason: str | None = None
    addressee: Addressee


class OfferMadeV1(Event):
    """A place freed and the first waiting recipient who fits was offered it; the place is held
    for them until `expires_on` (inclusive)."""

    event_type: ClassVar[str] = "registry.offer.made.v1"

    offer_id: str
    request_id: str
    iin: Iin
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    provider_bin: Bin
    provider_name: str
    license_number: str
    site_id: str
    site_address: str | None = None
    made_on: date
    expires_on: date
    addressee: Addressee


class OfferAcceptedV1(Event):
    """An offer was accepted: the recipient is enrolled (`registry.enrollment.started.v1`
    follows with the same enrollment id) and leaves the waiting list."""

    event_type: ClassVar[str] = "registry.offer.accepted.v1"

    offer_id: str
    request_id: str
    iin: Iin
    enrollment_id: str
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    provider_bin: Bin
    provider_name: str
    license_number: str
    site_id: str
    start_date: date
    addressee: Addressee


class OfferLapsedV1(Event):
    """An offer ended without a placement: declined, not answered by `expires_on`, or
    withdrawn because the place is gone (license suspended or revoked, site no longer listed).
    The recipient stays on the waiting list; the place passes to the next in line."""

    event_type: ClassVar[str] = "registry.offer.lapsed.v1"

    offer_id: str
    request_id: str
    iin: Iin
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    provider_bin: Bin
    provider_name: str
    license_number: str
    site_id: str
    reason: Literal["declined", "expired", "withdrawn"]
    lapsed_on: date
    addressee: Addressee


# billing


class InvoiceIssuedV1(Event):
    """A billing run issued an invoice for one contract and month."""

    event_type: ClassVar[str] = "billing.invoice.issued.v1"

    invoice_id: str
    invoice_number: str
    contract_number: str
    provider_bin: Bin
    provider_name: str | None = None
    region: RegionCode
    period: Period
    total: Money
    over_budget: Money = Decimal("0")
    lines: int = Field(ge=0)
    issued_at: datetime
    contact: Contact | None = None


class BudgetExhaustedV1(Event):
    """Lines of a month would take a contract past its budget; they are kept as over budget."""

    event_type: ClassVar[str] = "billing.budget.exhausted.v1"

    contract_number: str
    provider_bin: Bin
    provider_name: str | None = None
    region: RegionCode
    year: int
    budget: Money
    invoiced: Money
    over_budget: Money
    period: Period


class RunCompletedV1(Event):
    """A billing run for a month finished."""

    event_type: ClassVar[str] = "billing.run.completed.v1"

    run_id: str
    period: Period
    invoices: int = Field(ge=0)
    lines: int = Field(ge=0)
    total: Money
    unbilled_dates: int = Field(ge=0)
    completed_at: datetime
    # The region the run billed; absent for a national run (every region).
    region: RegionCode | None = None


class ConfirmationRequestedV1(Event):
    """A closed month's attendance of one enrollment awaits its recipient's (or guardian's)
    confirmation: notification asks them, in their language, by SMS and email.

    Internal: it carries the person's single-use answer (the link's token and the SMS code),
    so it goes to the broker only, is delivered by notification to the person alone, and is
    never offered to webhook subscribers. Billing keeps only keyed digests of the two.
    """

    event_type: ClassVar[str] = "billing.confirmation.requested.v1"

    enrollment_id: str
    iin: Iin
    provider_bin: Bin
    provider_name: str | None = None
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory
    month: Period
    attended_days: int = Field(ge=0, le=31)
    # the page that shows the month and takes the answer (holds the single-use token)
    link: str
    # typed with the enrollment on the answer page or read out to the regional department
    sms_code: str = Field(pattern=r"^[0-9]{6}$")
    expires_on: date


# notification


class DeliveryFailedV1(Event):
    """A notification could not be delivered after every retry (dead)."""

    event_type: ClassVar[str] = "notification.delivery.failed.v1"

    # `event_type` names the class's own type, so the failed event's type is read through an
    # alias: the JSON key is `event_type`, the attribute `failed_event_type`.
    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    delivery_id: str
    event_id: str
    failed_event_type: str = Field(alias="event_type")
    channel: DeliveryChannel
    attempts: int = Field(ge=0)
    last_error: str


# audit (every service)


class AuditSealedV1(Event):
    """A service sealed its audit records under a new signed tree head (SECURITY.md).

    The signature is Ed25519 over `ssu.audit.tree_head.v1\n` followed by the canonical JSON of
    service, tree_size, root_hash, sealed_at, previous_tree_size, previous_root_hash and key_id.
    """

    service: str
    tree_size: int = Field(ge=1)
    root_hash: str = Field(pattern=r"^[0-9a-f]{64}$", description="RFC 9162 root, hex")
    sealed_at: str = Field(description="UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ, signed as written")
    previous_tree_size: int = Field(ge=0)
    previous_root_hash: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    key_id: str
    signature: str = Field(description="Ed25519 signature, base64")


class LicensingAuditSealedV1(AuditSealedV1):
    """Licensing sealed its audit records under a new signed tree head."""

    event_type: ClassVar[str] = "licensing.audit.sealed.v1"


class RegistryAuditSealedV1(AuditSealedV1):
    """Registry sealed its audit records under a new signed tree head."""

    event_type: ClassVar[str] = "registry.audit.sealed.v1"


class BillingAuditSealedV1(AuditSealedV1):
    """Billing sealed its audit records under a new signed tree head."""

    event_type: ClassVar[str] = "billing.audit.sealed.v1"


class NotificationAuditSealedV1(AuditSealedV1):
    """Notification sealed its audit records under a new signed tree head."""

    event_type: ClassVar[str] = "notification.audit.sealed.v1"


AUDIT_SEALED: dict[str, type[AuditSealedV1]] = {
    "licensing": LicensingAuditSealedV1,
    "registry": RegistryAuditSealedV1,
    "billing": BillingAuditSealedV1,
    "notification": NotificationAuditSealedV1,
}


_ALL: tuple[type[Event], ...] = (
    ApplicationSubmittedV1,
    ApplicationRejectedV1,
    LicenseIssuedV1,
    LicenseAmendedV1,
    LicenseSuspendedV1,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    RecipientRegisteredV1,
    RecipientUpdatedV1,
    RecipientDeregisteredV1,
    EnrollmentStartedV1,
    EnrollmentEndedV1,
    EnrollmentDisruptedV1,
    EnrollmentResumedV1,
    EnrollmentUnplacedV1,
    WaitingJoinedV1,
    OfferMadeV1,
    OfferAcceptedV1,
    OfferLapsedV1,
    InvoiceIssuedV1,
    BudgetExhaustedV1,
    RunCompletedV1,
    ConfirmationRequestedV1,
    DeliveryFailedV1,
    LicensingAuditSealedV1,
    RegistryAuditSealedV1,
    BillingAuditSealedV1,
    NotificationAuditSealedV1,
)

EVENTS: dict[str, type[Event]] = {model.event_type: model for model in _ALL}
