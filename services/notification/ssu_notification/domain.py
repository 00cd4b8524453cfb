"""Pure rules of notification: who is told, in which language, on which channel, and when."""

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from ssu_contracts import Addressee, iin_birth_date

# Who is told about which event (DESIGN §3 "Notification"). Enrollment notices go to the
# recipient or, in their place, the guardian: one of the two, never both.
AUDIENCES: dict[str, tuple[str, ...]] = {
    "licensing.application.submitted.v1": ("provider",),
    "licensing.application.rejected.v1": ("provider",),
    "licensing.license.issued.v1": ("provider",),
    "licensing.license.suspended.v1": ("provider", "department"),
    "licensing.license.reinstated.v1": ("provider",),
    "licensing.license.revoked.v1": ("provider", "department"),
    "registry.enrollment.started.v1": ("recipient", "guardian"),
    "registry.enrollment.disrupted.v1": ("recipient", "guardian", "department"),
    "billing.invoice.issued.v1": ("provider",),
    "billing.budget.exhausted.v1": ("department",),
}

BOTH_LANGUAGES = "kk+ru"
ALMATY = ZoneInfo("Asia/Almaty")
ADULT_AGE = 18

_MONTHS = {
    "kk": (
        "қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым",
        "шілде", "тамыз", "қыркүйек", "қазан", "қараша", "желтоқсан",
    ),
    "ru": (
        "январь", "февраль", "март", "апрель", "май", "июнь",
        "июль", "август", "сентябрь", "октябрь", "ноябрь", "декабрь",
    ),
}  # fmt: skip


def template_key(event_type: str) -> str:
    """`licensing.license.issued.v1` → `licensing.license.issued` (templates outlive versions)."""
    return event_type.rsplit(".", 1)[0]


def format_date(value: date | datetime) -> str:
    """Dates read the same in Kazakh and Russian: `05.01.2026`; instants in Almaty time."""
    if isinstance(value, datetime):
        value = value.astimezone(ALMATY).date()
    return value.strftime("%d.%m.%Y")


def format_money(amount: Decimal) -> str:
    """`1 234 567,89 ₸`: groups of three, a comma before the tiyn, the tenge sign after."""
    rounded = amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    whole, fraction = f"{abs(rounded):.2f}".split(".")
    groups: list[str] = []
    while whole:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    return f"{sign}{' '.join(groups)},{fraction} ₸"


def format_period(period: str, lang: str) -> str:
    """`2026-01` → `2026 жылғы қаңтар` / `январь 2026`."""
    year, month = period.split("-")
    name = _MONTHS[lang][int(month) - 1]
    return f"{year} жылғы {name}" if lang == "kk" else f"{name} {year}"


def is_minor(iin: str, on: date) -> bool:
    """Whether the person of an IIN is under 18 on a date."""
    born = iin_birth_date(iin)
    if born is None:
        return False
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age < ADULT_AGE


@dataclass(frozen=True)
class GuardianContact:
    name: str
    email: str | None
    phone: str | None


@dataclass(frozen=True)
class Person:
    """Whom an enrollment notice goes to, and through which contacts."""

    audience: str  # recipient | guardian
    name: str
    email: str | None
    phone: str | None
    language: str


def choose_person(
    *, iin: str, on: date, addressee: Addressee, guardian: GuardianContact | None
) -> Person:
    """The recipient, or the guardian in place of a minor (or unreachable) recipient when one
    is known."""
    language = str(addressee.language)
    if addressee.is_guardian:
        return Person("guardian", addressee.name, addressee.email, addressee.phone, language)
    unreachable = not (addressee.email or addressee.phone)
    if (
        guardian is not None
        and (guardian.email or guardian.phone)
        and (is_minor(iin, on) or unreachable)
    ):
        return Person("guardian", guardian.name, guardian.email, guardian.phone, language)
    return Person("recipient", addressee.name, addressee.email, addressee.phone, language)


def channels_of(*, email: str | None, phone: str | None, audience: str) -> list[tuple[str, str]]:
    """(channel, destination) pairs for a contact; departments are written to by email only."""
    pairs: list[tuple[str, str]] = []
    if email:
        pairs.append(("email", email))
    if phone and audience != "department":
        pairs.append(("sms", phone))
    return pairs


def retry_delay(attempt: int, *, base_seconds: float, max_seconds: float) -> timedelta:
    """Exponential back-off after the n-th failed attempt (1-based): base, 2·base, 4·base…"""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempt - 1, 0), max_seconds))


def sign(body: bytes, secret: str) -> str:
    """`X-SSU-Signature` value: `sha256=<hex HMAC-SHA256 of the body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def callback_url_problem(url: str, *, allow_loopback: bool) -> str | None:
    """Why a webhook callback URL is refused, or None when it is acceptable.

    Callbacks must be https and must not point into our own networks (a subscriber must not
    make the suite call its internal services); the development setting `allow_loopback`
    allows http and https to loopback and private addresses.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    if not parts.hostname:
        return "must be an absolute URL with a host"
    local = _is_loopback(parts.hostname) or is_private_address(parts.hostname)
    if parts.scheme == "https":
        if local and not allow_loopback:
            return "must not point at a loopback or private address"
        return None
    if parts.scheme == "http" and allow_loopback and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http" and allow_loopback:
        return "must use https (http is allowed for loopback addresses only)"
    return "must use https"


def is_private_address(host: str) -> bool:
    """An IP address that is not on the public internet (private, loopback, link-local…)."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
