"""Pure rules of notification: who is told, in which language, on which channel, and when."""

import base64
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import standardwebhooks
from ssu_common.errors import Texts, kind
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
    "registry.enrollment.unplaced.v1": ("recipient", "guardian", "department"),
    "registry.enrollment.resumed.v1": ("recipient", "guardian"),
    # The waiting list and its offers: the department follows each step (for an offer, whom
    # to call if the family does not answer).
    "registry.waiting.joined.v1": ("recipient", "guardian", "department"),
    "registry.offer.made.v1": ("recipient", "guardian", "department"),
    "registry.offer.accepted.v1": ("recipient", "guardian", "department"),
    "registry.offer.lapsed.v1": ("recipient", "guardian", "department"),
    "billing.invoice.issued.v1": ("provider",),
    "billing.budget.exhausted.v1": ("department",),
    # A closed month's attendance to confirm: the recipient, or the guardian in their place,
    # reached through the contact book (billing knows no contacts).
    "billing.confirmation.requested.v1": ("recipient", "guardian"),
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


# A shelter's address is never public (DESIGN §6): it goes to the person placed there, and to
# no one else notification writes to (departments' mailboxes are shared).
SHELTER_FORMS = frozenset({"temporary_stay"})
SHELTER_CATEGORIES = frozenset({"domestic_violence"})


def is_shelter(form: str, category: str) -> bool:
    """Whether a place of this form and category is a shelter."""
    return str(form) in SHELTER_FORMS or str(category) in SHELTER_CATEGORIES


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


# Event types whose data names a person (IIN, name, contacts): a subscription to them is
# limited to the subscribing key's region, and needs `registry:read` besides
# `notification:admin` (a webhook must not read more than the key could over HTTP).
PERSONAL_EVENT_TYPES = frozenset(
    {
        "registry.recipient.registered.v1",
        "registry.recipient.updated.v1",
        "registry.recipient.deregistered.v1",
        "registry.enrollment.started.v1",
        "registry.enrollment.ended.v1",
        "registry.enrollment.disrupted.v1",
        "registry.enrollment.resumed.v1",
        "registry.enrollment.unplaced.v1",
        "registry.waiting.joined.v1",
        "registry.offer.made.v1",
        "registry.offer.accepted.v1",
        "registry.offer.lapsed.v1",
        "billing.confirmation.requested.v1",
    }
)
# Event types that carry a person's single-use answer (a link's token, a code): delivered to
# that person only, never offered to a webhook subscription.
SECRET_EVENT_TYPES = frozenset({"billing.confirmation.requested.v1"})
WEBHOOK_SECRET_PREFIX = "whsec_"
WEBHOOK_SECRET_BYTES = 32


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and 32 random bytes in base64."""
    return (
        WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(WEBHOOK_SECRET_BYTES)).decode()
    )


_NOT_A_WEBHOOK_SECRET = Texts(
    "must be a Standard Webhooks secret: whsec_ and base64",
    "Standard Webhooks құпиясы болуы керек: whsec_ және base64",
    "должен быть секретом Standard Webhooks: whsec_ и base64",
)


def webhook_secret_problem(secret: str) -> Texts | None:
    """Why a secret given by a subscriber is refused (Standard Webhooks form), or None."""
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        return _NOT_A_WEBHOOK_SECRET
    try:
        raw = base64.b64decode(secret[len(WEBHOOK_SECRET_PREFIX) :], validate=True)
    except ValueError:
        return _NOT_A_WEBHOOK_SECRET
    if len(raw) < 24:
        return Texts(
            "must hold at least 24 random bytes",
            "кемінде 24 кездейсоқ байттан тұруы керек",
            "должен содержать не менее 24 случайных байт",
        )
    return None


def webhook_headers(
    *, message_id: str, body: bytes, secrets_: list[str], at: datetime
) -> dict[str, str]:
    """Standard Webhooks headers: `webhook-signature` holds one `v1,<base64 HMAC-SHA256 of
    id.timestamp.body>` per active secret (two during a rotation), space-separated."""
    text = body.decode("utf-8")
    signatures = [
        standardwebhooks.Webhook(secret).sign(message_id, at, text) for secret in secrets_
    ]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def callback_url_problem(url: str, *, allow_loopback: bool) -> Texts | None:
    """Why a webhook callback URL is refused, or None when it is acceptable.

    Callbacks must be https and must not point into our own networks (a subscriber must not
    make the suite call its internal services); the development setting `allow_loopback`
    allows http and https to loopback, and nothing else of the special-purpose ranges.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return Texts("is not a URL", "URL емес", "не является URL")
    if not parts.hostname:
        return Texts(
            "must be an absolute URL with a host",
            "хосты бар толық URL болуы керек",
            "должен быть абсолютным URL с хостом",
        )
    loopback = _is_loopback(parts.hostname)
    if parts.scheme == "https":
        if (loopback and not allow_loopback) or (
            not loopback and is_special_purpose(parts.hostname)
        ):
            return Texts(
                "must not point at a loopback, private or special-purpose address",
                "loopback, жеке немесе арнайы мақсаттағы мекенжайға нұсқамауы керек",
                "не должен указывать на loopback-, частный или специальный адрес",
            )
        return None
    if parts.scheme == "http" and allow_loopback and _is_loopback(parts.hostname):
        return None
    if parts.scheme == "http" and allow_loopback:
        return Texts(
            "must use https (http is allowed for loopback addresses only)",
            "https қолдануы керек (http тек loopback мекенжайларына рұқсат етілген)",
            "должен использовать https (http допустим только для loopback-адресов)",
        )
    return Texts("must use https", "https қолдануы керек", "должен использовать https")


# IANA special-purpose address registries (IPv4 and IPv6): none of these is a subscriber's
# public server. `ipaddress.is_global` covers most; the list makes the rule explicit and
# catches what it lets through (shared address space, 6to4, NAT64, Teredo, mapped addresses).
SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24",
        "192.52.193.0/24", "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
        "2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip


def is_special_purpose(host: str) -> bool:
    """An IP address in any special-purpose range (private, shared, loopback, link-local,
    documentation, mapped, multicast…): never a webhook destination. Not an IP: False."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return True
    return not ip.is_global or any(ip in net for net in SPECIAL_PURPOSE)


def refused_destination(ip: str, *, allow_loopback: bool) -> bool:
    """Whether a resolved callback address may not be connected to."""
    if allow_loopback and _is_loopback(ip):
        return False
    return is_special_purpose(ip)


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


# Refusals of their own kind (ssu_common.errors): a client tells them apart by `type`.
CALLBACK_URL_REFUSED = kind(
    "callback-url-refused",
    422,
    title=Texts(
        "Callback URL refused", "Кері шақыру URL-і қабылданбады", "URL обратного вызова отклонён"
    ),
    explanation=Texts(
        "A webhook is delivered to an https URL of a public server only: never to a loopback, "
        "private or special-purpose address, which would make the suite call internal networks.",
        "Вебхук тек ашық сервердің https URL-іне жеткізіледі: loopback, жеке немесе арнайы "
        "мақсаттағы мекенжайға ешқашан, әйтпесе жүйе ішкі желілерге жүгінер еді.",
        "Вебхук доставляется только на https-URL публичного сервера: никогда на loopback-, "
        "частный или специальный адрес, иначе система обращалась бы во внутренние сети.",
    ),
)
EVENT_NOT_FOR_WEBHOOKS = kind(
    "event-not-for-webhooks",
    422,
    title=Texts(
        "Event not offered to webhooks",
        "Оқиға вебхуктарға берілмейді",
        "Событие не передаётся вебхукам",
    ),
    explanation=Texts(
        "The event carries a person's single-use code (a confirmation link's token): it is "
        "delivered to that person only, never to a subscription.",
        "Оқиға адамның бір реттік кодын (растау сілтемесінің токенін) тасиды: ол тек сол "
        "адамға жеткізіледі, жазылымға ешқашан.",
        "Событие несёт одноразовый код человека (токен ссылки подтверждения): оно доставляется "
        "только этому человеку, никогда подписке.",
    ),
)
PERSONAL_EVENTS_NEED_REGISTRY_READ = kind(
    "personal-events-need-registry-read",
    403,
    title=Texts(
        "Personal data needs registry:read",
        "Жеке деректерге registry:read қажет",
        "Для персональных данных нужен registry:read",
    ),
    explanation=Texts(
        "The event names a person (IIN, name, contacts). A webhook may not read more than its "
        "key could over HTTP: the key needs registry:read besides notification:admin.",
        "Оқиға адамды атайды (ЖСН, аты, байланыстары). Вебхук кілт HTTP арқылы оқи алатыннан "
        "артық оқымауы керек: кілтке notification:admin-нен бөлек registry:read қажет.",
        "Событие называет человека (ИИН, имя, контакты). Вебхук не может читать больше, чем "
        "ключ мог бы по HTTP: ключу нужен registry:read помимо notification:admin.",
    ),
)
WEBHOOK_SECRET_REFUSED = kind(
    "webhook-secret-refused",
    422,
    title=Texts("Webhook secret refused", "Вебхук құпиясы қабылданбады", "Секрет вебхука отклонён"),
    explanation=Texts(
        "A secret given by the subscriber is a Standard Webhooks secret: `whsec_` and the "
        "base64 of at least 24 random bytes. Leave it out to have one generated.",
        "Жазылушы берген құпия Standard Webhooks құпиясы болуы керек: `whsec_` және кемінде 24 "
        "кездейсоқ байттың base64-і. Оны көрсетпесеңіз, құпия жасалады.",
        "Секрет подписчика должен быть секретом Standard Webhooks: `whsec_` и base64 не менее "
        "24 случайных байт. Не передавайте его, чтобы он был создан.",
    ),
)
