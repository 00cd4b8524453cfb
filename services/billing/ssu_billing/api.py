"""HTTP API of the billing service (DESIGN §5)."""

import json
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from ssu_common import (
    Connection,
    Principal,
    Problem,
    authorize,
    connection,
    csv_text,
    decode_cursor,
    encode_cursor,
)
from ssu_contracts import Bin, Iin, Money, Period, RecipientCategory, RegionCode, ServiceForm

from ssu_billing import domain, service, store

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


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


def _visible(principal: Principal, region: str) -> None:
    if not principal.sees_region(region):
        raise Problem(404, "not found")


def _acts_for(principal: Principal, provider_bin: str) -> None:
    if not principal.acts_for(provider_bin):
        raise Problem(
            403,
            f"the key of {principal.client} reports attendance for BIN {principal.bin} only",
            errors=[{"field": "provider_bin", "message": f"not the key's BIN {principal.bin}"}],
        )


def _tariff(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "region": row["region"],
        "form": row["form"],
        "category": row["category"],
        "effective_from": row["effective_from"].isoformat(),
        "rate": _money(row["rate"]),
        "unit": row["unit"],
        "act_reference": row["act_reference"],
        "version": row["version"],
        "ended_from": row["ended_from"].isoformat() if row["ended_from"] else None,
        "created_by": row["created_by"],
        "created_at": row["updated_at"].isoformat(),
    }


def _tariff_version(row: Any) -> dict[str, Any]:
    """A superseded version of a tariff, as its history shows it."""
    return {
        **_tariff(row),
        "superseded_at": row["superseded_at"].isoformat() if row["superseded_at"] else None,
    }


def _contract(row: Any) -> dict[str, Any]:
    return {
        "number": row["number"],
        "provider_bin": row["provider_bin"],
        "region": row["region"],
        "year": row["year"],
        "budget": _money(row["budget"]),
    }


def _invoice(row: Any) -> dict[str, Any]:
    return {
        "id": str(row["id"]),
        "number": row["number"],
        "run_id": str(row["run_id"]),
        "contract_number": row["contract_number"],
        "provider_bin": row["provider_bin"],
        "provider_name": row["provider_name"],
        "region": row["region"],
        "period": row["period"],
        "status": row["status"],
        "total": _money(row["total"]),
        # what held lines wait for, what review rejected, and what the treasury is to pay
        "held": _money(row["held"]),
        "rejected": _money(row["rejected"]),
        "payable": _money(row["payable"]),
        "over_budget": _money(row["over_budget"]),
        "lines": row["lines"],
        "issued_at": row["issued_at"].isoformat(),
        "approved_by": row["approved_by"],
        "paid_amount": None if row["paid_amount"] is None else _money(row["paid_amount"]),
    }


def _dates(month: date, mask: int) -> list[str]:
    return [(month + timedelta(days=n)).isoformat() for n in range(31) if mask >> n & 1]


def _checks(row: Any, blocking_rules: list[str] | None) -> list[dict[str, Any]] | None:
    """Every rule's result on a line (None: billed before the checks existed)."""
    if row["checks"] is None:
        return None
    failed = {c["rule"]: c for c in json.loads(row["checks"])}
    blocking = set(blocking_rules or [])
    month = row["month"]
    results: list[dict[str, Any]] = []
    for slug, rule in domain.RULES.items():
        found = failed.get(slug)
        results.append(
            {
                "rule": slug,
                "title": {"kk": rule.kk, "ru": rule.ru},
                "passed": found is None,
                "blocking": found["blocking"] if found else slug in blocking,
                "dates": _dates(month, found["mask"]) if found else [],
                "detail": found["detail"] if found else None,
            }
        )
    return results


def _hold(row: Any) -> dict[str, Any]:
    return {
        "state": row["hold"],
        "held_amount": _money(row["held_amount"]),
        "decided_by": row["hold_decided_by"],
        "decided_at": row["hold_decided_at"].isoformat() if row["hold_decided_at"] else None,
        "reason": row["hold_reason"],
    }


def _line(
    row: Any, tariffs: dict[int, Any], blocking_rules: list[str] | None = None
) -> dict[str, Any]:
    month = row["month"]
    source = row["source_invoice_id"]
    return {
        "line_no": row["line_no"],
        "kind": row["kind"],
        "enrollment_id": row["enrollment_id"],
        "iin": row["iin"],
        "form": row["form"],
        "category": row["category"],
        "month": f"{month:%Y-%m}",
        "amount": _money(row["amount"]),
        "computed_amount": _money(row["computed_amount"]),
        "previously_billed": _money(row["previously_billed"]),
        "status": row["status"],
        "eligible_days": row["eligible_days"],
        "attended_days": row["attended_days"],
        "eligible_dates": _dates(month, row["eligible_mask"]),
        "attended_dates": _dates(month, row["attended_mask"]),
        "tariffs": [
            {
                "tariff_id": tariff_id,
                "category": tariffs[tariff_id]["category"],
                "effective_from": tariffs[tariff_id]["effective_from"].isoformat(),
                "rate": _money(tariffs[tariff_id]["rate"]),
                "unit": tariffs[tariff_id]["unit"],
                "act_reference": tariffs[tariff_id]["act_reference"],
                "version": tariffs[tariff_id]["version"],
                "dates": _dates(month, mask),
            }
            for tariff_id, mask in sorted(
                zip(row["tariff_ids"], row["counted_masks"], strict=True),
                key=lambda part: (tariffs[part[0]]["effective_from"], part[0]),
            )
        ],
        "untariffed_dates": _dates(month, row["untariffed_mask"]),
        # the line an adjustment corrects, or an over-budget line a release offers again
        "corrects": None
        if source is None
        else {"invoice_id": str(source), "line_no": row["source_line_no"]},
        "checks": _checks(row, blocking_rules),
        "hold": _hold(row),
    }


# what billing knows of licensing's and registry's events


@router.get("/licenses/{number}")
async def get_license(number: str, principal: Read, conn: Conn) -> dict[str, Any]:
    """Billing's view of a license, as its events built it: an integrator sees that an event
    has arrived (`seq`, `transitions`) before starting a run."""
    known = await service.license_knowledge(conn, number)
    if known is None or not principal.sees_region(known[0]["region"]):
        raise Problem(404, "billing knows no such license")
    row, transitions = known
    return {
        "license_number": row["license_number"],
        "bin": row["bin"],
        "provider_name": row["provider_name"],
        "region": row["region"],
        "status": row["status"],
        "seq": row["seq"],
        "subtypes": json.loads(row["subtypes"]),
        # the dates billing pays for: `until` is the first date no longer active (None: open)
        "active": [
            {"from": start.isoformat(), "until": end.isoformat() if end else None}
            for start, end in zip(row["active_from"], row["active_until"], strict=True)
        ],
        "transitions": [
            {
                "seq": t["seq"],
                "event_type": t["event_type"],
                "status": t["status"],
                "effective_date": t["effective_date"].isoformat(),
                "until": t["until"].isoformat() if t["until"] else None,
                "recorded_at": t["recorded_at"].isoformat(),
            }
            for t in transitions
        ],
        "updated_at": row["updated_at"].isoformat(),
    }


@router.get("/enrollments/{enrollment_id}")
async def get_enrollment(enrollment_id: str, principal: Read, conn: Conn) -> dict[str, Any]:
    """Billing's view of an enrollment, as registry's events built it (without the IIN)."""
    row = await service.enrollment_knowledge(conn, enrollment_id)
    if row is None or not principal.sees_region(row["region"]):
        raise Problem(404, "billing knows no such enrollment")
    return {
        "enrollment_id": row["enrollment_id"],
        "provider_bin": row["provider_bin"],
        "license_number": row["license_number"],
        "site_id": row["site_id"],
        "region": row["region"],
        "form": row["form"],
        "category": row["category"],
        "start_date": row["start_date"].isoformat(),
        "end_date": row["end_date"].isoformat() if row["end_date"] else None,
        "status": row["status"],
        "seq": row["seq"],
        "updated_at": row["updated_at"].isoformat(),
    }


# tariffs and contracts


@router.put("/tariffs")
async def put_tariff(
    body: TariffIn, request: Request, response: Response, principal: Write, conn: Conn
) -> dict[str, Any]:
    _visible(principal, body.region)
    """A new tariff (201) or the next version of one held (200): the version replaced stays in
    its history, and invoice lines computed from it keep explaining themselves by it."""
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
    return _tariff(row)


@router.get("/tariffs")
async def get_tariffs(
    principal: Read,
    conn: Conn,
    region: RegionCode | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
) -> dict[str, Any]:
    if principal.region is not None:
        if region is not None and region != principal.region:
            raise Problem(404, "not found")
        region = principal.region
    rows, versions = await service.tariffs_with_history(conn, region=region, year=year)
    history: dict[int, list[dict[str, Any]]] = {}
    for v in versions:
        if v["id"] != v["current_id"]:
            history.setdefault(v["current_id"], []).append(_tariff_version(v))
    return {"items": [{**_tariff(r), "history": history.get(r["id"], [])} for r in rows]}


@router.post("/contracts", status_code=201)
async def post_contract(body: ContractIn, principal: Write, conn: Conn) -> dict[str, Any]:
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
    return _contract_with_bank_details(row)


@router.put("/contracts/{number}/bank-details")
async def put_bank_details(
    number: str, body: BankDetailsChangeIn, principal: Write, conn: Conn
) -> dict[str, Any]:
    """Change a contract's bank details: the registers issued after carry the new ones."""
    row, history = await service.change_bank_details(
        conn=conn,
        number=number,
        bank_details=body.bank_details.details(),
        reason=body.reason,
        actor=principal.actor,
        region_scope=principal.region,
    )
    return {
        **_contract_with_bank_details(row),
        "bank_details_history": [_bank_details_version(v) for v in history],
    }


def _bank_details(row: Any) -> dict[str, Any] | None:
    if row["iik"] is None:
        return None
    return {"iik": row["iik"], "bik": row["bik"], "kbk": row["kbk"], "knp": row["knp"]}


def _contract_with_bank_details(row: Any) -> dict[str, Any]:
    return {
        **_contract(row),
        "bank_details": _bank_details(row),
        "bank_details_by": row["bank_details_by"],
        "bank_details_at": row["bank_details_at"].isoformat() if row["bank_details_at"] else None,
    }


def _bank_details_version(row: Any) -> dict[str, Any]:
    return {
        **(_bank_details(row) or {}),
        "reason": row["reason"],
        "invoice_number": row["invoice_number"],
        "changed_by": row["changed_by"],
        "changed_at": row["changed_at"].isoformat(),
    }


class BudgetAmendmentIn(Body):
    budget: Money = Field(ge=0, max_digits=14, decimal_places=2)
    act_number: str = Field(min_length=1, max_length=200)
    act_date: date


@router.post("/contracts/{number}/budget-amendments", status_code=201)
async def amend_budget(
    number: str, body: BudgetAmendmentIn, principal: Write, conn: Conn
) -> dict[str, Any]:
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
    return {
        **_contract(row),
        "amendments": [
            {
                "previous_budget": _money(a["previous_budget"]),
                "budget": _money(a["budget"]),
                "act_number": a["act_number"],
                "act_date": a["act_date"].isoformat(),
                "amended_by": a["amended_by"],
                "amended_at": a["amended_at"].isoformat(),
            }
            for a in amendments
        ],
    }


@router.get("/budgets")
async def get_budgets(
    principal: Read, conn: Conn, year: Annotated[int, Query(ge=2000, le=2100)]
) -> dict[str, Any]:
    rows = await store.budgets(conn, year=year, region=principal.region)
    contracts = [
        {
            "contract_number": r["number"],
            "provider_bin": r["provider_bin"],
            "provider_name": r["provider_name"],
            "region": r["region"],
            "year": r["year"],
            "budget": _money(r["budget"]),
            "invoiced": _money(r["invoiced"]),
            "over_budget": _money(r["over_budget"]),
            "remaining": _money(r["budget"] - r["invoiced"]),
            # of the invoiced (committed): held for review, and paid
            "held": _money(r["held"]),
            "paid": _money(r["paid"]),
        }
        for r in rows
    ]
    regions: dict[str, dict[str, Decimal]] = {}
    for r in rows:
        total = regions.setdefault(
            r["region"],
            dict.fromkeys(("budget", "invoiced", "over_budget", "held", "paid"), Decimal(0)),
        )
        for name in ("budget", "invoiced", "over_budget", "held", "paid"):
            total[name] += r[name]
    return {
        "year": year,
        "contracts": contracts,
        "regions": [
            {
                "region": region,
                "budget": _money(t["budget"]),
                "invoiced": _money(t["invoiced"]),
                "over_budget": _money(t["over_budget"]),
                "remaining": _money(t["budget"] - t["invoiced"]),
                "held": _money(t["held"]),
                "paid": _money(t["paid"]),
            }
            for region, t in sorted(regions.items())
        ],
    }


# attendance


@router.post("/attendance")
async def post_attendance(body: AttendanceIn, principal: Report, conn: Conn) -> dict[str, Any]:
    _acts_for(principal, body.provider_bin)
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
    already: list[dict[str, str]] = []
    accepted, errors = await service.record_attendance(
        conn=conn,
        rows=rows,
        month=domain.Month.parse(body.month),
        region_scope=principal.region,
        already=already,
    )
    return {
        "accepted": accepted,
        "already_recorded": [{"field": a["ref"], "value": a["value"]} for a in already],
        "rejected": [
            {"field": e["ref"], "reason": e["reason"], "value": e["value"]} for e in errors
        ],
    }


@router.post("/attendance/import")
async def import_attendance(
    request: Request,
    principal: Report,
    conn: Conn,
    month: Annotated[Period | None, Query()] = None,
) -> dict[str, Any]:
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
    return {
        "accepted": result.accepted,
        "already_recorded_count": len(result.already_recorded),
        "already_recorded": result.already_recorded[
            : request.app.state.runtime.settings.max_import_errors
        ],
        "rejected_count": result.rejected,
        "rejected": [
            {"line": e.line, "field": e.field, "reason": e.reason, "value": e.value}
            for e in result.errors
        ],
    }


@router.delete("/attendance/{enrollment_id}/{day}", status_code=204)
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
    phase: store.RunPhase | None = Field(
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


def _run(run: store.Run, *, repeated: bool | None = None) -> RunOut:
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
        409: {"description": "The month breaks the order of runs, or a national run covered it"},
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
    responses={409: {"description": "The run is not completed (queued, running or failed)"}},
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
) -> dict[str, Any]:
    after = decode_cursor(cursor, str) or ""
    rows = await store.list_invoices(
        conn, provider=provider, period=period, region=principal.region, after=after, limit=limit
    )
    next_cursor = encode_cursor(rows[-1]["number"]) if len(rows) == limit else None
    return {"items": [_invoice(r) for r in rows], "next_cursor": next_cursor}


@router.get("/invoices/{invoice_id}")
async def get_invoice(invoice_id: str, principal: Read, conn: Conn) -> dict[str, Any]:
    row = await store.get_invoice(conn, _uuid(invoice_id))
    if row is None or not principal.sees_region(row["region"]):
        raise Problem(404, "no such invoice")
    lines = await store.invoice_lines(conn, str(row["id"]))
    ids = sorted({t for line in lines for t in line["tariff_ids"]})
    tariffs = {t["id"]: t for t in await store.tariffs_by_id(conn, ids)}
    await service.record_invoice_read(
        conn=conn, invoice_number=row["number"], iins=[line["iin"] for line in lines]
    )
    return {
        **_invoice(row),
        "items": [_line(line, tariffs, row["blocking_rules"]) for line in lines],
    }


class DecisionIn(Body):
    reason: str = Field(min_length=1, max_length=1000)


async def _decide(
    invoice_id: str, line_no: int, decision: str, body: DecisionIn, principal: Principal, conn: Conn
) -> dict[str, Any]:
    invoice_id = _uuid(invoice_id)
    line = await service.decide_held_line(
        conn=conn,
        invoice_id=invoice_id,
        line_no=line_no,
        decision=decision,
        actor=principal.actor,
        reason=body.reason,
        region_scope=principal.region,
    )
    invoice = await store.get_invoice(conn, invoice_id)
    tariffs = {t["id"]: t for t in await store.tariffs_by_id(conn, list(line["tariff_ids"]))}
    return {
        "invoice": _invoice(invoice),
        "line": _line(line, tariffs, invoice["blocking_rules"]),
    }


@router.post("/invoices/{invoice_id}/lines/{line_no}/release")
async def release_line(
    invoice_id: str, line_no: int, body: DecisionIn, principal: Approve, conn: Conn
) -> dict[str, Any]:
    """Four eyes on a held line: another person than the one that started the run releases it;
    its held amount becomes payable."""
    return await _decide(invoice_id, line_no, "released", body, principal, conn)


@router.post("/invoices/{invoice_id}/lines/{line_no}/reject")
async def reject_line(
    invoice_id: str, line_no: int, body: DecisionIn, principal: Approve, conn: Conn
) -> dict[str, Any]:
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


@router.get("/payment-registers/{region}/{period}.csv")
async def payment_register(
    region: RegionCode, period: Period, principal: Treasury, conn: Conn
) -> Response:
    """What the treasury is to pay now for a region's month: a line per approved invoice with
    the amount still due (`amount`) to its contract's bank details; a paid invoice leaves the
    register, a rejected one returns once corrected (a new `placement`). The last line is the
    control total: `control_total`, the number of lines, and the sum of `amount`."""
    _visible(principal, region)
    rows = await store.payment_register(conn, region=region, period=period)
    lines: list[list[Any]] = [
        [
            r["number"],
            r["contract_number"],
            r["provider_bin"],
            r["provider_name"],
            r["region"],
            r["period"],
            domain.round_money(r["due"]),  # a number, written as one
            r["approved_by"],
            r["iik"],
            r["bik"],
            r["kbk"],
            r["knp"],
            domain.round_money(r["total"]),
            domain.round_money(r["paid_amount"]),
            r["placement"],
        ]
        for r in rows
    ]
    control = ["control_total", len(rows), "", "", region, period]
    control += [domain.round_money(sum((r["due"] for r in rows), Decimal(0)))]
    control += [""] * (len(REGISTER_HEADER) - len(control))
    body = csv_text(REGISTER_HEADER, [*lines, control])
    return Response(body, media_type="text/csv; charset=utf-8")


@router.post("/payment-registers/{region}/{period}/reconciliation")
async def reconciliation(
    region: RegionCode, period: Period, request: Request, principal: Treasury, conn: Conn
) -> dict[str, Any]:
    """The treasury's result file `invoice_number,amount_paid,status,date[,reference]`: a row
    per tranche paid (`paid`) or payment rejected (`rejected`, amount 0)."""
    _visible(principal, region)
    text = await _csv_body(request)
    return await service.reconcile(
        conn=conn, region=region, period=period, text=text, recorded_by=principal.actor
    )


class CorrectionIn(Body):
    bank_details: BankDetailsIn
    reason: str = Field(min_length=1, max_length=500)


@router.post("/invoices/{invoice_id}/correction")
async def correct_payment(
    invoice_id: str, body: CorrectionIn, principal: Treasury, conn: Conn
) -> dict[str, Any]:
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
    return {
        "invoice_number": invoice["number"],
        "status": invoice["status"],
        "placement": invoice["placement"],
        "due": _money(invoice["total"] - (invoice["paid_amount"] or 0)),
        "register": f"/v1/payment-registers/{invoice['region']}/{invoice['period']}.csv",
        "contract": _contract_with_bank_details(contract),
    }


@router.get("/reconciliation-report")
async def reconciliation_report(
    principal: Treasury,
    conn: Conn,
    year: Annotated[int, Query(ge=2000, le=2100)],
    region: RegionCode | None = None,
) -> dict[str, Any]:
    """Issued, approved, paid and outstanding amounts per region and month of a year; held
    (lines waiting for review) and refused (lines review rejected): issued = paid +
    outstanding + held + refused. `rejected`: payments the treasury rejected (outstanding)."""
    if region is not None:
        _visible(principal, region)
    rows = await service.reconciliation_report(conn, year=year, region=region or principal.region)
    sums = ("issued", "approved", "paid", "outstanding", "held", "refused", "rejected")
    regions: dict[str, dict[str, Any]] = {}
    for r in rows:
        total = regions.setdefault(
            r["region"], {"invoices": 0, "paid_invoices": 0, **dict.fromkeys(sums, Decimal(0))}
        )
        for name in ("invoices", "paid_invoices", *sums):
            total[name] += r[name]
    return {
        "year": year,
        "periods": [
            {
                "region": r["region"],
                "period": r["period"],
                "invoices": r["invoices"],
                "paid_invoices": r["paid_invoices"],
                **{name: _money(r[name]) for name in sums},
            }
            for r in rows
        ],
        "regions": [
            {
                "region": region_code,
                "invoices": t["invoices"],
                "paid_invoices": t["paid_invoices"],
                **{name: _money(t[name]) for name in sums},
            }
            for region_code, t in sorted(regions.items())
        ],
    }


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


def _confirmation(row: store.Confirmation, *, with_reason: bool = True) -> dict[str, Any]:
    body = {
        "enrollment_id": row.enrollment_id,
        "month": f"{row.month:%Y-%m}",
        "state": row.state,
        "provider_bin": row.provider_bin,
        "provider_name": row.provider_name,
        "region": row.region,
        "attended_days": row.attended_days,
        "requested_at": row.requested_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "answered_at": row.answered_at.isoformat() if row.answered_at else None,
        "answered_via": row.answered_via,
    }
    if with_reason:
        body["reason"] = row.dispute_reason
    return body


@router.post("/confirmations/requests", status_code=201)
async def request_confirmations(
    body: ConfirmationRequestIn, request: Request, principal: RunScope, conn: Conn
) -> dict[str, Any]:
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
    return {
        "month": asked.month,
        "region": asked.region,
        "requested": len(asked.requested),
        "enrollments": asked.requested,
    }


@router.get("/confirmations")
async def list_confirmations(
    principal: ConfirmationsRead,
    conn: Conn,
    month: Period | None = None,
    provider_bin: Bin | None = None,
    region: RegionCode | None = None,
    state: Literal["requested", "confirmed", "disputed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The confirmation state per enrollment and month: a provider's key sees its own BIN's,
    a regional key its region's (`state=disputed`: the region's review list, with reasons)."""
    if principal.bin is not None:
        if provider_bin is not None and provider_bin != principal.bin:
            raise Problem(
                403,
                f"the key of {principal.client} sees the confirmations of BIN {principal.bin} only",
                errors=[{"field": "provider_bin", "message": f"not the key's BIN {principal.bin}"}],
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
    return {
        "items": [_confirmation(r, with_reason=with_reasons) for r in rows],
        "next_cursor": encode_cursor([last.month, last.enrollment_id]) if last else None,
    }


@router.get("/confirmations/by-token/{token}", openapi_extra=PUBLIC)
async def confirmation_page(token: str, response: Response, conn: Conn) -> dict[str, Any]:
    """What the link of a message shows its holder before they answer: the month, the
    provider, the dates attended (nothing else of the person). Reading it answers nothing.
    Never kept by a shared cache: its address is the person's secret."""
    response.headers["Cache-Control"] = "no-store"
    row, dates = await service.confirmation_by_token(conn=conn, token=token)
    return {
        "month": f"{row.month:%Y-%m}",
        "provider_bin": row.provider_bin,
        "provider_name": row.provider_name,
        "form": row.form,
        "attended_days": len(dates),
        "attended_dates": [d.isoformat() for d in dates],
        "state": row.state,
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "answers": ["confirm", "dispute"] if row.state == "requested" else [],
    }


@router.post("/confirmations/answer", openapi_extra=PUBLIC)
async def answer_confirmation(body: ConfirmationAnswerIn, conn: Conn) -> dict[str, Any]:
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
    return {
        "month": f"{row.month:%Y-%m}",
        "provider_name": row.provider_name,
        "state": row.state,
        "answered_at": row.answered_at.isoformat() if row.answered_at else None,
        "message": _ANSWERED[row.state],
    }


_ANSWERED = {
    "confirmed": {"kk": "Рақмет! Ай расталды.", "ru": "Спасибо! Месяц подтверждён."},
    "disputed": {
        "kk": "Рақмет! Дау аймақтық бөлімге қарауға жіберілді.",
        "ru": "Спасибо! Спор передан на рассмотрение в региональное управление.",
    },
}
