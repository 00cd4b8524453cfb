"""Pure rules of the registry."""

from datetime import date

import pytest
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
    assert domain.iin_problem("791028302720") == "wrong check digit"
