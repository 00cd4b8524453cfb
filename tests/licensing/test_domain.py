"""Pure rules: each requirement kind met and unmet, applicability, policy, numbers, transitions."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError
from ssu_common.errors import Texts
from ssu_contracts import LicenseStatus, RecipientCategory, ServiceForm
from ssu_licensing import domain
from ssu_licensing.domain import Observation, Profile, RequirementSet

ST, DAY, HOME = ServiceForm.STATIONARY, ServiceForm.SEMI_STATIONARY, ServiceForm.HOME
ELDERLY, CHILD = RecipientCategory.ELDERLY, RecipientCategory.CHILD_DISABILITY
ON = date(2026, 3, 1)


def profile(**overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "subtypes": [(ST, ELDERLY)],
        "site_places": [25],
        "staffing": {"nurse": Decimal("1.00")},
        "equipment": frozenset({"fire_alarm"}),
        "area_m2": Decimal("100.00"),
        "step_free_access": False,
    }
    values.update(overrides)
    return Profile(**values)


def one(requirement: dict[str, Any], *, non_core_blocking: bool = True) -> RequirementSet:
    return RequirementSet.model_validate(
        {
            "version": "t",
            "title": "test",
            "non_core_blocking": non_core_blocking,
            "requirements": [
                {"id": "r1", "title_kk": "kk", "title_ru": "ru", "core": True, **requirement}
            ],
        }
    )


def finding(requirement: dict[str, Any], p: Profile) -> tuple[bool, str, str]:
    [f] = domain.evaluate(one(requirement), p, on=ON)
    return f.met, f.expected, f.actual


@pytest.mark.parametrize(
    ("requirement", "p", "expected"),
    [
        # staff_ratio per places: ceil(25 / 10) = 3 units of 1.00
        (
            {"kind": "staff_ratio", "role": "nurse", "fte": "1.00", "per_places": 10},
            profile(staffing={"nurse": Decimal("3.00")}),
            (True, "nurse >= 3.00 FTE", "nurse 3.00 FTE"),
        ),
        (
            {"kind": "staff_ratio", "role": "nurse", "fte": "1.00", "per_places": 10},
            profile(staffing={"nurse": Decimal("2.75")}),
            (False, "nurse >= 3.00 FTE", "nurse 2.75 FTE"),
        ),
        # per site: 0.5 on each of three sites
        (
            {"kind": "staff_ratio", "role": "gardener", "fte": "0.50", "per_site": True},
            profile(site_places=[5, 5, 5], staffing={"gardener": Decimal("1.50")}),
            (True, "gardener >= 1.50 FTE", "gardener 1.50 FTE"),
        ),
        (
            {"kind": "staff_ratio", "role": "gardener", "fte": "0.50", "per_site": True},
            profile(site_places=[5, 5, 5], staffing={}),
            (False, "gardener >= 1.50 FTE", "gardener 0.00 FTE"),
        ),
        # once, whatever the places
        (
            {"kind": "staff_ratio", "role": "social_worker", "fte": "1.00"},
            profile(staffing={"social_worker": Decimal("1")}),
            (True, "social_worker >= 1.00 FTE", "social_worker 1.00 FTE"),
        ),
        (
            {"kind": "equipment", "code": "fire_alarm"},
            profile(),
            (True, "fire_alarm present", "present"),
        ),
        (
            {"kind": "equipment", "code": "first_aid_kit"},
            profile(),
            (False, "first_aid_kit present", "absent"),
        ),
        (
            {"kind": "area_per_place", "m2_per_place": "4.00"},
            profile(),
            (True, ">= 100.00 m2 (4.00 m2 x 25 places)", "100.00 m2"),
        ),
        (
            {"kind": "area_per_place", "m2_per_place": "6.00"},
            profile(),
            (False, ">= 150.00 m2 (6.00 m2 x 25 places)", "100.00 m2"),
        ),
        ({"kind": "step_free_access"}, profile(step_free_access=True), (True, "yes", "yes")),
        ({"kind": "step_free_access"}, profile(), (False, "yes", "no")),
    ],
)
def test_each_requirement_kind_met_and_unmet(
    requirement: dict[str, Any], p: Profile, expected: tuple[bool, str, str]
) -> None:
    assert finding(requirement, p) == expected


def test_places_are_summed_over_sites() -> None:
    req = {"kind": "staff_ratio", "role": "caregiver", "fte": "1.00", "per_places": 5}
    p = profile(site_places=[12, 9], staffing={"caregiver": Decimal("4.00")})
    assert finding(req, p) == (False, "caregiver >= 5.00 FTE", "caregiver 4.00 FTE")


def test_a_requirement_applies_only_to_its_forms_and_categories() -> None:
    req = {"kind": "step_free_access", "forms": ["stationary"], "categories": ["child_disability"]}
    assert domain.evaluate(one(req), profile(subtypes=[(ST, ELDERLY)]), on=ON) == []
    assert domain.evaluate(one(req), profile(subtypes=[(DAY, CHILD)]), on=ON) == []
    assert (
        len(domain.evaluate(one(req), profile(subtypes=[(HOME, ELDERLY), (ST, CHILD)]), on=ON)) == 1
    )


def test_non_core_requirements_block_only_when_the_policy_says_so() -> None:
    req = {"kind": "step_free_access", "core": False}
    [strict] = domain.evaluate(one(req, non_core_blocking=True), profile(), on=ON)
    [lenient] = domain.evaluate(one(req, non_core_blocking=False), profile(), on=ON)
    assert (strict.core, strict.blocking, strict.met) == (False, True, False)
    assert (lenient.core, lenient.blocking, lenient.met) == (False, False, False)
    assert not domain.passes([strict])
    assert domain.passes([lenient])


def test_an_inspection_overrides_the_declared_values() -> None:
    req = {"kind": "equipment", "code": "fire_alarm"}
    observed = {"r1": Observation(met=False, actual="alarm disconnected")}
    [f] = domain.evaluate(one(req), profile(), observed, on=ON)
    assert (f.met, f.expected, f.actual) == (False, "fire_alarm present", "alarm disconnected")


def test_requirement_sets_refuse_unknown_codes_and_duplicate_ids() -> None:
    with pytest.raises(ValidationError) as info:
        one({"kind": "staff_ratio", "role": "astronaut", "fte": "1.00"})
    assert info.value.errors()[0]["loc"] == ("requirements", 0, "staff_ratio", "role")
    with pytest.raises(ValidationError):
        one({"kind": "equipment", "code": "teleporter"})
    with pytest.raises(ValidationError):
        RequirementSet.model_validate(
            {
                "version": "t",
                "title": "t",
                "non_core_blocking": True,
                "requirements": [
                    {
                        "id": "a",
                        "kind": "step_free_access",
                        "core": True,
                        "title_kk": "k",
                        "title_ru": "r",
                    },
                ]
                * 2,
            }
        )


def test_license_number_format() -> None:
    assert domain.license_number(region="630000000", year=2026, sequence=7) == (
        "SSU-63-2026-000007"
    )
    with pytest.raises(ValueError):
        domain.license_number(region="630000000", year=2026, sequence=1_000_000)


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("suspend", {LicenseStatus.ACTIVE}),
        ("reinstate", {LicenseStatus.SUSPENDED}),
        ("revoke", {LicenseStatus.ACTIVE, LicenseStatus.SUSPENDED}),
        ("add_site", {LicenseStatus.ACTIVE, LicenseStatus.SUSPENDED}),
    ],
)
def test_transitions(action: domain.Action, allowed: set[LicenseStatus]) -> None:
    assert {s for s in LicenseStatus if domain.transition_allowed(action, s)} == allowed


def test_amending_a_license_needs_it_live() -> None:
    assert {s for s in LicenseStatus if domain.transition_allowed("amend_staffing", s)} == {
        LicenseStatus.ACTIVE,
        LicenseStatus.SUSPENDED,
    }


def test_status_changes_lead_where_they_always_led() -> None:
    assert {
        action: (change.to, change.recorded_as, change.event.event_type, sorted(change.carries))
        for action, change in domain.STATUS_CHANGES.items()
    } == {
        "suspend": (
            LicenseStatus.SUSPENDED,
            "license.suspended",
            "licensing.license.suspended.v1",
            ["reason", "until"],
        ),
        "reinstate": (
            LicenseStatus.ACTIVE,
            "license.reinstated",
            "licensing.license.reinstated.v1",
            [],
        ),
        "revoke": (
            LicenseStatus.REVOKED,
            "license.revoked",
            "licensing.license.revoked.v1",
            ["reason"],
        ),
    }


def test_a_refused_action_says_why_in_each_language() -> None:
    assert domain.refusal_detail("add_site", "SSU-63-2026-000001", LicenseStatus.REVOKED) == (
        Texts(
            "license SSU-63-2026-000001 is revoked; it cannot be given a new site",
            "SSU-63-2026-000001 лицензиясы: кері қайтарып алынды; оны жаңа алаңмен толықтыруға"
            " болмайды",
            "лицензия SSU-63-2026-000001: отозвана; её нельзя дополнить площадкой",
        )
    )
    assert domain.LICENSE_ACTIONS["add_site"].refusal.type == "/problems/license-not-amendable"
