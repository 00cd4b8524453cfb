"""HTTP API of the billing service (DESIGN §5)."""

import json
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal, TypedDict

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator, model_validator
from ssu_common import (
    Connection,
    Principal,
    Problem,
    authorize,
    connection,
    csv_text,
    decode_cursor,
    encode_cursor,
    refusals,
)
from ssu_contracts import Bin, Iin, Money, Period, RecipientCategory, RegionCode, ServiceForm

from ssu_billing import domain, service

router = APIRouter(prefix="/v1", tags=["billing"])

Read = Annotated[Principal, Security(authorize, scopes=["billing:read"])]
Write = Annotated[Principal, Security(authorize, scopes=["billing:write"])]
Approve = Annotated[Principal, Security(authorize, scopes=["billing:approve"])]
# A provider's key (with `bin`) reports attendance for its own BIN only.
Report = Annotated[Principal, Security(authorize, scopes=["billing:report"])]
RunScope = Annotated[Principal, Security(authorize, scopes=["billing:run"])]
# a treasury system's key: payment registers, reconciliation, corrections, the report
Treasury = Annotated[Principal, Security(authorize, scopes=["billing:treasury"])]
Conn = Annotated[Connection, Depends(connection)]

MAX_LIMIT = 500
MAX_CSV_BYTES = 20_000_000


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TariffIn(Body):
    region: RegionCode
    form: ServiceForm
    category: RecipientCategory | Literal["*"]
    effective_from: date
    rate: Money = Field(gt=0, max_digits=14, decimal_places=2)
    unit: Literal["day", "month"]
    act_reference: str = Field(min_length=1, max_length=500)
    # the first date the tariff is no longer in force (its dates are then untariffed)
    ended_from: date | None = None


class ContractIn(Body):
    number: str = Field(min_length=1, max_length=100)
    provider_bin: Bin
    region: RegionCode
    year: int = Field(ge=2025, le=2100)
    budget: Money = Field(ge=0, max_digits=14, decimal_places=2)
    bank_details: "BankDetailsIn"


class BankDetailsIn(Body):
    """Where the treasury pays the provider: IIK (IBAN form), BIK, KBK, KNP."""

    iik: str = Field(max_length=40, examples=["KZ86125KZT5004100100"])
    bik: str = Field(max_length=11, examples=["HSBKKZKX"])
    kbk: str = Field(max_length=6, examples=["123456"])
    knp: str = Field(max_length=3, examples=["859"])

    _iik = field_validator("iik")(domain.normal_iik)
    _bik = field_validator("bik")(domain.normal_bik)
    _kbk = field_validator("kbk")(domain.check_kbk)
    _knp = field_validator("knp")(domain.check_knp)

    def details(self) -> domain.BankDetails:
        return domain.BankDetails(iik=self.iik, bik=self.bik, kbk=self.kbk, knp=self.knp)


class BankDetailsChangeIn(Body):
    bank_details: BankDetailsIn
    reason: str = Field(min_length=1, max_length=500)


ContractIn.model_rebuild()


class AttendanceEntry(Body):
    enrollment_id: str | None = None
    iin: Iin | None = None
    dates: list[date] = Field(min_length=1, max_length=31)

    @model_validator(mode="after")
    def _names_the_enrollment(self) -> "AttendanceEntry":
        if (self.enrollment_id is None) == (self.iin is None):
            raise ValueError("give either enrollment_id or iin")
        return self


class AttendanceIn(Body):
    provider_bin: Bin
    month: Period
    enrollments: list[AttendanceEntry] = Field(min_length=1, max_length=20_000)


class RunIn(Body):
    period: Period
    # A regional key runs its own region (the default for it); a national key runs one region
    # or, without `region`, every region.
    region: RegionCode | None = None


# --- what the API answers: every 2xx has a schema a generated client can read (issue 14).
# Money is written as today: a string with two decimals ("125000.00"); instants as ISO 8601
# strings with their offset, as asyncpg gives them.

AMOUNT = r"^-?[0-9]+\.[0-9]{2}$"
Amount = Annotated[str, Field(pattern=AMOUNT, examples=["125000.00"])]
Instant = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2026-02-01T04:00:00+00:00"])
]


class Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class ActiveDatesOut(Out):
    """Dates billing pays a license for: `until` is the first date no longer active."""

    from_: date = Field(alias="from")
    until: date | None


class LicenseTransitionOut(Out):
    seq: int
    event_type: str
    status: str
    effective_date: date
    until: date | None
    recorded_at: Instant


class SubtypeOut(Out):
    form: str
    category: str


class LicenseOut(Out):
    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "license_number": "SSU-75-2026-000001",
                    "bin": "123456789012",
                    "provider_name": "Мейірім",
                    "region": "750000000",
                    "status": "active",
                    "seq": 3,
                    "subtypes": [{"form": "semi_stationary", "category": "child_disability"}],
                    "active": [{"from": "2026-01-10", "until": None}],
                    "transitions": [],
                    "updated_at": "2026-01-10T05:00:00+00:00",
                }
            ]
        },
    )

    license_number: str
    bin: str
    provider_name: str | None
    region: str | None
    status: str
    seq: int
    subtypes: list[SubtypeOut]
    active: list[ActiveDatesOut]
    transitions: list[LicenseTransitionOut]
    updated_at: Instant


class EnrollmentOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enrollment_id": "3f0c2a3e-5b1d-4c55-9d1e-0d6f0c0b7a11",
                    "provider_bin": "123456789012",
                    "license_number": "SSU-75-2026-000001",
                    "site_id": "s1",
                    "region": "750000000",
                    "form": "semi_stationary",
                    "category": "child_disability",
                    "start_date": "2026-01-12",
                    "end_date": None,
                    "status": "active",
                    "seq": 1,
                    "updated_at": "2026-01-12T06:00:00+00:00",
                }
            ]
        }
    )

    enrollment_id: str
    provider_bin: str
    license_number: str
    site_id: str
    region: str
    form: str
    category: str
    start_date: date
    end_date: date | None
    status: str
    seq: int | None
    updated_at: Instant


class TariffFields(Out):
    id: int
    region: str
    form: str
    category: str
    effective_from: date
    rate: Amount
    unit: Literal["day", "month"]
    act_reference: str
    version: int
    ended_from: date | None
    # None: a version recorded before who made it was kept
    created_by: str | None
    created_at: Instant


class TariffOut(TariffFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "region": "750000000",
                    "form": "semi_stationary",
                    "category": "*",
                    "effective_from": "2026-01-01",
                    "rate": "4500.00",
                    "unit": "day",
                    "act_reference": "Алматы әкімдігінің 2025-12-20 № 1234 қаулысы",
                    "version": 1,
                    "ended_from": None,
                    "created_by": "akimat-almaty/economist-2",
                    "created_at": "2025-12-21T04:00:00+00:00",
                }
            ]
        }
    )


class TariffVersionOut(TariffFields):
    """A superseded version of a tariff, as its history shows it."""

    superseded_at: Instant | None


class TariffWithHistoryOut(TariffFields):
    history: list[TariffVersionOut]


class TariffList(Out):
    items: list[TariffWithHistoryOut]


class ContractOut(Out):
    number: str
    provider_bin: str
    region: str
    year: int
    budget: Amount


class BankDetailsOut(Out):
    iik: str
    bik: str
    kbk: str
    knp: str


class ContractBankDetailsFields(ContractOut):
    bank_details: BankDetailsOut | None
    bank_details_by: str | None
    bank_details_at: Instant | None


class ContractWithBankDetailsOut(ContractBankDetailsFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "number": "ALA-2026-017",
                    "provider_bin": "123456789012",
                    "region": "750000000",
                    "year": 2026,
                    "budget": "12000000.00",
                    "bank_details": {
                        "iik": "KZ86125KZT5004100100",
                        "bik": "HSBKKZKX",
                        "kbk": "123456",
                        "knp": "859",
                    },
                    "bank_details_by": "akimat-almaty/economist-2",
                    "bank_details_at": "2026-01-05T04:00:00+00:00",
                }
            ]
        }
    )


class BankDetailsVersionOut(BankDetailsOut):
    reason: str
    invoice_number: str | None
    changed_by: str
    changed_at: Instant


class ContractBankDetailsOut(ContractBankDetailsFields):
    bank_details_history: list[BankDetailsVersionOut]


class BudgetAmendmentOut(Out):
    previous_budget: Amount
    budget: Amount
    act_number: str
    act_date: date
    amended_by: str
    amended_at: Instant


class ContractAmendedOut(ContractOut):
    amendments: list[BudgetAmendmentOut]


class ContractBudgetOut(Out):
    contract_number: str
    provider_bin: str
    provider_name: str | None
    region: str
    year: int
    budget: Amount
    invoiced: Amount
    over_budget: Amount
    remaining: Amount
    held: Amount
    paid: Amount


class RegionBudgetOut(Out):
    region: str
    budget: Amount
    invoiced: Amount
    over_budget: Amount
    remaining: Amount
    held: Amount
    paid: Amount


class BudgetsOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "contracts": [
                        {
                            "contract_number": "ALA-2026-017",
                            "provider_bin": "123456789012",
                            "provider_name": "Мейірім",
                            "region": "750000000",
                            "year": 2026,
                            "budget": "12000000.00",
                            "invoiced": "94500.00",
                            "over_budget": "0.00",
                            "remaining": "11905500.00",
                            "held": "0.00",
                            "paid": "94500.00",
                        }
                    ],
                    "regions": [
                        {
                            "region": "750000000",
                            "budget": "12000000.00",
                            "invoiced": "94500.00",
                            "over_budget": "0.00",
                            "remaining": "11905500.00",
                            "held": "0.00",
                            "paid": "94500.00",
                        }
                    ],
                }
            ]
        }
    )

    year: int
    contracts: list[ContractBudgetOut]
    regions: list[RegionBudgetOut]


class RecordedDateOut(Out):
    field: str
    value: str


class RefusedDateOut(Out):
    field: str
    reason: str
    value: str | None


class AttendanceOut(Out):
    accepted: int
    already_recorded: list[RecordedDateOut]
    rejected: list[RefusedDateOut]


class RefusedLineOut(Out):
    line: int
    field: str
    reason: str
    value: str | None


class AttendanceImportOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": 41,
                    "already_recorded_count": 1,
                    "already_recorded": [7],
                    "rejected_count": 1,
                    "rejected": [
                        {
                            "line": 12,
                            "field": "iin",
                            "reason": "not an IIN (12 digits)",
                            "value": "12345",
                        }
                    ],
                }
            ]
        }
    )

    accepted: int
    already_recorded_count: int
    already_recorded: list[int]
    rejected_count: int
    rejected: list[RefusedLineOut]


class InvoiceFields(Out):
    id: str
    number: str
    run_id: str
    contract_number: str
    provider_bin: str
    provider_name: str | None
    region: str
    period: str
    status: str
    total: Amount
    # what held lines wait for, what review rejected, and what the treasury is to pay
    held: Amount
    rejected: Amount
    payable: Amount
    over_budget: Amount
    lines: int
    issued_at: Instant
    approved_by: str | None
    paid_amount: Amount | None


class InvoiceOut(InvoiceFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7d3f8c1e-2a4b-4e0f-9a51-1b2c3d4e5f60",
                    "number": "ALA-2026-017/2026-01",
                    "run_id": "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
                    "contract_number": "ALA-2026-017",
                    "provider_bin": "123456789012",
                    "provider_name": "Мейірім",
                    "region": "750000000",
                    "period": "2026-01",
                    "status": "approved",
                    "total": "94500.00",
                    "held": "0.00",
                    "rejected": "0.00",
                    "payable": "94500.00",
                    "over_budget": "0.00",
                    "lines": 1,
                    "issued_at": "2026-02-01T04:00:00+00:00",
                    "approved_by": "akimat-almaty/head-1",
                    "paid_amount": None,
                }
            ]
        }
    )


class InvoicePage(Out):
    items: list[InvoiceOut]
    next_cursor: str | None


class LineTariffOut(Out):
    tariff_id: int
    category: str
    effective_from: date
    rate: Amount
    unit: str
    act_reference: str
    version: int
    dates: list[date]


class RuleTitleOut(Out):
    kk: str
    ru: str


class CheckOut(Out):
    rule: str
    title: RuleTitleOut
    passed: bool
    blocking: bool
    dates: list[date]
    # what the rule found (other enrollments, the site and its places...), as the rule says it
    detail: dict[str, JsonValue] | None


class HoldOut(Out):
    state: str
    held_amount: Amount
    decided_by: str | None
    decided_at: Instant | None
    reason: str | None


class LineRefOut(Out):
    invoice_id: str
    line_no: int | None


class InvoiceLineOut(Out):
    line_no: int
    kind: str
    enrollment_id: str
    iin: str
    form: str
    category: str
    month: str = Field(examples=["2026-01"])
    amount: Amount
    computed_amount: Amount
    previously_billed: Amount
    status: str
    eligible_days: int
    attended_days: int
    eligible_dates: list[date]
    attended_dates: list[date]
    tariffs: list[LineTariffOut]
    untariffed_dates: list[date]
    # the line an adjustment corrects, or an over-budget line a release offers again
    corrects: LineRefOut | None
    # every rule's result (None: billed before the checks existed)
    checks: list[CheckOut] | None
    hold: HoldOut


class InvoiceWithLinesOut(InvoiceFields):
    items: list[InvoiceLineOut]


class LineDecisionOut(Out):
    invoice: InvoiceOut
    line: InvoiceLineOut


class AppliedPaymentOut(Out):
    invoice_number: str
    status: str
    amount_paid: str
    paid_to_date: str
    invoice_total: str


class DiscrepancyOut(Out):
    line: int
    invoice_number: str
    invoice_total: str
    amount_paid: str
    reason: str


class ReconciliationOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "applied": [
                        {
                            "invoice_number": "ALA-2026-017/2026-01",
                            "status": "paid",
                            "amount_paid": "94500.00",
                            "paid_to_date": "94500.00",
                            "invoice_total": "94500.00",
                        }
                    ],
                    "discrepancies": [],
                    "errors": [],
                }
            ]
        }
    )

    applied: list[AppliedPaymentOut]
    discrepancies: list[DiscrepancyOut]
    errors: list[RefusedLineOut]


class CorrectionOut(Out):
    invoice_number: str
    status: str
    placement: int
    due: Amount
    # `register` itself would shadow a class attribute of a pydantic model
    register_: str = Field(
        alias="register", examples=["/v1/payment-registers/750000000/2026-01.csv"]
    )
    contract: ContractWithBankDetailsOut


class PeriodSumsOut(Out):
    region: str
    period: str
    invoices: int
    paid_invoices: int
    issued: Amount
    approved: Amount
    paid: Amount
    outstanding: Amount
    held: Amount
    refused: Amount
    rejected: Amount


class RegionSumsOut(Out):
    region: str
    invoices: int
    paid_invoices: int
    issued: Amount
    approved: Amount
    paid: Amount
    outstanding: Amount
    held: Amount
    refused: Amount
    rejected: Amount


class ReconciliationReportOut(Out):
    year: int
    periods: list[PeriodSumsOut]
    regions: list[RegionSumsOut]


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _visible(principal: Principal, region: str) -> None:
    if not principal.sees_region(region):
        raise Problem(404, "not found")


# The members models share (TariffFields, ContractOut, InvoiceFields...), as keywords for them.


class _TariffFields(TypedDict):
    id: int
    region: str
    form: str
    category: str
    effective_from: date
    rate: str
    unit: Literal["day", "month"]
    act_reference: str
    version: int
    ended_from: date | None
    created_by: str | None
    created_at: str


class _ContractFields(TypedDict):
    number: str
    provider_bin: str
    region: str
    year: int
    budget: str


class _ContractBankDetailsFields(_ContractFields):
    bank_details: BankDetailsOut | None
    bank_details_by: str | None
    bank_details_at: str | None


class _InvoiceFields(TypedDict):
    id: str
    number: str
    run_id: str
    contract_number: str
    provider_bin: str
    provider_name: str | None
    region: str
    period: str
    status: str
    total: str
    held: str
    rejected: str
    payable: str
    over_budget: str
    lines: int
    issued_at: str
    approved_by: str | None
    paid_amount: str | None


def _tariff_fields(tariff: service.Tariff) -> _TariffFields:
    return {
        "id": tariff.id,
        "region": tariff.region,
        "form": tariff.form,
        "category": tariff.category,
        "effective_from": tariff.effective_from,
        "rate": _money(tariff.rate),
        "unit": tariff.unit,
        "act_reference": tariff.act_reference,
        "version": tariff.version,
        "ended_from": tariff.ended_from,
        "created_by": tariff.created_by,
        "created_at": tariff.updated_at.isoformat(),
    }


def _contract_fields(contract: service.Contract) -> _ContractFields:
    return {
        "number": contract.number,
        "provider_bin": contract.provider_bin,
        "region": contract.region,
        "year": contract.year,
        "budget": _money(contract.budget),
    }


def _invoice_fields(invoice: service.Invoice) -> _InvoiceFields:
    return {
        "id": invoice.id,
        "number": invoice.number,
        "run_id": invoice.run_id,
        "contract_number": invoice.contract_number,
        "provider_bin": invoice.provider_bin,
        "provider_name": invoice.provider_name,
        "region": invoice.region,
        "period": invoice.period,
        "status": invoice.status,
        "total": _money(invoice.total),
        "held": _money(invoice.held),
        "rejected": _money(invoice.rejected),
        "payable": _money(invoice.payable),
        "over_budget": _money(invoice.over_budget),
        "lines": invoice.lines,
        "issued_at": invoice.issued_at.isoformat(),
        "approved_by": invoice.approved_by,
        "paid_amount": None if invoice.paid_amount is None else _money(invoice.paid_amount),
    }


def _invoice(invoice: service.Invoice) -> InvoiceOut:
    return InvoiceOut(**_invoice_fields(invoice))


def _dates(month: date, mask: int) -> list[date]:
    return [month + timedelta(days=n) for n in range(31) if mask >> n & 1]


def _checks(line: service.InvoiceLine, blocking_rules: list[str] | None) -> list[CheckOut] | None:
    """Every rule's result on a line (None: billed before the checks existed)."""
    if line.checks is None:
        return None
    failed = {c["rule"]: c for c in json.loads(line.checks)}
    blocking = set(blocking_rules or [])
    results: list[CheckOut] = []
    for slug, rule in domain.RULES.items():
        found = failed.get(slug)
        results.append(
            CheckOut(
                rule=slug,
                title=RuleTitleOut(kk=rule.kk, ru=rule.ru),
                passed=found is None,
                blocking=found["blocking"] if found else slug in blocking,
                dates=_dates(line.month, found["mask"]) if found else [],
                detail=found["detail"] if found else None,
            )
        )
    return results


def _line(
    line: service.InvoiceLine,
    tariffs: dict[int, service.LineTariff],
    blocking_rules: list[str] | None = None,
) -> InvoiceLineOut:
    month = line.month
    return InvoiceLineOut(
        line_no=line.line_no,
        kind=line.kind,
        enrollment_id=line.enrollment_id,
        iin=line.iin,
        form=line.form,
        category=line.category,
        month=f"{month:%Y-%m}",
        amount=_money(line.amount),
        computed_amount=_money(line.computed_amount),
        previously_billed=_money(line.previously_billed),
        status=line.status,
        eligible_days=line.eligible_days,
        attended_days=line.attended_days,
        eligible_dates=_dates(month, line.eligible_mask),
        attended_dates=_dates(month, line.attended_mask),
        tariffs=[
            LineTariffOut(
                tariff_id=tariff_id,
                category=tariffs[tariff_id].category,
                effective_from=tariffs[tariff_id].effective_from,
                rate=_money(tariffs[tariff_id].rate),
                unit=tariffs[tariff_id].unit,
                act_reference=tariffs[tariff_id].act_reference,
                version=tariffs[tariff_id].version,
                dates=_dates(month, mask),
            )
            for tariff_id, mask in sorted(
                zip(line.tariff_ids, line.counted_masks, strict=True),
                key=lambda part: (tariffs[part[0]].effective_from, part[0]),
            )
        ],
        untariffed_dates=_dates(month, line.untariffed_mask),
        corrects=None
        if line.source_invoice_id is None
        else LineRefOut(invoice_id=line.source_invoice_id, line_no=line.source_line_no),
        checks=_checks(line, blocking_rules),
        hold=HoldOut(
            state=line.hold,
            held_amount=_money(line.held_amount),
            decided_by=line.hold_decided_by,
            decided_at=_instant(line.hold_decided_at),
            reason=line.hold_reason,
        ),
    )


# what billing knows of licensing's and registry's events


@router.get("/licenses/{number}")
async def get_license(number: str, principal: Read, conn: Conn) -> LicenseOut:
    """Billing's view of a license, as its events built it: an integrator sees that an event
    has arrived (`seq`, `transitions`) before starting a run."""
    known = await service.license_knowledge(conn, number)
    if known is None or not principal.sees_region(known[0].region):
        raise Problem(404, "billing knows no such license")
    row, transitions = known
    return LicenseOut(
        license_number=row.license_number,
        bin=row.bin,
        provider_name=row.provider_name,
        region=row.region,
        status=row.status,
        seq=row.seq,
        subtypes=json.loads(row.subtypes),
        # the dates billing pays for: `until` is the first date no longer active (None: open)
        active=[
            ActiveDatesOut(from_=start, until=end)
            for start, end in zip(row.active_from, row.active_until, strict=True)
        ],
        transitions=[
            LicenseTransitionOut(
                seq=t.seq,
                event_type=t.event_type,
                status=t.status,
                effective_date=t.effective_date,
                until=t.until,
                recorded_at=t.recorded_at.isoformat(),
            )
            for t in transitions
        ],
        updated_at=row.updated_at.isoformat(),
    )


@router.get("/enrollments/{enrollment_id}")
async def get_enrollment(enrollment_id: str, principal: Read, conn: Conn) -> EnrollmentOut:
    """Billing's view of an enrollment, as registry's events built it (without the IIN)."""
    row = await service.enrollment_knowledge(conn, enrollment_id)
    if row is None or not principal.sees_region(row.region):
        raise Problem(404, "billing knows no such enrollment")
    return EnrollmentOut(
        enrollment_id=row.enrollment_id,
        provider_bin=row.provider_bin,
        license_number=row.license_number,
        site_id=row.site_id,
        region=row.region,
        form=row.form,
        category=row.category,
        start_date=row.start_date,
        end_date=row.end_date,
        status=row.status,
        seq=row.seq,
        updated_at=row.updated_at.isoformat(),
    )


# tariffs and contracts


@router.put(
    "/tariffs",
    responses={201: {"model": TariffOut, "description": "A new tariff"}},
)
async def put_tariff(
    body: TariffIn, request: Request, response: Response, principal: Write, conn: Conn
) -> TariffOut:
    """A new tariff (201) or the next version of one held (200): the version replaced stays in
    its history, and invoice lines computed from it keep explaining themselves by it."""
    _visible(principal, body.region)
    row, created = await service.put_tariff(
        conn=conn,
        region=body.region,
        form=body.form.value,
        category=str(body.category),
        effective_from=body.effective_from,
        rate=body.rate,
        unit=body.unit,
        act_reference=body.act_reference,
        limits=request.app.state.runtime.settings.tariff_limits,
        actor=principal.actor,
        ended_from=body.ended_from,
    )
    response.status_code = 201 if created else 200
    return TariffOut(**_tariff_fields(row))


@router.get("/tariffs")
async def get_tariffs(
    principal: Read,
    conn: Conn,
    region: RegionCode | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> TariffList:
    if principal.region is not None:
        if region is not None and region != principal.region:
            raise Problem(404, "not found")
        region = principal.region
    rows, versions = await service.tariffs_with_history(conn, region=region, year=year)
    history: dict[int, list[TariffVersionOut]] = {}
    for v in versions:
        if v.tariff.id != v.current_id:
            history.setdefault(v.current_id, []).append(
                TariffVersionOut(
                    **_tariff_fields(v.tariff), superseded_at=_instant(v.tariff.superseded_at)
                )
            )
    return TariffList(
        items=[
            TariffWithHistoryOut(**_tariff_fields(r), history=history.get(r.id, [])) for r in rows
        ]
    )


@router.post("/contracts", status_code=201, responses=refusals(domain.CONTRACT_EXISTS))
async def post_contract(
    body: ContractIn, principal: Write, conn: Conn
) -> ContractWithBankDetailsOut:
    _visible(principal, body.region)
    row = await service.create_contract_with_bank_details(
        conn=conn,
        number=body.number,
        provider_bin=body.provider_bin,
        region=body.region,
        year=body.year,
        budget=body.budget,
        bank_details=body.bank_details.details(),
        actor=principal.actor,
    )
    return ContractWithBankDetailsOut(**_contract_with_bank_details(row))


@router.put("/contracts/{number}/bank-details")
async def put_bank_details(
    number: str, body: BankDetailsChangeIn, principal: Write, conn: Conn
) -> ContractBankDetailsOut:
    """Change a contract's bank details: the registers issued after carry the new ones."""
    row, history = await service.change_bank_details(
        conn=conn,
        number=number,
        bank_details=body.bank_details.details(),
        reason=body.reason,
        actor=principal.actor,
        region_scope=principal.region,
    )
    return ContractBankDetailsOut(
        **_contract_with_bank_details(row),
        bank_details_history=[
            BankDetailsVersionOut(
                iik=v.iik,
                bik=v.bik,
                kbk=v.kbk,
                knp=v.knp,
                reason=v.reason,
                invoice_number=v.invoice_number,
                changed_by=v.changed_by,
                changed_at=v.changed_at.isoformat(),
            )
            for v in history
        ],
    )


def _contract_with_bank_details(contract: service.Contract) -> _ContractBankDetailsFields:
    details = (
        None
        if contract.iik is None
        else BankDetailsOut(iik=contract.iik, bik=contract.bik, kbk=contract.kbk, knp=contract.knp)
    )
    return {
        **_contract_fields(contract),
        "bank_details": details,
        "bank_details_by": contract.bank_details_by,
        "bank_details_at": _instant(contract.bank_details_at),
    }


class BudgetAmendmentIn(Body):
    budget: Money = Field(ge=0, max_digits=14, decimal_places=2)
    act_number: str = Field(min_length=1, max_length=200)
    act_date: date


@router.post("/contracts/{number}/budget-amendments", status_code=201)
async def amend_budget(
    number: str, body: BudgetAmendmentIn, principal: Write, conn: Conn
) -> ContractAmendedOut:
    """Amend a contract's budget by an akimat's act; lines over the old budget are offered
    again in the next run of the contract once the budget grows."""
    row, amendments = await service.amend_budget(
        conn=conn,
        number=number,
        budget=body.budget,
        act_number=body.act_number,
        act_date=body.act_date,
        actor=principal.actor,
        region_scope=principal.region,
    )
    return ContractAmendedOut(
        **_contract_fields(row),
        amendments=[
            BudgetAmendmentOut(
                previous_budget=_money(a.previous_budget),
                budget=_money(a.budget),
                act_number=a.act_number,
                act_date=a.act_date,
                amended_by=a.amended_by,
                amended_at=a.amended_at.isoformat(),
            )
            for a in amendments
        ],
    )


_BUDGET_SUMS = ("budget", "invoiced", "over_budget", "held", "paid")


@router.get("/budgets")
async def get_budgets(
    principal: Read, conn: Conn, year: Annotated[int, Query(ge=2000, le=2100)]
) -> BudgetsOut:
    rows = await service.budgets(conn=conn, year=year, region_scope=principal.region)
    regions: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        total = regions.setdefault(r.region, dict.fromkeys(_BUDGET_SUMS, Decimal(0)))
        for name in _BUDGET_SUMS:
            total[name] += getattr(r, name)
    return BudgetsOut(
        year=year,
        contracts=[
            ContractBudgetOut(
                contract_number=r.number,
                provider_bin=r.provider_bin,
                provider_name=r.provider_name,
                region=r.region,
                year=r.year,
                budget=_money(r.budget),
                invoiced=_money(r.invoiced),
                over_budget=_money(r.over_budget),
                remaining=_money(r.budget - r.invoiced),
                held=_money(r.held),
                paid=_money(r.paid),
            )
            for r in rows
        ],
        regions=[
            RegionBudgetOut(
                region=region,
                budget=_money(t["budget"]),
                invoiced=_money(t["invoiced"]),
                over_budget=_money(t["over_budget"]),
                remaining=_money(t["budget"] - t["invoiced"]),
                held=_money(t["held"]),
                paid=_money(t["paid"]),
            )
            for region, t in sorted(regions.items())
        ],
    )


# attendance

CSV_BODY: dict[str, object] = {
    "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
}


@router.post("/attendance", responses=refusals(domain.NOT_THE_KEYS_BIN))
async def post_attendance(body: AttendanceIn, principal: Report, conn: Conn) -> AttendanceOut:
    service.refuse_other_bin(
        key_bin=principal.bin,
        client=principal.client,
        provider_bin=body.provider_bin,
        reads=False,
    )
    rows = [
        service.AttendanceInput(
            ref=f"enrollments.{i}.dates.{j}",
            enrollment_id=entry.enrollment_id,
            iin=entry.iin,
            provider_bin=body.provider_bin,
            day=day,
        )
        for i, entry in enumerate(body.enrollments)
        for j, day in enumerate(entry.dates)
    ]
    service.refuse_future_dates(rows)
    already: list[service.RecordedDate] = []
    accepted, errors = await service.record_attendance(
        conn=conn,
        rows=rows,
        month=domain.Month.parse(body.month),
        region_scope=principal.region,
        already=already,
    )
    return AttendanceOut(
        accepted=accepted,
        already_recorded=[RecordedDateOut(field=a.ref, value=a.value) for a in already],
        rejected=[RefusedDateOut(field=e.ref, reason=e.reason, value=e.value) for e in errors],
    )


@router.post(
    "/attendance/import", openapi_extra=CSV_BODY, responses=refusals(domain.NOT_THE_KEYS_BIN)
)
async def import_attendance(
    request: Request,
    principal: Report,
    conn: Conn,
    month: Annotated[Period | None, Query()] = None,
) -> AttendanceImportOut:
    """Record attendance from a CSV file (`iin,provider_bin,date`): every row is checked;
    `rejected_count` counts the refused rows, `rejected` lists the first of them by line (at
    most SSU_MAX_IMPORT_ERRORS); dates recorded before are not refused: they are counted in
    `already_recorded_count`, the first of their lines listed in `already_recorded`."""
    text = await _csv_body(request)
    result = await service.import_attendance(
        conn=conn,
        text=text,
        month=domain.Month.parse(month) if month else None,
        region_scope=principal.region,
        max_errors=request.app.state.runtime.settings.max_import_errors,
        provider_bin_scope=principal.bin,
    )
    return AttendanceImportOut(
        accepted=result.accepted,
        already_recorded_count=len(result.already_recorded),
        already_recorded=result.already_recorded[
            : request.app.state.runtime.settings.max_import_errors
        ],
        rejected_count=result.rejected,
        rejected=[
            RefusedLineOut(line=e.line, field=e.field, reason=e.reason, value=e.value)
            for e in result.errors
        ],
    )


@router.delete(
    "/attendance/{enrollment_id}/{day}",
    status_code=204,
    responses=refusals(domain.NOT_THE_KEYS_BIN, domain.ATTENDANCE_INVOICED),
)
async def withdraw_attendance(
    enrollment_id: str, day: date, principal: Report, conn: Conn
) -> Response:
    """Withdraw a recorded date before it is invoiced; once invoiced it is refused (409): the
    correction is an adjustment."""
    await service.withdraw_attendance(
        conn=conn,
        enrollment_id=enrollment_id,
        day=day,
        provider_bin_scope=principal.bin,
        region_scope=principal.region,
    )
    return Response(status_code=204)


async def _csv_body(request: Request) -> str:
    from ssu_common.csvfiles import read_csv_body  # the one CSV body reader (ssu_common)

    return await read_csv_body(request, MAX_CSV_BYTES)


# runs and invoices


class RunProgress(BaseModel):
    """How far the run is, in contracts: the phases before `invoices` work on every contract
    at once (set-based), so `done` moves while the invoices are written."""

    done: int = Field(description="contracts invoiced so far", examples=[40])
    total: int | None = Field(
        description="contracts the run invoices; null until the amounts are computed",
        examples=[120],
    )


class RunOut(BaseModel):
    """A billing run: a job that POST /v1/runs accepts and the service bills in the background;
    poll GET /v1/runs/{id} (its `Location`) until `status` is `completed` or `failed`."""

    id: str
    period: str = Field(examples=["2026-10"])
    region: str | None = Field(description="KATO of the region billed; null: national")
    status: Literal["queued", "running", "completed", "failed", "approved"] = Field(
        description="queued: accepted, waiting for the runs before it; running; completed "
        "(invoices issued); failed (nothing billed: see `error`; the month may be run again); "
        "approved (a second person approved the invoices)"
    )
    phase: service.RunPhase | None = Field(
        description="where a running run is (loading, amounts, checks, invoices), `done` once "
        "completed; null while queued; a failed run keeps the phase it failed in"
    )
    progress: RunProgress
    error: str | None = Field(description="why the run failed (null unless failed)")
    started_by: str
    approved_by: str | None
    invoices: int
    lines: int
    total: str = Field(examples=["3622312116.80"])
    over_budget: str
    unbilled_dates: int
    uncontracted_enrollments: int
    held: str
    held_lines: int
    accepted_at: datetime
    started_at: datetime | None = Field(description="when billing began; null while queued")
    finished_at: datetime | None = Field(description="when it completed or failed")
    completed_at: datetime | None
    repeated: bool | None = Field(
        default=None,
        description="on POST: true when the period and scope had been accepted before (200)",
    )


def _run(run: service.Run, *, repeated: bool | None = None) -> RunOut:
    return RunOut(
        id=run.id,
        period=run.period,
        region=run.region,
        status="approved" if run.approved_by else run.status,
        phase=run.phase,
        progress=RunProgress(done=run.progress_done, total=run.progress_total),
        error=run.error,
        started_by=run.started_by,
        approved_by=run.approved_by,
        invoices=run.invoices,
        lines=run.lines,
        total=_money(run.total),
        over_budget=_money(run.over_budget),
        unbilled_dates=run.unbilled_dates,
        uncontracted_enrollments=run.uncontracted,
        held=_money(run.held),
        held_lines=run.held_lines,
        accepted_at=run.accepted_at,
        started_at=None if run.status == "queued" else run.started_at,
        finished_at=run.completed_at or run.failed_at,
        completed_at=run.completed_at,
        repeated=repeated,
    )


_LOCATION = {
    "Location": {
        "description": "the run: poll it until it is completed or failed",
        "schema": {"type": "string", "examples": ["/v1/runs/6f1c0d3e-8a51-4f0e-9d0b-2d9f4b8e7c11"]},
    }
}


@router.post(
    "/runs",
    status_code=202,
    response_model=RunOut,
    responses={
        202: {
            "description": "Accepted: the run is queued and billed in the background",
            "headers": _LOCATION,
        },
        200: {
            "description": "This period and scope were accepted before: that run (`repeated`)",
            "model": RunOut,
            "headers": _LOCATION,
        },
        **refusals(
            domain.RUN_OTHER_REGION, domain.MONTH_BILLED_NATIONALLY, domain.MONTHS_OUT_OF_ORDER
        ),
    },
)
async def post_run(
    body: RunIn, request: Request, response: Response, principal: RunScope, conn: Conn
) -> RunOut:
    """Accept a billing run of a month (202 and its `Location`); the service bills it in the
    background, and GET /v1/runs/{id} shows its phase and progress."""
    region = service.run_scope(requested=body.region, key_region=principal.region)
    outcome = await service.accept_run(
        conn=conn,
        period=body.period,
        region=region,
        started_by=principal.actor,
        policy=request.app.state.runtime.settings.check_policy(),
    )
    response.status_code = 200 if outcome.repeated else 202
    response.headers["Location"] = f"/v1/runs/{outcome.run.id}"
    return _run(outcome.run, repeated=outcome.repeated)


@router.get("/runs/{run_id}", response_model=RunOut)
async def get_run(run_id: str, principal: Read, conn: Conn) -> RunOut:
    """A run: its status, phase and progress while it runs, its totals once completed."""
    run = await service.get_run(conn=conn, run_id=_uuid(run_id), region_scope=principal.region)
    return _run(run)


@router.post(
    "/runs/{run_id}/approve",
    response_model=RunOut,
    responses=refusals(domain.RUN_FOUR_EYES, domain.RUN_NOT_COMPLETED),
)
async def approve_run(run_id: str, principal: Approve, conn: Conn) -> RunOut:
    """Approve a completed run's invoices: a second person, not the one that started it."""
    run = await service.approve_run(
        conn=conn, run_id=_uuid(run_id), approver=principal.actor, region_scope=principal.region
    )
    return _run(run)


@router.get("/invoices")
async def list_invoices(
    principal: Read,
    conn: Conn,
    provider: Bin | None = None,
    period: Period | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> InvoicePage:
    after = decode_cursor(cursor, str) or ""
    invoices = await service.list_invoices(
        conn=conn,
        provider=provider,
        period=period,
        region_scope=principal.region,
        after=after,
        limit=limit,
    )
    next_cursor = encode_cursor(invoices[-1].number) if len(invoices) == limit else None
    return InvoicePage(items=[_invoice(i) for i in invoices], next_cursor=next_cursor)


@router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: str, principal: Read, conn: Conn) -> InvoiceWithLinesOut:
    """An invoice with every line explained: dates eligible and attended, the tariff versions
    counted, the checks and the hold (the read of the recipients is audited)."""
    found = await service.invoice_with_lines(
        conn=conn, invoice_id=_uuid(invoice_id), region_scope=principal.region
    )
    invoice = found.invoice
    return InvoiceWithLinesOut(
        **_invoice_fields(invoice),
        items=[_line(line, found.tariffs, invoice.blocking_rules) for line in found.lines],
    )


class DecisionIn(Body):
    reason: str = Field(min_length=1, max_length=1000)


async def _decide(
    invoice_id: str, line_no: int, decision: str, body: DecisionIn, principal: Principal, conn: Conn
) -> LineDecisionOut:
    decided = await service.decide_held_line(
        conn=conn,
        invoice_id=_uuid(invoice_id),
        line_no=line_no,
        decision=decision,
        actor=principal.actor,
        reason=body.reason,
        region_scope=principal.region,
    )
    invoice = decided.invoice
    return LineDecisionOut(
        invoice=_invoice(invoice),
        line=_line(decided.lines[0], decided.tariffs, invoice.blocking_rules),
    )


HELD_LINE_REFUSALS = refusals(
    domain.RUN_FOUR_EYES, domain.INVOICE_LINE_NOT_HELD, domain.INVOICE_LINE_DECIDED
)


@router.post("/invoices/{invoice_id}/lines/{line_no}/release", responses=HELD_LINE_REFUSALS)
async def release_line(
    invoice_id: str, line_no: int, body: DecisionIn, principal: Approve, conn: Conn
) -> LineDecisionOut:
    """Four eyes on a held line: another person than the one that started the run releases it;
    its held amount becomes payable."""
    return await _decide(invoice_id, line_no, "released", body, principal, conn)


@router.post("/invoices/{invoice_id}/lines/{line_no}/reject", responses=HELD_LINE_REFUSALS)
async def reject_line(
    invoice_id: str, line_no: int, body: DecisionIn, principal: Approve, conn: Conn
) -> LineDecisionOut:
    """Four eyes on a held line: another person than the one that started the run rejects it;
    its held amount is never paid."""
    return await _decide(invoice_id, line_no, "rejected", body, principal, conn)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise Problem(404, "not found") from None


# payment registers

REGISTER_HEADER = [
    "invoice_number",
    "contract_number",
    "provider_bin",
    "provider_name",
    "region",
    "period",
    "amount",
    "approved_by",
    "iik",
    "bik",
    "kbk",
    "knp",
    "invoice_total",
    "paid_before",
    "placement",
]


# what a cell of the register is written from (ssu_common's csv_text takes these)
RegisterCell = str | int | Decimal | None


class CsvResponse(Response):
    media_type = "text/csv"


CSV_ANSWER: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The register: a header line, a line per invoice, the control total",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": ",".join(REGISTER_HEADER)
                + "\r\nALA-2026-017/2026-01,ALA-2026-017,123456789012,Мейірім,750000000,2026-01,"
                "94500.00,akimat-almaty/head-1,KZ86125KZT5004100100,HSBKKZKX,123456,859,"
                "94500.00,0.00,1\r\ncontrol_total,1,,,750000000,2026-01,94500.00,,,,,,,,\r\n",
            }
        },
    }
}


@router.get(
    "/payment-registers/{region}/{period}.csv",
    response_class=CsvResponse,
    responses=CSV_ANSWER,
)
async def payment_register(
    region: RegionCode, period: Period, principal: Treasury, conn: Conn
) -> Response:
    """What the treasury is to pay now for a region's month: a line per approved invoice with
    the amount still due (`amount`) to its contract's bank details; a paid invoice leaves the
    register, a rejected one returns once corrected (a new `placement`). The last line is the
    control total: `control_total`, the number of lines, and the sum of `amount`."""
    rows = await service.payment_register(
        conn=conn, region=region, period=period, region_scope=principal.region
    )
    lines: list[list[RegisterCell]] = [
        [
            r.number,
            r.contract_number,
            r.provider_bin,
            r.provider_name,
            r.region,
            r.period,
            domain.round_money(r.due),  # a number, written as one
            r.approved_by,
            r.iik,
            r.bik,
            r.kbk,
            r.knp,
            domain.round_money(r.total),
            domain.round_money(r.paid_amount),
            r.placement,
        ]
        for r in rows
    ]
    control: list[RegisterCell] = ["control_total", len(rows), "", "", region, period]
    control += [domain.round_money(sum((r.due for r in rows), Decimal(0)))]
    control += [""] * (len(REGISTER_HEADER) - len(control))
    body = csv_text(REGISTER_HEADER, [*lines, control])
    return Response(body, media_type="text/csv; charset=utf-8")


@router.post(
    "/payment-registers/{region}/{period}/reconciliation",
    openapi_extra=CSV_BODY,
    responses=refusals(domain.TREASURY_FILE_OVERPAYS),
)
async def reconciliation(
    region: RegionCode, period: Period, request: Request, principal: Treasury, conn: Conn
) -> ReconciliationOut:
    """The treasury's result file `invoice_number,amount_paid,status,date[,reference]`: a row
    per tranche paid (`paid`) or payment rejected (`rejected`, amount 0)."""
    _visible(principal, region)
    text = await _csv_body(request)
    result = await service.reconcile(
        conn=conn, region=region, period=period, text=text, recorded_by=principal.actor
    )
    return ReconciliationOut.model_validate(result, from_attributes=True)


class CorrectionIn(Body):
    bank_details: BankDetailsIn
    reason: str = Field(min_length=1, max_length=500)


@router.post("/invoices/{invoice_id}/correction", responses=refusals(domain.PAYMENT_NOT_REJECTED))
async def correct_payment(
    invoice_id: str, body: CorrectionIn, principal: Treasury, conn: Conn
) -> CorrectionOut:
    """Correct a rejected payment: the contract's bank details are replaced (who and when
    kept) and the invoice returns to its region and month's payment register."""
    invoice, contract = await service.correct_rejected_payment(
        conn=conn,
        invoice_id=_uuid(invoice_id),
        bank_details=body.bank_details.details(),
        reason=body.reason,
        actor=principal.actor,
        region_scope=principal.region,
    )
    return CorrectionOut(
        invoice_number=invoice.number,
        status=invoice.status,
        placement=invoice.placement,
        due=_money(invoice.total - (invoice.paid_amount or 0)),
        register_=f"/v1/payment-registers/{invoice.region}/{invoice.period}.csv",
        contract=ContractWithBankDetailsOut(**_contract_with_bank_details(contract)),
    )


_PAYMENT_SUMS = ("issued", "approved", "paid", "outstanding", "held", "refused", "rejected")


@router.get("/reconciliation-report")
async def reconciliation_report(
    principal: Treasury,
    conn: Conn,
    year: Annotated[int, Query(ge=2000, le=2100)],
    region: RegionCode | None = None,
) -> ReconciliationReportOut:
    """Issued, approved, paid and outstanding amounts per region and month of a year; held
    (lines waiting for review) and refused (lines review rejected): issued = paid +
    outstanding + held + refused. `rejected`: payments the treasury rejected (outstanding)."""
    if region is not None:
        _visible(principal, region)
    rows = await service.reconciliation_report(conn, year=year, region=region or principal.region)
    regions: dict[str, list[service.PeriodSums]] = {}
    for r in rows:
        regions.setdefault(r.region, []).append(r)
    return ReconciliationReportOut(
        year=year,
        periods=[
            PeriodSumsOut(
                region=r.region,
                period=r.period,
                invoices=r.invoices,
                paid_invoices=r.paid_invoices,
                **{name: _money(getattr(r, name)) for name in _PAYMENT_SUMS},
            )
            for r in rows
        ],
        regions=[
            RegionSumsOut(
                region=region_code,
                invoices=sum(r.invoices for r in months),
                paid_invoices=sum(r.paid_invoices for r in months),
                **{
                    name: _money(sum((getattr(r, name) for r in months), Decimal(0)))
                    for name in _PAYMENT_SUMS
                },
            )
            for region_code, months in sorted(regions.items())
        ],
    )


# --- attendance confirmations (issue 19): asked of the recipient, seen by providers and regions

ConfirmationsRead = Annotated[
    Principal, Security(authorize, scopes=["billing:read|billing:report"])
]
# Answered by the person who holds the link or the code: no key.
PUBLIC = {"x-ssu-public": True}


class ConfirmationRequestIn(Body):
    month: Period
    # A regional key asks its own region (the default for it); a national key one or every one.
    region: RegionCode | None = None


class ConfirmationAnswerIn(Body):
    """The link's `token`, or the `enrollment_id` with the 6-digit `code` of the message."""

    token: str | None = Field(default=None, min_length=16, max_length=100)
    enrollment_id: str | None = Field(default=None, min_length=1, max_length=100)
    code: str | None = Field(default=None, pattern=r"^[0-9]{6}$")
    answer: Literal["confirm", "dispute"]
    reason: str | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _one_way_to_answer(self) -> "ConfirmationAnswerIn":
        by_code = self.enrollment_id is not None or self.code is not None
        if (self.token is None) == (not by_code) or (
            by_code and (self.enrollment_id is None or self.code is None)
        ):
            raise ValueError(
                "сілтеме белгісін (token) немесе enrollment_id мен кодты беріңіз"
                " / give the token, or the enrollment_id with the code"
            )
        if self.reason is not None and self.answer != "dispute":
            raise ValueError("себеп дауласқанда ғана беріледі / a reason goes with a dispute only")
        return self


class ConfirmationRequestsOut(Out):
    month: str = Field(examples=["2026-01"])
    region: str | None
    requested: int
    # the enrollments asked now (the others of the month were asked before)
    enrollments: list[str]


class ConfirmationOut(Out):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enrollment_id": "3f0c2a3e-5b1d-4c55-9d1e-0d6f0c0b7a11",
                    "month": "2026-01",
                    "state": "disputed",
                    "provider_bin": "123456789012",
                    "provider_name": "Мейірім",
                    "region": "750000000",
                    "attended_days": 18,
                    "requested_at": "2026-02-02T04:00:00+00:00",
                    "expires_at": "2026-03-04T04:00:00+00:00",
                    "answered_at": "2026-02-03T09:30:00+00:00",
                    "answered_via": "link",
                    "reason": "Балам 20-сы күні ауруханада болды",
                }
            ]
        }
    )

    enrollment_id: str
    month: str
    state: Literal["requested", "confirmed", "disputed"]
    provider_bin: str
    provider_name: str | None
    region: str
    attended_days: int
    requested_at: Instant
    expires_at: Instant | None
    answered_at: Instant | None
    answered_via: str | None
    # the person's reason of a dispute: for the region's reviewers, never in a provider's answer
    reason: str | None = None


class ConfirmationPage(Out):
    items: list[ConfirmationOut]
    next_cursor: str | None


class ConfirmationLinkOut(Out):
    month: str = Field(examples=["2026-01"])
    provider_bin: str
    provider_name: str | None
    form: str
    attended_days: int
    attended_dates: list[date]
    state: Literal["requested", "confirmed", "disputed"]
    expires_at: Instant | None
    answers: list[Literal["confirm", "dispute"]]


class TwoLanguagesOut(Out):
    kk: str
    ru: str


class ConfirmationAnsweredOut(Out):
    month: str = Field(examples=["2026-01"])
    provider_name: str | None
    state: Literal["confirmed", "disputed"]
    answered_at: Instant | None
    # what the person is told, in their language
    message: TwoLanguagesOut


def _confirmation(row: service.Confirmation, *, with_reason: bool = True) -> ConfirmationOut:
    return ConfirmationOut(
        enrollment_id=row.enrollment_id,
        month=f"{row.month:%Y-%m}",
        state=row.state,
        provider_bin=row.provider_bin,
        provider_name=row.provider_name,
        region=row.region,
        attended_days=row.attended_days,
        requested_at=row.requested_at.isoformat(),
        expires_at=_instant(row.expires_at),
        answered_at=_instant(row.answered_at),
        answered_via=row.answered_via,
        # unset, not None, without it: a provider's answer has no `reason` member at all
        **({"reason": row.dispute_reason} if with_reason else {}),
    )


@router.post("/confirmations/requests", status_code=201)
async def request_confirmations(
    body: ConfirmationRequestIn, request: Request, principal: RunScope, conn: Conn
) -> ConfirmationRequestsOut:
    """Ask the recipients (or guardians) of every enrollment with attendance in a closed month
    to confirm or dispute it; each month of an enrollment is asked once."""
    region = service.run_scope(requested=body.region, key_region=principal.region)
    asked = await service.request_confirmations(
        conn=conn,
        month=body.month,
        region=region,
        link_base=request.app.state.runtime.settings.confirmation_link_base,
        requested_by=principal.actor,
    )
    return ConfirmationRequestsOut(
        month=asked.month,
        region=asked.region,
        requested=len(asked.requested),
        enrollments=asked.requested,
    )


@router.get(
    "/confirmations",
    # a provider's key gets no `reason` member at all (set only for the region's reviewers)
    response_model_exclude_unset=True,
    responses=refusals(domain.NOT_THE_KEYS_BIN),
)
async def list_confirmations(
    principal: ConfirmationsRead,
    conn: Conn,
    month: Period | None = None,
    provider_bin: Bin | None = None,
    region: RegionCode | None = None,
    state: Literal["requested", "confirmed", "disputed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> ConfirmationPage:
    """The confirmation state per enrollment and month: a provider's key sees its own BIN's,
    a regional key its region's (`state=disputed`: the region's review list, with reasons)."""
    if principal.bin is not None:
        if provider_bin is not None:
            service.refuse_other_bin(
                key_bin=principal.bin,
                client=principal.client,
                provider_bin=provider_bin,
                reads=True,
            )
        provider_bin = principal.bin
    if principal.region is not None:
        if region is not None and region != principal.region:
            raise Problem(404, "not found")
        region = principal.region
    after = decode_cursor(cursor, tuple[date, str])
    with_reasons = principal.bin is None
    rows = await service.list_confirmations(
        conn=conn,
        month=month,
        provider_bin=provider_bin,
        region=region,
        state=state,
        after=after,
        limit=limit,
        with_reasons=with_reasons,
    )
    last = rows[-1] if len(rows) == limit else None
    return ConfirmationPage(
        items=[_confirmation(r, with_reason=with_reasons) for r in rows],
        next_cursor=encode_cursor([last.month, last.enrollment_id]) if last else None,
    )


@router.get(
    "/confirmations/by-token/{token}",
    openapi_extra=PUBLIC,
    responses=refusals(domain.CONFIRMATION_CODE_UNKNOWN),
)
async def confirmation_page(token: str, response: Response, conn: Conn) -> ConfirmationLinkOut:
    """What the link of a message shows its holder before they answer: the month, the
    provider, the dates attended (nothing else of the person). Reading it answers nothing.
    Never kept by a shared cache: its address is the person's secret."""
    response.headers["Cache-Control"] = "no-store"
    row, dates = await service.confirmation_by_token(conn=conn, token=token)
    return ConfirmationLinkOut(
        month=f"{row.month:%Y-%m}",
        provider_bin=row.provider_bin,
        provider_name=row.provider_name,
        form=row.form,
        attended_days=len(dates),
        attended_dates=dates,
        state=row.state,
        expires_at=_instant(row.expires_at),
        answers=["confirm", "dispute"] if row.state == "requested" else [],
    )


@router.post(
    "/confirmations/answer",
    openapi_extra=PUBLIC,
    responses=refusals(
        domain.CONFIRMATION_CODE_UNKNOWN,
        domain.CONFIRMATION_ANSWERED,
        domain.CONFIRMATION_EXPIRED,
        domain.CONFIRMATION_LOCKED,
    ),
)
async def answer_confirmation(body: ConfirmationAnswerIn, conn: Conn) -> ConfirmationAnsweredOut:
    """Confirm or dispute a month, once: by the link's token or by the enrollment and the
    6-digit code (after five wrong codes, by the link only)."""
    if body.token is not None:
        row = await service.answer_by_token(
            conn=conn, token=body.token, answer=body.answer, reason=body.reason
        )
    else:
        row = await service.answer_by_code(
            conn=conn,
            enrollment_id=str(body.enrollment_id),
            code=str(body.code),
            answer=body.answer,
            reason=body.reason,
        )
    return ConfirmationAnsweredOut(
        month=f"{row.month:%Y-%m}",
        provider_name=row.provider_name,
        state=row.state,
        answered_at=_instant(row.answered_at),
        message=_ANSWERED[row.state],
    )


_ANSWERED = {
    "confirmed": TwoLanguagesOut(kk="Рақмет! Ай расталды.", ru="Спасибо! Месяц подтверждён."),
    "disputed": TwoLanguagesOut(
        kk="Рақмет! Дау аймақтық бөлімге қарауға жіберілді.",
        ru="Спасибо! Спор передан на рассмотрение в региональное управление.",
    ),
}
