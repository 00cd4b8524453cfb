"""One domain-error vocabulary for every service (issue 14).

Each kind of refusal has a stable problem type, `/problems/<slug>`, which every service serves
as a short page explaining it in Kazakh and Russian (and English); an HTTP status; and what a
consumer does with an event it refuses: dead-letter it at once (a rule that will answer the
same tomorrow) or retry it (a state that may change). `service.py` and `domain.py` raise a
`DomainError` of a kind; the HTTP kit answers it once (problems.py, `detail` in kk, ru or en by
`Accept-Language`) and the consumer disposes of it once (consumer.py).

A refusal without a kind of its own (a `Problem`) still gets a type: the general kind of its
status (`/problems/not-found`, `/problems/conflict`, ...), never `about:blank`.
"""

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ssu_common.jsontypes import Json

Language = Literal["kk", "ru", "en"]
Disposition = Literal["dead_letter", "retry"]
LANGUAGES: tuple[Language, ...] = ("kk", "ru", "en")


@dataclass(frozen=True)
class Texts:
    """One text in the three languages an answer may be read in."""

    en: str
    kk: str
    ru: str

    def pick(self, language: Language) -> str:
        text: str = getattr(self, language)
        return text


@dataclass(frozen=True)
class ProblemKind:
    slug: str
    status: int
    title: Texts
    explanation: Texts
    disposition: Disposition = "dead_letter"
    examples: tuple[str, ...] = field(default_factory=tuple)

    @property
    def type(self) -> str:
        return f"/problems/{self.slug}"


KINDS: dict[str, ProblemKind] = {}


def kind(
    slug: str,
    status: int,
    *,
    title: Texts,
    explanation: Texts,
    disposition: Disposition = "dead_letter",
) -> ProblemKind:
    """Register a kind of refusal; a slug is stable once published (clients match on it)."""
    if slug in KINDS:
        raise ValueError(f"problem kind {slug!r} is registered twice")
    made = ProblemKind(slug, status, title, explanation, disposition)
    KINDS[slug] = made
    return made


# The general kinds, one per status a refusal may have.
GENERAL: dict[int, ProblemKind] = {
    400: kind(
        "bad-request",
        400,
        title=Texts("Bad request", "Қате сұрау", "Неверный запрос"),
        explanation=Texts(
            "The request could not be read.",
            "Сұрауды оқу мүмкін болмады.",
            "Запрос не удалось прочитать.",
        ),
    ),
    401: kind(
        "unauthorized",
        401,
        title=Texts("API key required", "Кілт қажет", "Нужен ключ доступа"),
        explanation=Texts(
            "Send the API key of your system: Authorization: Bearer <key>.",
            "Жүйеңіздің кілтін жіберіңіз: Authorization: Bearer <кілт>.",
            "Передайте ключ вашей системы: Authorization: Bearer <ключ>.",
        ),
    ),
    403: kind(
        "forbidden",
        403,
        title=Texts("Not allowed", "Рұқсат жоқ", "Нет доступа"),
        explanation=Texts(
            "The key is known but its scopes or region do not allow this.",
            "Кілт белгілі, бірақ оның құқықтары немесе өңірі бұған рұқсат бермейді.",
            "Ключ известен, но его права или регион этого не позволяют.",
        ),
    ),
    404: kind(
        "not-found",
        404,
        title=Texts("Not found", "Табылмады", "Не найдено"),
        explanation=Texts(
            "Nothing of that kind exists that the key may see.",
            "Кілт көре алатын мұндай нәрсе жоқ.",
            "Такого нет среди того, что может видеть ключ.",
        ),
    ),
    409: kind(
        "conflict",
        409,
        title=Texts(
            "Conflicts with the current state",
            "Ағымдағы күйге қайшы",
            "Противоречит текущему состоянию",
        ),
        explanation=Texts(
            "The request is sound but the resource's state does not allow it now; read it and "
            "decide again.",
            "Сұрау дұрыс, бірақ ресурстың қазіргі күйі оған жол бермейді; оны қайта оқып, "
            "қайта шешіңіз.",
            "Запрос верен, но текущее состояние ресурса его не допускает; прочитайте его и "
            "решите снова.",
        ),
        disposition="retry",
    ),
    412: kind(
        "precondition-failed",
        412,
        title=Texts("Changed since read", "Оқылғаннан кейін өзгерді", "Изменилось после чтения"),
        explanation=Texts(
            "If-Match named a version that is no longer current.",
            "If-Match көрсеткен нұсқа енді ағымдағы емес.",
            "If-Match назвал версию, которая уже не текущая.",
        ),
    ),
    413: kind(
        "too-large",
        413,
        title=Texts("Too large", "Тым үлкен", "Слишком большой"),
        explanation=Texts(
            "The request body is over the service's limit.",
            "Сұрау денесі шектен асады.",
            "Тело запроса больше допустимого.",
        ),
    ),
    415: kind(
        "unsupported-media-type",
        415,
        title=Texts("Unsupported media type", "Қолдау жоқ түр", "Неподдерживаемый тип"),
        explanation=Texts(
            "Send the body in the media type the operation documents.",
            "Денені операция көрсеткен түрде жіберіңіз.",
            "Передайте тело в типе, который указан для операции.",
        ),
    ),
    422: kind(
        "invalid-input",
        422,
        title=Texts("Invalid input", "Жарамсыз дерек", "Неверные данные"),
        explanation=Texts(
            "A field breaks a rule; `errors` names each field and what is wrong.",
            "Өріс ережені бұзады; `errors` әр өрісті және қатені атайды.",
            "Поле нарушает правило; `errors` называет каждое поле и ошибку.",
        ),
    ),
    429: kind(
        "too-many-requests",
        429,
        title=Texts("Too many requests", "Сұрау тым көп", "Слишком много запросов"),
        explanation=Texts(
            "Slow down; Retry-After says when to try again.",
            "Баяулаңыз; Retry-After қашан қайталау керегін айтады.",
            "Снизьте частоту; Retry-After говорит, когда повторить.",
        ),
        disposition="retry",
    ),
    500: kind(
        "internal",
        500,
        title=Texts("Unexpected error", "Күтпеген қате", "Непредвиденная ошибка"),
        explanation=Texts(
            "Something failed on our side; it is logged with the correlation id.",
            "Біз жақта бірдеңе істен шықты; ол корреляция идентификаторымен жазылды.",
            "Сбой на нашей стороне; он записан с идентификатором корреляции.",
        ),
        disposition="retry",
    ),
    503: kind(
        "unavailable",
        503,
        title=Texts("Unavailable", "Қолжетімсіз", "Недоступно"),
        explanation=Texts(
            "A part the service needs is away; try again shortly.",
            "Қызметке қажет бөлік қолжетімсіз; сәлден соң қайталаңыз.",
            "Недоступна нужная сервису часть; повторите позже.",
        ),
        disposition="retry",
    ),
}


def general(status: int) -> ProblemKind:
    """The general kind of a status (one of its class for a status without its own)."""
    return GENERAL.get(status) or GENERAL[500 if status >= 500 else 400 if status < 422 else 422]


class DomainError(Exception):
    """A refusal of a domain rule, of a registered kind (the class's `KIND`, or `kind=`).
    `detail` is a `Texts` (kk, ru, en) or plain English; `field` names the field at fault;
    other keywords become members of the problem body (a client may act on them:
    `free_places`, `current_status`)."""

    KIND: ClassVar[ProblemKind | None] = None

    def __init__(
        self,
        detail: Texts | str,
        *,
        field: str | None = None,
        kind: ProblemKind | None = None,
        **extra: Json,
    ) -> None:
        self.texts = detail if isinstance(detail, Texts) else Texts(detail, detail, detail)
        super().__init__(self.texts.en)
        self.kind: ProblemKind = kind or self.KIND or GENERAL[422]
        self.detail = self.texts.en
        self.field = field
        self.extra: dict[str, Json] = extra

    @property
    def status(self) -> int:
        return self.kind.status

    @property
    def disposition(self) -> Disposition:
        return self.kind.disposition


def language_of(accept_language: str | None) -> Language:
    """The first of kk, ru, en that `Accept-Language` asks for (by weight); English when it
    names none of them (the language of integrating systems)."""
    if not accept_language:
        return "en"
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        weighted.append((-weight, position, tag.strip().lower().split("-")[0]))
    for _, _, tag in sorted(weighted):
        if tag in LANGUAGES:
            language: Language = tag  # type: ignore[assignment]
            return language
    return "en"
