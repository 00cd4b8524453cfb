"""CSV cells a spreadsheet would run as formulas are escaped (OWASP CSV injection); a CSV
request body is read one way by every service."""

from decimal import Decimal
from typing import Any

import pytest
from ssu_common import Problem, csv_text, read_csv_body, safe_cell
from starlette.requests import Request


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


def _request(body: bytes, content_type: str = "text/csv") -> Request:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/import",
        "headers": [(b"content-type", content_type.encode())],
    }
    return Request(scope, receive)


async def test_a_csv_body_is_text_without_the_byte_order_mark() -> None:
    body = "\ufeffiin,full_name\n791028302728,Әлия\n".encode()
    assert await read_csv_body(_request(body), 1000) == "iin,full_name\n791028302728,Әлия\n"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b"a,b\n", "multipart/form-data; boundary=x", 415,
         "send the CSV file as the request body (Content-Type: text/csv)"),
        (b"a,b\n" * 3, "text/csv", 413, "the CSV file is larger than 10 bytes"),
        ("a,b\nӘ,1\n".encode("cp1251", errors="replace") + b"\xff", "text/csv", 422,
         "body: the CSV file is not UTF-8 text"),
    ],
)  # fmt: skip
async def test_a_csv_body_that_cannot_be_read_is_refused(
    body: bytes, content_type: str, status: int, detail: str
) -> None:
    with pytest.raises(Problem) as refused:
        await read_csv_body(_request(body, content_type), 10 if status == 413 else 1000)
    assert (refused.value.status, refused.value.detail) == (status, detail)
