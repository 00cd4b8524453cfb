"""The regional departments file (`SSU_DEPARTMENTS_FILE`): who is told for each region."""

from dataclasses import dataclass
from pathlib import Path

import yaml
from ssu_contracts import REGIONS


@dataclass(frozen=True)
class Department:
    region: str
    name_kk: str
    name_ru: str
    email: str
    phone: str | None = None


def load_departments(path: Path) -> dict[str, Department]:
    """Departments by region code; ValueError when a region is unknown or an email missing."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    book: dict[str, Department] = {}
    for entry in doc.get("departments", []):
        region = str(entry["region"])
        if region not in REGIONS:
            raise ValueError(f"{path}: unknown region {region!r}")
        if not entry.get("email"):
            raise ValueError(f"{path}: department of {region} has no email")
        book[region] = Department(
            region=region,
            name_kk=str(entry["name_kk"]),
            name_ru=str(entry["name_ru"]),
            email=str(entry["email"]),
            phone=str(entry["phone"]) if entry.get("phone") else None,
        )
    return book
