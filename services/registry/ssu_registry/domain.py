"""Pure rules of the registry: addressees, age bands, import rows. No I/O."""

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from ssu_common.errors import Texts, kind
from ssu_contracts import (
    RESIDENTIAL_FORMS,
    Addressee,
    Language,
    RecipientCategory,
    ServiceForm,
)
from ssu_contracts.ids import iin_birth_or_problem
from ssu_contracts.reference import REGIONS

ALMATY = ZoneInfo("Asia/Almaty")
ADULT_AGE = 18
SENIOR_AGE = 65
AGE_BANDS = ("0-17", "18-64", "65+")

IMPORT_COLUMNS = (
    "iin",
    "full_name",
    "birth_date",
    "category",
    "region",
    "disability_group",
    "language",
    "guardian_name",
    "guardian_phone",
    "guardian_email",
)

_CATEGORIES = frozenset(c.value for c in RecipientCategory)
_LANGUAGES = frozenset(lang.value for lang in Language)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{6,19}$")


def today() -> date:
    """The current calendar date in Asia/Almaty, the suite's civil date."""
    return datetime.now(ALMATY).date()


def age_on(birth_date: date, on: date) -> int:
    """Completed years of age on a date."""
    years = on.year - birth_date.year
    if (on.month, on.day) < (birth_date.month, birth_date.day):
        years -= 1
    return years


def age_band(birth_date: date, on: date) -> str:
    age = age_on(birth_date, on)
    if age < ADULT_AGE:
        return AGE_BANDS[0]
    if age < SENIOR_AGE:
        return AGE_BANDS[1]
    return AGE_BANDS[2]


def has_capacity_limit(form: ServiceForm | str) -> bool:
    """Residential, day-care and temporary forms may not exceed a site's places."""
    return ServiceForm(form) in RESIDENTIAL_FORMS


@dataclass(frozen=True)
class RecipientContact:
    full_name: str
    birth_date: date
    language: str
    phone: str | None
    email: str | None
    guardian_name: str | None
    guardian_phone: str | None
    guardian_email: str | None


def addressee_for(recipient: RecipientContact, *, on: date) -> Addressee:
    """Who is told about an enrollment: the guardian for a minor (or a recipient without any
    contact of their own) when a guardian is known, otherwise the recipient."""
    has_guardian = bool(recipient.guardian_name) and bool(
        recipient.guardian_phone or recipient.guardian_email
    )
    minor = age_on(recipient.birth_date, on) < ADULT_AGE
    unreachable = not (recipient.phone or recipient.email)
    if has_guardian and (minor or unreachable):
        assert recipient.guardian_name is not None
        return Addressee(
            name=recipient.guardian_name,
            email=recipient.guardian_email,
            phone=recipient.guardian_phone,
            language=Language(recipient.language),
            is_guardian=True,
        )
    return Addressee(
        name=recipient.full_name,
        email=recipient.email,
        phone=recipient.phone,
        language=Language(recipient.language),
        is_guardian=False,
    )


def last_date_before(start_date: date, day: date) -> date:
    """Last date of service of an enrollment that stops on a day (never before its start)."""
    return max(start_date, day - timedelta(days=1))


# Bulk import


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str


ImportRecord = tuple[
    str,  # iin
    str,  # full_name
    date,  # birth_date
    str,  # category
    str,  # region
    int | None,  # disability_group
    str,  # language
    str | None,  # guardian_name
    str | None,  # guardian_phone
    str | None,  # guardian_email
    int,  # line
]


def parse_import_row(
    values: list[str],
    line: int,
    *,
    region_scope: str | None,
    on: date | None = None,
    rules: "AgeRules | None" = None,
) -> tuple[ImportRecord | None, RowError | None]:
    """One CSV row as a record ready for staging, or the first error found in it."""
    if len(values) != len(IMPORT_COLUMNS):
        return None, RowError(
            line, "row", f"expected {len(IMPORT_COLUMNS)} columns, got {len(values)}"
        )
    iin, full_name, birth, category, region, group, language, g_name, g_phone, g_email = [
        v.strip() for v in values
    ]
    birth_date = iin_birth_or_problem(iin)
    if isinstance(birth_date, str):
        return None, RowError(line, "iin", birth_date)
    if not full_name:
        return None, RowError(line, "full_name", "is required")
    if birth != birth_date.isoformat():
        try:
            date.fromisoformat(birth)
        except ValueError:
            return None, RowError(line, "birth_date", "must be a date YYYY-MM-DD")
        return None, RowError(line, "birth_date", "does not agree with the IIN")
    on = on or today()
    if birth_date > on:
        return None, RowError(line, "birth_date", f"is after today ({on.isoformat()})")
    if category not in _CATEGORIES:
        return None, RowError(line, "category", f"unknown category {category!r}")
    unfit = category_problem(
        category, iin=iin, birth_date=birth_date, on=on, rules=rules or AgeRules()
    )
    if unfit is not None:
        return None, RowError(line, "category", unfit)
    if region not in REGIONS:
        return None, RowError(line, "region", f"unknown region {region!r}")
    if region_scope is not None and region != region_scope:
        return None, RowError(line, "region", "outside the region of this API key")
    disability_group: int | None = None
    if group:
        if group not in {"1", "2", "3"}:
            return None, RowError(line, "disability_group", "must be 1, 2 or 3")
        disability_group = int(group)
    if language not in _LANGUAGES:
        return None, RowError(line, "language", "must be kk or ru")
    if g_phone and not _PHONE.match(g_phone):
        return None, RowError(line, "guardian_phone", "is not a phone number")
    if g_email and not _EMAIL.match(g_email):
        return None, RowError(line, "guardian_email", "is not an email address")
    if (g_phone or g_email) and not g_name:
        return None, RowError(line, "guardian_name", "is required with a guardian contact")
    record: ImportRecord = (
        iin,
        full_name,
        birth_date,
        category,
        region,
        disability_group,
        language,
        g_name or None,
        g_phone or None,
        g_email or None,
        line,
    )
    return record, None


# Dates and ages (Social Code: a child with a disability is under 18; elderly from pension age)


@dataclass(frozen=True)
class AgeRules:
    """Pension age by sex (the IIN's 7th digit tells it: odd male, even female)."""

    pension_age_men: int = 63
    pension_age_women: int = 61

    def pension_age(self, iin: str) -> int:
        return self.pension_age_men if int(iin[6]) % 2 == 1 else self.pension_age_women


def birth_date_problem(iin: str, birth_date: date, *, on: date) -> str | None:
    """Why a birth date cannot be a recipient's: not the IIN's, or after today."""
    encoded = iin_birth_or_problem(iin)
    if isinstance(encoded, date) and encoded != birth_date:
        return "does not agree with the IIN"
    if birth_date > on:
        return f"is after today ({on.isoformat()})"
    return None


def category_problem(
    category: str, *, iin: str, birth_date: date, on: date, rules: AgeRules
) -> str | None:
    """Why a category does not fit the recipient's age on a date, or None."""
    age = age_on(birth_date, on)
    if category == RecipientCategory.CHILD_DISABILITY and age >= ADULT_AGE:
        return f"child_disability is for recipients under {ADULT_AGE}; the recipient is {age}"
    if category == RecipientCategory.ELDERLY:
        pension_age = rules.pension_age(iin)
        if age < pension_age:
            return f"elderly is from pension age {pension_age}; the recipient is {age}"
    return None


def normalised_name(full_name: str) -> str:
    """The form a name is searched by: NFKC, case folded, single spaces, ё as е."""
    folded = unicodedata.normalize("NFKC", full_name).casefold().replace("ё", "е")
    return " ".join(folded.split())


def enrollment_start_problem(
    start_date: date, *, active_from: date | None, on: date, max_days_ahead: int
) -> str | None:
    """Why an enrollment cannot start on a date: before its license is active, or too far
    ahead of today."""
    if active_from is not None and start_date < active_from:
        return f"is before the license is active ({active_from.isoformat()})"
    latest = on + timedelta(days=max_days_ahead)
    if start_date > latest:
        return f"is more than {max_days_ahead} days ahead (latest {latest.isoformat()})"
    return None


DEREGISTRATION_REASONS = ("moved", "died", "declined")


def deregistration_date_problem(day: date, *, on: date) -> str | None:
    if day > on:
        return f"is in the future (today is {on.isoformat()})"
    return None


# Waiting list (DESIGN §3 "Waiting list")

# The criteria a waiting line is ordered by, most important first; after them, the date asked
# (then the moment, so the line is total). The setting SSU_REGISTRY_WAITING_PRIORITY names them
# in its order; a criterion left out does not count.
PRIORITY_CRITERIA = ("disrupted", "child", "group_one")


def priority_weights(order: Sequence[str]) -> dict[str, int]:
    """Each criterion's weight in the line's sort key (lower comes first): a recipient who
    lacks a criterion gets its weight, and each criterion outweighs all that follow it."""
    unknown = [c for c in order if c not in PRIORITY_CRITERIA]
    if unknown or len(set(order)) != len(order):
        raise ValueError(
            f"waiting priority {list(order)} must name each of {list(PRIORITY_CRITERIA)} "
            "at most once"
        )
    weights = dict.fromkeys(PRIORITY_CRITERIA, 0)
    for rank, criterion in enumerate(order):
        weights[criterion] = 1 << (len(order) - 1 - rank)
    return weights


def waits_for_places(form: ServiceForm | str) -> bool:
    """Only forms that take a place at a site have a waiting line; home care has no places to
    wait for and is enrolled directly."""
    return has_capacity_limit(form)


def offer_expiry(made_on: date, hold_days: int) -> date:
    """The last day an offer made on a day can be accepted."""
    return made_on + timedelta(days=hold_days)


def lapsed(expires_on: date, *, on: date) -> bool:
    return on > expires_on


# Deaths (notices of the state population register)

# The register's exchange delivers a notice as `iin,died_on,act_number` (the act number of the
# civil registry's death record, optional).
DEATH_COLUMNS = ("iin", "died_on", "act_number")
MAX_ACT_NUMBER = 64


@dataclass(frozen=True)
class DeathNotice:
    iin: str
    died_on: date
    act_number: str | None = None
    line: int = 0


def death_date_problem(iin: str, died_on: date, *, on: date) -> str | None:
    """A date of death is not in the future and not before the birth the IIN encodes."""
    if died_on > on:
        return f"is in the future (today is {on.isoformat()})"
    born = iin_birth_or_problem(iin)
    if isinstance(born, date) and died_on < born:
        return f"is before the birth date the IIN encodes ({born.isoformat()})"
    return None


def parse_death_row(
    values: list[str], line: int, *, on: date
) -> tuple[DeathNotice | None, RowError | None]:
    """One row of the register's CSV as a notice, or the first error found in it."""
    if len(values) != len(DEATH_COLUMNS):
        return None, RowError(
            line, "row", f"expected {len(DEATH_COLUMNS)} columns, got {len(values)}"
        )
    iin, died, act = (v.strip() for v in values)
    born = iin_birth_or_problem(iin)
    if isinstance(born, str):
        return None, RowError(line, "iin", born)
    try:
        died_on = date.fromisoformat(died)
    except ValueError:
        return None, RowError(line, "died_on", "must be a date YYYY-MM-DD")
    problem = death_date_problem(iin, died_on, on=on)
    if problem is not None:
        return None, RowError(line, "died_on", problem)
    if len(act) > MAX_ACT_NUMBER:
        return None, RowError(line, "act_number", f"is longer than {MAX_ACT_NUMBER} characters")
    return DeathNotice(iin, died_on, act or None, line), None


def death_verdict(
    *, status: str, deregistered_on: date | None, reason: str | None, died_on: date
) -> str | None:
    """What a notice does to a recipient: None to record it (de-register for death on the
    date), "unchanged" when nothing is left to do, otherwise why it is refused.

    Already de-registered for death on the same date, or for another reason on or before the
    date of death (no service after it to stop): unchanged. A death recorded on another date,
    or a de-registration (moved, declined) after the date of death, is not rewritten here: the
    row is refused and the region corrects it by hand."""
    if status != "deregistered":
        return None
    assert deregistered_on is not None
    if reason == "died":
        if deregistered_on == died_on:
            return "unchanged"
        return f"the death is already recorded on {deregistered_on.isoformat()}"
    if deregistered_on <= died_on:
        return "unchanged"
    return f"de-registered ({reason}) on {deregistered_on.isoformat()}, after the date of death"


# Refusals of their own kind (ssu_common.errors): a client tells them apart by `type`.
NO_FREE_PLACES = kind(
    "no-free-places",
    409,
    title=Texts("No free places", "Бос орын жоқ", "Нет свободных мест"),
    explanation=Texts(
        "Every place of the site is taken or held for someone offered it. Ask for a place in "
        "the waiting line (POST /v1/waiting): a place that frees is offered in its order.",
        "Алаңның барлық орны бос емес немесе ұсынылған адамға сақталған. Кезекке тұрыңыз "
        "(POST /v1/waiting): босаған орын кезек тәртібімен ұсынылады.",
        "Все места площадки заняты или держатся за тем, кому предложены. Встаньте в очередь "
        "(POST /v1/waiting): освободившееся место предлагается в порядке очереди.",
    ),
    disposition="retry",
)
LICENSE_NOT_ACTIVE = kind(
    "license-not-active",
    409,
    title=Texts("License not active", "Лицензия белсенді емес", "Лицензия не действует"),
    explanation=Texts(
        "The provider's license is suspended or revoked: no one is enrolled under it until it "
        "is reinstated.",
        "Жеткізушінің лицензиясы тоқтатылған немесе кері қайтарылған: ол қалпына келгенше "
        "ешкім қабылданбайды.",
        "Лицензия поставщика приостановлена или отозвана: пока она не восстановлена, никто не "
        "зачисляется.",
    ),
    disposition="retry",
)
ALREADY_WAITING = kind(
    "already-waiting",
    409,
    title=Texts("Already waiting", "Кезекте тұр", "Уже в очереди"),
    explanation=Texts(
        "The recipient already waits for a place of this form; `request_id` names the request.",
        "Алушы бұл нысан бойынша орын күтіп тұр; `request_id` өтінішті атайды.",
        "Получатель уже ждёт места этой формы; `request_id` называет заявку.",
    ),
)
OFFER_CLOSED = kind(
    "offer-closed",
    409,
    title=Texts("Offer no longer open", "Ұсыныс жабық", "Предложение закрыто"),
    explanation=Texts(
        "The offer was accepted, declined, withdrawn or its hold ended; the recipient keeps "
        "their place in line and is offered the next place that fits.",
        "Ұсыныс қабылданған, одан бас тартылған, кері алынған немесе мерзімі өткен; алушы "
        "кезектегі орнын сақтайды.",
        "Предложение принято, отклонено, отозвано или его срок истёк; получатель сохраняет "
        "место в очереди.",
    ),
)
NO_LINE_FOR_FORM = kind(
    "no-waiting-line",
    422,
    title=Texts(
        "No waiting line for this form", "Бұл нысанға кезек жоқ", "Для этой формы нет очереди"
    ),
    explanation=Texts(
        "Home care takes no place at a site: the recipient is enrolled directly.",
        "Үйдегі күтім алаңда орын алмайды: алушы тікелей қабылданады.",
        "Уход на дому не занимает места на площадке: получатель зачисляется напрямую.",
    ),
)
