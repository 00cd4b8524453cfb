"""CSV files: those the services write, safe to open in a spreadsheet (OWASP CSV injection),
and those they read from a request body.

A text cell that begins with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
spreadsheets as a formula (`=HYPERLINK(...)` in a provider's name would run in the treasury's
spreadsheet); such a cell is prefixed with `'`, which makes it text. Numbers are written as they
are, so amounts stay numbers.
"""

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal

from starlette.requests import Request

from ssu_common.problems import Problem, field_error

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | Decimal | None


def safe_cell(value: Cell) -> str:
    """The cell as written: numbers as they are, text that could start a formula escaped."""
    if value is None:
        return ""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A CSV document (`\\n` line ends, minimal quoting) with every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return out.getvalue()


async def read_csv_body(request: Request, max_bytes: int) -> str:
    """A CSV request body as text: the file itself (not a form), at most `max_bytes`, UTF-8
    (a byte-order mark, as spreadsheets write one, is dropped)."""
    if request.headers.get("content-type", "").startswith("multipart/"):
        raise Problem(415, "send the CSV file as the request body (Content-Type: text/csv)")
    raw = await request.body()
    if len(raw) > max_bytes:
        raise Problem(413, f"the CSV file is larger than {max_bytes} bytes")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise field_error("body", "the CSV file is not UTF-8 text") from None
