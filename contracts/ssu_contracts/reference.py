"""Bilingual reference data: regions and the names of the shared vocabulary."""

import csv
import io
from importlib.resources import files
from typing import NamedTuple

from ssu_contracts.enums import (
    EnrollmentStatus,
    Language,
    LegalForm,
    LicenseStatus,
    RecipientCategory,
    ServiceForm,
)


class BilingualName(NamedTuple):
    name_kk: str
    name_ru: str


RegionName = BilingualName


def _load_regions() -> dict[str, RegionName]:
    text = files("ssu_contracts").joinpath("data/regions.csv").read_text(encoding="utf-8")
    return {
        row["kato"]: RegionName(name_kk=row["name_kk"], name_ru=row["name_ru"])
        for row in csv.DictReader(io.StringIO(text))
    }


REGIONS: dict[str, RegionName] = _load_regions()

SERVICE_FORM_NAMES: dict[ServiceForm, BilingualName] = {
    ServiceForm.STATIONARY: BilingualName("стационарлық нысан", "стационарная форма"),
    ServiceForm.SEMI_STATIONARY: BilingualName(
        "жартылай стационарлық нысан", "полустационарная форма"
    ),
    ServiceForm.HOME: BilingualName("үйде қызмет көрсету нысаны", "форма оказания услуг на дому"),
    ServiceForm.TEMPORARY_STAY: BilingualName("уақытша болу нысаны", "форма временного пребывания"),
}

RECIPIENT_CATEGORY_NAMES: dict[RecipientCategory, BilingualName] = {
    RecipientCategory.CHILD_DISABILITY: BilingualName(
        "мүгедектігі бар балалар", "дети с инвалидностью"
    ),
    RecipientCategory.ADULT_DISABILITY: BilingualName(
        "он сегіз жастан асқан мүгедектігі бар адамдар",
        "лица с инвалидностью старше восемнадцати лет",
    ),
    RecipientCategory.ELDERLY: BilingualName("егде жастағы адамдар", "лица пожилого возраста"),
    RecipientCategory.DOMESTIC_VIOLENCE: BilingualName(
        "тұрмыстық зорлық-зомбылықтан зардап шеккен адамдар",
        "лица, пострадавшие от бытового насилия",
    ),
    RecipientCategory.HOMELESS: BilingualName(
        "белгілі бір тұрғылықты жері жоқ адамдар", "лица без определённого места жительства"
    ),
    RecipientCategory.OTHER: BilingualName("өзге санаттағы адамдар", "иные категории лиц"),
}

LEGAL_FORM_NAMES: dict[LegalForm, BilingualName] = {
    LegalForm.STATE: BilingualName("мемлекеттік ұйым", "государственная организация"),
    LegalForm.NGO: BilingualName("үкіметтік емес ұйым", "неправительственная организация"),
    LegalForm.PRIVATE: BilingualName("жеке меншік ұйым", "частная организация"),
}

LICENSE_STATUS_NAMES: dict[LicenseStatus, BilingualName] = {
    LicenseStatus.ACTIVE: BilingualName("қолданыста", "действует"),
    LicenseStatus.SUSPENDED: BilingualName("тоқтатыла тұрды", "приостановлена"),
    LicenseStatus.REVOKED: BilingualName("кері қайтарып алынды", "отозвана"),
}

ENROLLMENT_STATUS_NAMES: dict[EnrollmentStatus, BilingualName] = {
    EnrollmentStatus.ACTIVE: BilingualName("қызмет көрсетілуде", "услуги оказываются"),
    EnrollmentStatus.DISRUPTED: BilingualName("үзілді", "прервано"),
    EnrollmentStatus.ENDED: BilingualName("аяқталды", "завершено"),
}

_NAMES: dict[str, dict[str, BilingualName]] = {
    "region": dict(REGIONS),
    "service_form": {str(k): v for k, v in SERVICE_FORM_NAMES.items()},
    "recipient_category": {str(k): v for k, v in RECIPIENT_CATEGORY_NAMES.items()},
    "legal_form": {str(k): v for k, v in LEGAL_FORM_NAMES.items()},
    "license_status": {str(k): v for k, v in LICENSE_STATUS_NAMES.items()},
    "enrollment_status": {str(k): v for k, v in ENROLLMENT_STATUS_NAMES.items()},
}
_ALIASES = {"form": "service_form", "category": "recipient_category"}

NAME_KINDS: tuple[str, ...] = tuple(_NAMES)


def name_of(kind: str, code: str, lang: str) -> str:
    """Name of a reference code in Kazakh or Russian; KeyError/ValueError when unknown."""
    table = _NAMES.get(_ALIASES.get(kind, kind))
    if table is None:
        raise KeyError(f"unknown reference kind {kind!r}; expected one of {', '.join(NAME_KINDS)}")
    names = table.get(str(code))
    if names is None:
        raise KeyError(f"unknown {kind} code {code!r}")
    language = Language(lang)
    return names.name_kk if language is Language.KK else names.name_ru
