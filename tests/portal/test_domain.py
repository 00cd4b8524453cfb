"""The portal's pure rules: languages, the shelter rule, the chart, the message files."""

import re
from pathlib import Path

from ssu_contracts import Subtype
from ssu_portal import domain, pages

TEMPLATES = Path(pages.HERE) / "templates"


def test_the_language_asked_for_wins_then_the_kept_one_then_the_browser_s() -> None:
    assert domain.choose_language("ru", "kk", "kk") == "ru"
    assert domain.choose_language(None, "ru", "kk-KZ") == "ru"
    assert domain.choose_language("en", None, "ru-RU,ru;q=0.9,en;q=0.8") == "ru"
    assert domain.choose_language(None, "de", "en-US") == "kk"


def test_a_license_covering_a_shelter_subtype_hides_every_site_address() -> None:
    shelter = [
        Subtype(form="stationary", category="elderly"),
        Subtype(form="temporary_stay", category="homeless"),
    ]
    victims = [Subtype(form="semi_stationary", category="domestic_violence")]
    home = [Subtype(form="stationary", category="elderly")]
    assert domain.is_shelter(shelter) and domain.is_shelter(victims)
    assert not domain.is_shelter(home)
    assert domain.public_address("Өскемен, Абай 1", "631010000", shelter=True) is None
    assert domain.public_address("Өскемен, Абай 1", "631010000", shelter=False) == "Өскемен, Абай 1"
    assert domain.district_of("631013100") == "631000000"


def test_the_chart_draws_each_value_with_its_number_and_a_title() -> None:
    svg = domain.bar_chart_svg(
        title="Pass <2026>",
        series=["in force", "draft"],
        bars=[domain.Bar("providers", (5, 3)), domain.Bar("places", (82, 40))],
    )
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert '<title id="chart-title">Pass &lt;2026&gt;</title>' in svg
    widths = re.findall(r'<rect x="220" y="\d+" width="(\d+)"', svg)
    # 360 px of scale for the peak (82): 5 -> 22, 3 -> 13, 82 -> 360, 40 -> 176.
    assert widths == ["22", "13", "360", "176"]


def test_money_is_shown_to_the_tiyn_with_thin_spaces() -> None:
    from decimal import Decimal

    assert domain.money(Decimal("1234567.8")) == "1\u202f234\u202f567.80"
    assert domain.money(Decimal("0")) == "0.00"


def test_both_message_files_hold_every_key_the_templates_use() -> None:
    kk, ru = pages.messages("kk"), pages.messages("ru")
    assert set(kk) == set(ru)
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r"\bt\.(\w+)", template.read_text(encoding="utf-8")))
    assert used - {"get"} <= set(kk), sorted(used - set(kk))
    assert all(kk[k] != ru[k] for k in ("site_name", "sign_in", "board_title"))


def test_the_portal_handles_exactly_the_events_its_queue_is_bound_to() -> None:
    from ssu_common.topology import CONSUMERS
    from ssu_portal.handlers import HANDLERS

    assert set(HANDLERS) == set(CONSUMERS["portal"])
