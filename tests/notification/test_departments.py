"""The regional departments file: every region, bilingual names, an email each."""

from pathlib import Path

import pytest
from harness import ROOT
from ssu_contracts import REGIONS
from ssu_notification.departments import load_departments


def test_the_departments_file_covers_all_twenty_regions() -> None:
    book = load_departments(ROOT / "deploy" / "departments.yaml")
    assert set(book) == set(REGIONS) and len(book) == 20
    east = book["630000000"]
    assert east.email == "social.east-kazakhstan@example.gov.kz"
    assert east.name_kk.startswith("Шығыс Қазақстан облысының")
    assert east.name_ru.endswith("(Восточно-Казахстанская область)")
    assert all(d.email and d.name_kk and d.name_ru for d in book.values())


def test_an_unknown_region_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "departments.yaml"
    path.write_text(
        'departments:\n  - {region: "640000000", name_kk: a, name_ru: b, email: c@d.kz}\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="unknown region '640000000'"):
        load_departments(path)
