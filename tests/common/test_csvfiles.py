"""CSV cells a spreadsheet would run as formulas are escaped (OWASP CSV injection)."""

from decimal import Decimal

import pytest
from ssu_common import csv_text, safe_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+77010000000", "'+77010000000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("Мейірім = үй", "Мейірім = үй"),
        ("", ""),
        (None, ""),
        (Decimal("-120.50"), "-120.50"),
        (-3, "-3"),
    ],
)
def test_safe_cell(value: str | Decimal | int | None, written: str) -> None:
    assert safe_cell(value) == written


def test_csv_text_escapes_then_quotes() -> None:
    assert csv_text(["name", "amount"], [['=HYPERLINK("x","y")', Decimal("1.00")]]) == (
        'name,amount\n"\'=HYPERLINK(""x"",""y"")",1.00\n'
    )
