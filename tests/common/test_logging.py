"""PII masking in logs: IINs, phones and emails never appear whole; BINs stay readable."""

import json
import logging

from harness import find_pii
from ssu_common import configure_logging, get_logger, mask_pii

RAW = (
    "recipient 791028302728 guardian +7 701 123 45 67 / 87011234567 mail aigerim.k@mail.kz "
    "provider BIN 940140000385"
)


def test_mask_pii_hides_people_and_keeps_organisations() -> None:
    assert sorted(find_pii(RAW)) == sorted(
        ["791028302728", "+7 701 123 45 67", "87011234567", "aigerim.k@mail.kz"]
    )
    masked = mask_pii(RAW)
    assert find_pii(masked) == []
    assert "79********28" in masked
    assert "a***@mail.kz" in masked
    assert "+7*******67" in masked
    assert "940140000385" in masked


def test_structured_and_library_logs_are_masked(capsys) -> None:  # type: ignore[no-untyped-def]
    configure_logging("test")
    get_logger("t").info(
        "recipient.registered",
        iin="061211600012",
        phone="+77011234567",
        nested={"email": "x.y@gov.kz"},
    )
    logging.getLogger("uvicorn.access").info('GET /v1/recipients/061211600012 HTTP/1.1" 200')
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    assert find_pii(json.dumps(lines, ensure_ascii=False)) == []
    assert lines[0]["iin"] == "06********12"
    assert lines[0]["nested"] == {"email": "x***@gov.kz"}
    assert lines[1]["event"] == 'GET /v1/recipients/06********12 HTTP/1.1" 200'
