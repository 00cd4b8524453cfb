"""Pure rules of the registry."""

import random
from datetime import date

import pytest
from ssu_contracts import check_digit
from ssu_contracts.ids import iin_birth_or_problem
from ssu_registry import domain

ADULT = domain.RecipientContact(
    full_name="Асан",
    birth_date=date(1980, 1, 1),
    language="ru",
    phone="+77010000000",
    email=None,
    guardian_name="Қамқоршы",
    guardian_phone="+77019999999",
    guardian_email=None,
)


def test_a_minor_is_addressed_through_the_guardian() -> None:
    child = domain.RecipientContact(**{**ADULT.__dict__, "birth_date": date(2010, 6, 1)})
    got = domain.addressee_for(child, on=date(2026, 5, 31))
    assert (got.name, got.phone, got.is_guardian, got.language) == (
        "Қамқоршы",
        "+77019999999",
        True,
        "ru",
    )
    # On the 18th birthday the recipient is told directly.
    assert not domain.addressee_for(child, on=date(2028, 6, 1)).is_guardian


def test_an_adult_is_addressed_directly_unless_unreachable() -> None:
    assert domain.addressee_for(ADULT, on=date(2026, 1, 1)).name == "Асан"
    unreachable = domain.RecipientContact(**{**ADULT.__dict__, "phone": None})
    assert domain.addressee_for(unreachable, on=date(2026, 1, 1)).is_guardian


def test_a_minor_without_a_guardian_is_addressed_directly() -> None:
    child = domain.RecipientContact(
        **{**ADULT.__dict__, "birth_date": date(2012, 1, 1), "guardian_name": None}
    )
    assert domain.addressee_for(child, on=date(2026, 1, 1)).name == "Асан"


@pytest.mark.parametrize(
    ("birth", "band"),
    [
        (date(2008, 11, 27), "0-17"),
        (date(2008, 11, 26), "18-64"),
        (date(1961, 11, 27), "18-64"),
        (date(1961, 11, 26), "65+"),
    ],
)
def test_age_bands(birth: date, band: str) -> None:
    assert domain.age_band(birth, date(2026, 11, 26)) == band


def test_last_date_before_never_precedes_the_start() -> None:
    assert domain.last_date_before(date(2026, 1, 1), date(2026, 4, 1)) == date(2026, 3, 31)
    assert domain.last_date_before(date(2026, 4, 1), date(2026, 4, 1)) == date(2026, 4, 1)


def test_capacity_applies_to_residential_day_care_and_temporary_forms() -> None:
    assert [
        domain.has_capacity_limit(f)
        for f in ("stationary", "semi_stationary", "temporary_stay", "home")
    ] == [True, True, True, False]


def test_import_row_is_parsed_or_refused_with_its_field() -> None:
    values = [
        "791028302728",
        " Айгерим ",
        "1979-10-28",
        "adult_disability",
        "630000000",
        "2",
        "kk",
        "",
        "",
        "",
    ]
    record, error = domain.parse_import_row(values, 7, region_scope=None)
    assert error is None
    assert record == (
        "791028302728",
        "Айгерим",
        date(1979, 10, 28),
        "adult_disability",
        "630000000",
        2,
        "kk",
        None,
        None,
        None,
        7,
    )
    _, error = domain.parse_import_row(values, 7, region_scope="710000000")
    assert error == domain.RowError(7, "region", "outside the region of this API key")
    bad = [
        "791028302728",
        "x",
        "1979-10-28",
        "adult_disability",
        "630000000",
        "",
        "kk",
        "G",
        "not a phone",
        "",
    ]
    assert domain.parse_import_row(bad, 2, region_scope=None)[1] == domain.RowError(
        2, "guardian_phone", "is not a phone number"
    )
    assert domain.parse_import_row(["791028302720", *bad[1:]], 3, region_scope=None)[
        1
    ] == domain.RowError(3, "iin", "wrong check digit")


def _reference_check_digit(first11: str) -> int | None:
    """The rule as the standard states it: weights 1..11, then 3..11, 1, 2 if that gives 10."""
    for weights in ((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)):
        digit = sum(int(d) * w for d, w in zip(first11, weights, strict=True)) % 11
        if digit != 10:
            return digit
    return None


def test_the_one_iin_check_agrees_with_the_rule_on_generated_cases() -> None:
    """Registry reads IINs through the contracts' one check (ssu_contracts.ids)."""
    rng = random.Random(14)
    for _ in range(20_000):
        first11 = f"{rng.randrange(10**11):011d}"
        expected = _reference_check_digit(first11)
        assert check_digit(first11) == expected, first11
        for last in range(10):
            found = iin_birth_or_problem(first11 + str(last))
            if expected is None or last != expected:
                assert found == "wrong check digit", first11 + str(last)
            else:
                assert found != "wrong check digit", first11 + str(last)
    assert iin_birth_or_problem("791028302720") == "wrong check digit"
    assert iin_birth_or_problem("79102830272") == "must be exactly 12 digits"
    assert iin_birth_or_problem("791028302728") == date(1979, 10, 28)
    assert iin_birth_or_problem("791028702723") == "invalid century digit (7th digit must be 1-6)"
