"""Pure rules of billing: no database, no broker."""

from datetime import date
from decimal import Decimal

import pytest
from ssu_billing import domain
from ssu_billing.settings import DEFAULT_TARIFF_LIMITS


def test_month_bounds() -> None:
    feb = domain.Month.parse("2028-02")
    assert (feb.first, feb.last, feb.days, feb.label) == (
        date(2028, 2, 1),
        date(2028, 2, 29),
        29,
        "2028-02",
    )
    assert domain.Month.parse("2026-12").next().label == "2027-01"
    assert feb.contains(date(2028, 2, 29)) and not feb.contains(date(2028, 3, 1))


@pytest.mark.parametrize(
    ("value", "rounded"),
    [
        ("1000.005", "1000.01"),
        ("33333.3333", "33333.33"),
        ("66666.6666", "66666.67"),
        ("0.004", "0.00"),
        ("2.675", "2.68"),
    ],
)
def test_money_rounds_half_up_to_the_tiyn(value: str, rounded: str) -> None:
    assert domain.round_money(Decimal(value)) == Decimal(rounded)


def test_rate_limits_per_form_and_unit() -> None:
    check = domain.rate_outside_limits
    limits = DEFAULT_TARIFF_LIMITS
    assert check(rate=Decimal("1000"), form="stationary", unit="day", limits=limits) is None
    assert check(rate=Decimal("999.99"), form="stationary", unit="day", limits=limits) == (
        "rate 999.99 is outside the national limits 1000..60000 for stationary per day"
    )
    assert check(rate=Decimal("5"), form="unknown", unit="day", limits=limits) == (
        "no national limits are configured for form unknown per day"
    )


def test_attendance_csv_reports_bad_rows_by_line() -> None:
    rows = domain.attendance_rows(
        "iin,provider_bin,date\n791028302728,940140000385,2026-01-05\n"
        "79102830272,940140000385,2026-01-06\n791028302728,940140000385,5 Jan\n"
    )
    assert list(rows) == [
        domain.AttendanceRow(2, "791028302728", "940140000385", date(2026, 1, 5)),
        domain.RowError(3, "iin", "not an IIN (12 digits)", "79102830272"),
        domain.RowError(4, "date", "not a date (YYYY-MM-DD)", "5 Jan"),
    ]
    assert list(domain.attendance_rows("iin,date\n")) == [
        domain.RowError(1, "header", "missing columns: provider_bin")
    ]


def test_treasury_file_and_payment_outcomes() -> None:
    rows, errors = domain.parse_treasury_csv(
        "invoice_number,amount_paid,status,date\nA,100.00,paid,2026-02-01\n"
        "B,1.001,paid,2026-02-01\nC,0,cancelled,2026-02-01\n"
    )
    assert rows == [domain.TreasuryRow(2, "A", Decimal("100.00"), "paid", date(2026, 2, 1))]
    assert [(e.line, e.field) for e in errors] == [(3, "amount_paid"), (4, "status")]
    outcome = domain.payment_outcome
    total = Decimal("100.00")
    assert outcome(total=total, amount_paid=Decimal("100.00"), status="paid") == ("paid", None)
    assert outcome(total=total, amount_paid=Decimal("60.00"), status="paid") == (
        "partially_paid",
        "paid 60.00 of 100.00: short by 40.00",
    )
    assert outcome(total=total, amount_paid=Decimal("100.01"), status="paid") == (
        None,
        "paid 100.01, more than the invoice total 100.00",
    )
    assert outcome(total=total, amount_paid=Decimal("0"), status="rejected") == (
        "payment_rejected",
        None,
    )


def test_the_budget_rule_pays_a_later_line_that_still_fits() -> None:
    d = Decimal
    lines = [d("100000.00"), d("100000.00"), d("100000.00"), d("30000.00")]
    assert domain.budget_statuses(budget=d("250000.00"), spent=d(0), amounts=lines) == [
        "billed",
        "billed",
        "over_budget",
        "billed",
    ]
    # a credit always counts, and a line of nothing is never over budget
    assert domain.budget_statuses(
        budget=d("100.00"), spent=d("100.00"), amounts=[d("0.00"), d("-10.00"), d("10.00")]
    ) == ["billed", "billed", "billed"]


def test_runs_are_in_order_per_region_and_a_national_run_in_every_region() -> None:
    m = domain.Month.parse
    held = [
        (date(2025, 1, 1), "630000000"),
        (date(2025, 2, 1), None),
        (date(2025, 3, 1), "100000000"),
    ]
    order = domain.run_out_of_order
    assert order(month=m("2025-03"), region="630000000", held=held) is None
    assert order(month=m("2025-04"), region="100000000", held=held) is None
    assert order(month=m("2025-04"), region="630000000", held=held) == (
        "region 630000000 has not been billed for 2025-03: months are billed in order"
    )
    assert order(month=m("2025-03"), region=None, held=held) is None  # 100000000 has it already
    assert order(month=m("2025-04"), region=None, held=held) == (
        "region 630000000 has not been billed for 2025-03: months are billed in order"
    )
    assert order(month=m("2025-01"), region=None, held=held) == (
        "region 100000000 was billed for 2025-03: months are billed in order"
    )
    assert order(month=m("2025-06"), region="750000000", held=[]) is None
    today = date(2025, 3, 31)
    assert domain.month_not_ended(m("2025-02"), today) is None
    assert domain.month_not_ended(m("2025-03"), today) == (
        "2025-03 has not ended (today is 2025-03-31): a month is billed once it has ended"
    )


def test_tranches_and_bank_details() -> None:
    outcome = domain.payment_outcome
    total = Decimal("12345.60")
    assert outcome(
        total=total, amount_paid=Decimal("7345.60"), status="paid", paid_before=Decimal("5000.00")
    ) == ("paid", None)
    assert outcome(
        total=total, amount_paid=Decimal("3000.00"), status="paid", paid_before=Decimal("5000.00")
    ) == ("partially_paid", "paid 8000.00 of 12345.60: short by 4345.60")
    assert outcome(
        total=total, amount_paid=Decimal("7345.61"), status="paid", paid_before=Decimal("5000.00")
    ) == (
        None,
        "a tranche of 7345.61 after 5000.00 paid comes to 12345.61, more than the invoice total"
        " 12345.60: over by 0.01",
    )
    assert domain.normal_iik("kz86 125k zt50 0410 0100") == "KZ86125KZT5004100100"
    for bad in ("KZ87125KZT5004100100", "KZ86125KZT500410010", "GB82WEST12345698765432"):
        with pytest.raises(ValueError):
            domain.normal_iik(bad)
    assert domain.normal_bik("hsbkkzkxxxx") == "HSBKKZKXXXX"
    for bad in ("HSBKRUKX", "HSBKKZK", "1SBKKZKX", "HSBKKZKXXX"):
        with pytest.raises(ValueError):
            domain.normal_bik(bad)
    for bad in ("12345", "1234567", "12345a", "١٢٣٤٥٦"):
        with pytest.raises(ValueError):
            domain.check_kbk(bad)
    for bad in ("85", "8590", "8a9"):
        with pytest.raises(ValueError):
            domain.check_knp(bad)
