"""Kazakh identifiers: IIN (person), BIN (organisation), KATO (place) (DESIGN §3)."""

from datetime import date
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

from ssu_contracts.reference import REGIONS

_CENTURIES = {"1": 1800, "2": 1800, "3": 1900, "4": 1900, "5": 2000, "6": 2000}
_BIN_ENTITY_TYPES = "456"  # resident, non-resident, joint entrepreneurship
_BIN_ATTRIBUTES = "0123"  # head office, branch, representative office, peasant farm


def _is_digits(s: object, length: int) -> bool:
    return isinstance(s, str) and len(s) == length and s.isascii() and s.isdigit()


# The check digit's two weighted sums (weights 1..11, then 3..11, 1, 2 when the first gives
# 10), written out over the ASCII codes: each weight set sums to 66, so the codes' offset is
# 48 * 66. The registry's import checks 100,000 IINs, where this is most of the parsing time.
_ASCII_OFFSET = 48 * 66


def _check_digit_of(b: bytes) -> int | None:
    """The check digit of the first 11 ASCII digits of `b`; None when none makes it valid."""
    digit = (
        b[0]
        + 2 * b[1]
        + 3 * b[2]
        + 4 * b[3]
        + 5 * b[4]
        + 6 * b[5]
        + 7 * b[6]
        + 8 * b[7]
        + 9 * b[8]
        + 10 * b[9]
        + 11 * b[10]
        - _ASCII_OFFSET
    ) % 11
    if digit != 10:
        return digit
    digit = (
        3 * b[0]
        + 4 * b[1]
        + 5 * b[2]
        + 6 * b[3]
        + 7 * b[4]
        + 8 * b[5]
        + 9 * b[6]
        + 10 * b[7]
        + 11 * b[8]
        + b[9]
        + 2 * b[10]
        - _ASCII_OFFSET
    ) % 11
    return None if digit == 10 else digit


def check_digit(first11: str) -> int | None:
    """Check digit of the first 11 digits of an IIN/BIN; None when no digit makes it valid."""
    if not _is_digits(first11, 11):
        raise ValueError(f"expected 11 digits, got {first11!r}")
    return _check_digit_of(first11.encode())


def iin_birth_or_problem(iin: str) -> date | str:
    """The birth date a valid IIN encodes, or in a few words why the string is not a valid IIN
    (what a row error of an import or a field error says)."""
    if len(iin) != 12 or not iin.isascii() or not iin.isdigit():
        return "must be exactly 12 digits"
    b = iin.encode()
    if _check_digit_of(b) != b[11] - 48:
        return "wrong check digit"
    century = _CENTURIES.get(iin[6])
    if century is None:
        return "invalid century digit (7th digit must be 1-6)"
    try:
        return date(century + int(iin[:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError:
        return "encodes an invalid birth date"


def _checksum_error(kind: str, value: object) -> str | None:
    if not isinstance(value, str):
        return f"{kind} must be a string of 12 digits"
    if not _is_digits(value, 12):
        return f"{kind} must be exactly 12 digits, got {value!r}"
    expected = check_digit(value[:11])
    if expected is None:
        return f"{kind} {value} is invalid: no check digit exists for its first 11 digits"
    if expected != int(value[11]):
        return f"{kind} {value} has a wrong check digit (expected {expected})"
    return None


def iin_birth_date(iin: str) -> date:
    """Birth date encoded in an IIN; ValueError when the IIN is not valid."""
    error = _checksum_error("IIN", iin)
    if error:
        raise ValueError(error)
    century = _CENTURIES.get(iin[6])
    if century is None:
        raise ValueError(
            f"IIN {iin} has an invalid century digit {iin[6]!r} (7th digit must be 1-6)"
        )
    try:
        return date(century + int(iin[0:2]), int(iin[2:4]), int(iin[4:6]))
    except ValueError as exc:
        raise ValueError(f"IIN {iin} encodes an invalid birth date {iin[0:6]!r}: {exc}") from None


def iin_sex(iin: str) -> str:
    """'male' or 'female' from the 7th digit of a valid IIN."""
    iin_birth_date(iin)
    return "male" if int(iin[6]) % 2 == 1 else "female"


def is_valid_iin(s: object) -> bool:
    """True when s is a 12-digit IIN with a valid checksum, century digit and birth date."""
    if not isinstance(s, str):
        return False
    try:
        iin_birth_date(s)
    except ValueError:
        return False
    return True


def _bin_error(value: object) -> str | None:
    error = _checksum_error("BIN", value)
    if error:
        return error
    assert isinstance(value, str)
    if value[4] not in _BIN_ENTITY_TYPES:
        return f"BIN {value} has an invalid entity type digit {value[4]!r} (5th digit must be 4-6)"
    if value[5] not in _BIN_ATTRIBUTES:
        return f"BIN {value} has an invalid attribute digit {value[5]!r} (6th digit must be 0-3)"
    return None


def is_valid_bin(s: object) -> bool:
    """True when s is a 12-digit BIN with a valid checksum, entity type and attribute digit."""
    return _bin_error(s) is None


def is_valid_kato(s: object) -> bool:
    """True when s is a 9-digit KATO code."""
    return _is_digits(s, 9)


def region_of(kato: str) -> str:
    """Region KATO (`AB0000000`) of any KATO code."""
    if not is_valid_kato(kato):
        raise ValueError(f"KATO must be exactly 9 digits, got {kato!r}")
    return kato[:2] + "0000000"


@lru_cache(maxsize=4096)
def _valid_suffixes(prefix7: str) -> tuple[str, ...]:
    suffixes = []
    for serial in range(10_000):
        digit = check_digit(f"{prefix7}{serial:04d}")
        if digit is not None:
            suffixes.append(f"{serial:04d}{digit}")
    return tuple(suffixes)


_SEXES = {"m": 0, "male": 0, "f": 1, "female": 1}


def make_iin(birth: date, sex: str, serial: int) -> str:
    """Valid IIN for a birth date and sex ('male'/'female'); distinct serials give distinct IINs.

    `serial` counts only the serials whose check digit exists (about 9,900 per date and sex).
    """
    offset = _SEXES.get(sex.lower())
    if offset is None:
        raise ValueError(f"sex must be 'male' or 'female', got {sex!r}")
    centuries = {1800: 1, 1900: 3, 2000: 5}
    base = centuries.get(birth.year // 100 * 100)
    if base is None:
        raise ValueError(f"an IIN cannot encode a birth year {birth.year}")
    prefix = f"{birth:%y%m%d}{base + offset}"
    suffixes = _valid_suffixes(prefix)
    if not 0 <= serial < len(suffixes):
        raise ValueError(f"serial must be in 0..{len(suffixes) - 1}, got {serial}")
    return prefix + suffixes[serial]


def make_bin(registered: date, serial: int, *, entity_type: int = 4, attribute: int = 0) -> str:
    """Valid BIN for a registration month; distinct serials give distinct BINs.

    `serial` counts only the serials whose check digit exists (about 99,000 per month).
    """
    if str(entity_type) not in _BIN_ENTITY_TYPES or not 0 <= entity_type <= 9:
        raise ValueError(f"entity_type must be 4, 5 or 6, got {entity_type}")
    if str(attribute) not in _BIN_ATTRIBUTES or not 0 <= attribute <= 9:
        raise ValueError(f"attribute must be 0-3, got {attribute}")
    if serial < 0:
        raise ValueError(f"serial must not be negative, got {serial}")
    prefix = f"{registered:%y%m}{entity_type}{attribute}"
    # Walk 5-digit serials in blocks of 10,000 so lookups stay cheap and cached.
    remaining = serial
    for block in range(10):
        suffixes = _valid_suffixes(f"{prefix}{block}")
        if remaining < len(suffixes):
            return f"{prefix}{block}{suffixes[remaining]}"
        remaining -= len(suffixes)
    raise ValueError(f"serial {serial} is beyond the BINs of {registered:%Y-%m}")


def _validate_iin(value: str) -> str:
    iin_birth_date(value)
    return value


def _validate_bin(value: str) -> str:
    error = _bin_error(value)
    if error:
        raise ValueError(error)
    return value


def _validate_kato(value: str) -> str:
    if not is_valid_kato(value):
        raise ValueError(f"KATO must be exactly 9 digits, got {value!r}")
    return value


def _validate_region(value: str) -> str:
    _validate_kato(value)
    if value not in REGIONS:
        raise ValueError(
            f"{value} is not a region KATO code (a known AB0000000 code, e.g. 710000000)"
        )
    return value


Iin = Annotated[
    str,
    AfterValidator(_validate_iin),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{12}$",
            "description": "IIN: 12 digits, birth date and check digit encoded",
        }
    ),
]
Bin = Annotated[
    str,
    AfterValidator(_validate_bin),
    WithJsonSchema(
        {"type": "string", "pattern": "^[0-9]{12}$", "description": "BIN: 12 digits, checksummed"}
    ),
]
Kato = Annotated[
    str,
    AfterValidator(_validate_kato),
    WithJsonSchema({"type": "string", "pattern": "^[0-9]{9}$", "description": "KATO code"}),
]
RegionCode = Annotated[
    str,
    AfterValidator(_validate_region),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(REGIONS),
            "description": "Region KATO code (AB0000000)",
        }
    ),
]
