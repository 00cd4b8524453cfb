from datetime import date

import pytest
from pydantic import TypeAdapter, ValidationError
from ssu_contracts import (
    REGIONS,
    Bin,
    Iin,
    Kato,
    RegionCode,
    check_digit,
    iin_birth_date,
    iin_sex,
    is_valid_bin,
    is_valid_iin,
    make_bin,
    make_iin,
    name_of,
    region_of,
)

# First pass: Σ i·d_i over 8,5,0,1,1,5,4,0,0,9,1 = 186 ≡ 10 (mod 11), so the fallback weights
# 3..11,1,2 decide: 144 ≡ 1 (mod 11) → check digit 1.
IIN_DECIDED_BY_FALLBACK = "850115400911"
# Both passes give 10 for these first 11 digits: no check digit exists.
FIRST11_WITHOUT_CHECK_DIGIT = "85011540090"


@pytest.mark.parametrize("iin", ["791028302728", "061211600012", IIN_DECIDED_BY_FALLBACK])
def test_valid_iins(iin: str) -> None:
    assert is_valid_iin(iin)
    assert TypeAdapter(Iin).validate_python(iin) == iin


def test_birth_dates() -> None:
    assert iin_birth_date("791028302728") == date(1979, 10, 28)
    assert iin_birth_date("061211600012") == date(2006, 12, 11)
    assert iin_birth_date(IIN_DECIDED_BY_FALLBACK) == date(1985, 1, 15)
    assert iin_sex("791028302728") == "male"
    assert iin_sex("061211600012") == "female"


def test_fallback_weights_decide() -> None:
    first11 = IIN_DECIDED_BY_FALLBACK[:11]
    assert sum(int(d) * w for d, w in zip(first11, range(1, 12), strict=True)) % 11 == 10
    assert check_digit(first11) == 1


def test_no_check_digit_means_invalid() -> None:
    assert check_digit(FIRST11_WITHOUT_CHECK_DIGIT) is None
    for last in "0123456789":
        assert not is_valid_iin(FIRST11_WITHOUT_CHECK_DIGIT + last)
    with pytest.raises(ValueError, match="no check digit"):
        iin_birth_date(FIRST11_WITHOUT_CHECK_DIGIT + "0")


@pytest.mark.parametrize(
    ("iin", "message"),
    [
        ("791028302729", "wrong check digit"),
        ("79102830272", "12 digits"),
        ("79102830272a", "12 digits"),
        ("７９１０２８３０２７２８", "12 digits"),
    ],
)
def test_invalid_iins(iin: str, message: str) -> None:
    assert not is_valid_iin(iin)
    with pytest.raises(ValueError, match=message):
        iin_birth_date(iin)
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(Iin).validate_python(iin)


def _with_check_digit(first11: str) -> str:
    digit = check_digit(first11)
    assert digit is not None
    return first11 + str(digit)


def test_invalid_century_digit() -> None:
    iin = _with_check_digit("79102870272")
    with pytest.raises(ValueError, match="century digit"):
        iin_birth_date(iin)
    assert not is_valid_iin(iin)


def test_invalid_month() -> None:
    iin = _with_check_digit("79132830272")
    with pytest.raises(ValueError, match="invalid birth date"):
        iin_birth_date(iin)


def test_invalid_day() -> None:
    iin = _with_check_digit("79023030272")  # 30 February
    with pytest.raises(ValueError, match="invalid birth date"):
        iin_birth_date(iin)


def test_iin_is_not_int() -> None:
    assert not is_valid_iin(791028302728)
    with pytest.raises(ValidationError):
        TypeAdapter(Iin).validate_python(791028302728)


@pytest.mark.parametrize("birth", [date(1899, 12, 31), date(1950, 2, 28), date(2024, 2, 29)])
@pytest.mark.parametrize("sex", ["male", "female"])
def test_make_iin_round_trips(birth: date, sex: str) -> None:
    iins = [make_iin(birth, sex, serial) for serial in range(300)]
    assert len(set(iins)) == len(iins)
    for iin in iins:
        assert is_valid_iin(iin)
        assert iin_birth_date(iin) == birth
        assert iin_sex(iin) == sex


def test_make_iin_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        make_iin(date(1990, 1, 1), "x", 0)
    with pytest.raises(ValueError):
        make_iin(date(1990, 1, 1), "male", 10_000)
    with pytest.raises(ValueError):
        make_iin(date(2100, 1, 1), "male", 0)


@pytest.mark.parametrize("bin_", ["940140000385", "990140004654"])
def test_valid_bins(bin_: str) -> None:
    assert is_valid_bin(bin_)
    assert TypeAdapter(Bin).validate_python(bin_) == bin_


@pytest.mark.parametrize(
    ("bin_", "message"),
    [
        ("940140000386", "wrong check digit"),
        ("9401400003", "12 digits"),
        ("791028302728", "entity type"),  # an IIN is not a BIN
    ],
)
def test_invalid_bins(bin_: str, message: str) -> None:
    assert not is_valid_bin(bin_)
    with pytest.raises(ValidationError, match=message):
        TypeAdapter(Bin).validate_python(bin_)


def test_make_bin_round_trips() -> None:
    bins = [make_bin(date(2015, 3, 1), serial, attribute=1) for serial in range(2_000)]
    assert len(set(bins)) == len(bins)
    assert all(is_valid_bin(b) and b.startswith("150341") for b in bins)


def test_kato_and_regions() -> None:
    assert region_of("631010000") == "630000000"
    assert region_of("711210000") == "710000000"
    assert TypeAdapter(Kato).validate_python("631010000") == "631010000"
    with pytest.raises(ValidationError, match="9 digits"):
        TypeAdapter(Kato).validate_python("63101000")
    assert TypeAdapter(RegionCode).validate_python("710000000") == "710000000"
    with pytest.raises(ValidationError, match="not a region"):
        TypeAdapter(RegionCode).validate_python("631010000")
    with pytest.raises(ValidationError, match="not a region"):
        TypeAdapter(RegionCode).validate_python("990000000")


def test_reference_names() -> None:
    assert len(REGIONS) == 20
    assert REGIONS["630000000"].name_ru == "Восточно-Казахстанская область"
    assert name_of("region", "710000000", "kk") == "Астана қаласы"
    assert name_of("service_form", "stationary", "ru") == "стационарная форма"
    assert name_of("service_form", "stationary", "kk") == "стационарлық нысан"
    assert name_of("legal_form", "ngo", "ru") == "неправительственная организация"
    with pytest.raises(KeyError):
        name_of("service_form", "nope", "ru")
    with pytest.raises(ValueError):
        name_of("service_form", "home", "en")
