"""Pure licensing rules: requirement sets, findings, license numbers, transitions, commands."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Protocol, TypedDict

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from ssu_common.errors import ProblemKind, Texts, kind
from ssu_contracts import (
    REGIONS,
    RESIDENTIAL_FORMS,
    ApplicationStatus,
    Bin,
    Finding,
    Kato,
    Language,
    LegalForm,
    LicenseEvent,
    LicenseReinstatedV1,
    LicenseRevokedV1,
    LicenseStatus,
    LicenseSuspendedV1,
    RecipientCategory,
    RegionCode,
    ServiceForm,
    name_of,
    region_of,
)

# Staff roles an application may declare (codes of the staffing table), kk/ru names.
ROLES: dict[str, tuple[str, str]] = {
    "director": ("директор", "директор"),
    "social_worker": ("әлеуметтік қызметкер", "социальный работник"),
    "social_work_specialist": (
        "әлеуметтік жұмыс жөніндегі маман",
        "специалист по социальной работе",
    ),
    "caregiver": ("күтуші", "сиделка (ассистент по уходу)"),
    "nurse": ("мейірбике", "медицинская сестра"),
    "doctor": ("дәрігер", "врач"),
    "psychologist": ("психолог", "психолог"),
    "speech_therapist": ("логопед", "логопед"),
    "special_educator": ("дефектолог", "дефектолог"),
    "rehabilitation_specialist": ("оңалту маманы", "специалист по реабилитации"),
    "physiotherapist": ("емдік дене шынықтыру нұсқаушысы", "инструктор ЛФК"),
    "lawyer": ("заңгер", "юрист"),
    "accountant": ("бухгалтер", "бухгалтер"),
    "cook": ("аспаз", "повар"),
    "laundry_worker": ("кір жуушы", "работник прачечной"),
    "janitor": ("аула сыпырушы", "дворник"),
    "gardener": ("бағбан", "садовник"),
    "tractor_driver": ("тракторшы", "тракторист"),
    "bread_cutter": ("нан кесуші", "хлеборез"),
    "driver": ("жүргізуші", "водитель"),
    "security_guard": ("күзетші", "сторож"),
}

# Equipment an application may declare, kk/ru names.
EQUIPMENT: dict[str, tuple[str, str]] = {
    "first_aid_kit": ("алғашқы көмек дәрі қобдишасы", "аптечка первой помощи"),
    "fire_alarm": ("өрт дабылы", "пожарная сигнализация"),
    "wheelchair_ramp": ("пандус", "пандус"),
    "handrails": ("тұтқалар", "поручни"),
    "adapted_bathroom": ("бейімделген санитарлық бөлме", "адаптированный санузел"),
    "patient_lift": ("науқасты көтергіш", "подъёмник для маломобильных"),
    "functional_beds": ("функционалды төсектер", "функциональные кровати"),
    "medical_room": ("медициналық кабинет", "медицинский кабинет"),
    "rehabilitation_equipment": ("оңалту жабдығы", "реабилитационное оборудование"),
    "sensory_room": ("сенсорлық бөлме", "сенсорная комната"),
    "kitchen": ("ас блогы", "пищеблок"),
    "laundry": ("кір жуу орны", "прачечная"),
    "video_surveillance": ("бейнебақылау", "видеонаблюдение"),
    "emergency_button": ("дабыл түймесі", "тревожная кнопка"),
    "vehicle": ("көлік", "транспортное средство"),
}


def _known_role(value: str) -> str:
    if value not in ROLES:
        raise ValueError(f"unknown staff role {value!r}; known roles: {', '.join(sorted(ROLES))}")
    return value


def _known_equipment(value: str) -> str:
    if value not in EQUIPMENT:
        raise ValueError(
            f"unknown equipment code {value!r}; known codes: {', '.join(sorted(EQUIPMENT))}"
        )
    return value


RoleCode = Annotated[str, AfterValidator(_known_role)]
EquipmentCode = Annotated[str, AfterValidator(_known_equipment)]


RequirementKind = Literal[
    "staff_ratio", "equipment", "area_per_place", "step_free_access", "certified_share"
]
TWO = Decimal("0.01")
HUNDRED = Decimal(100)


class _RequirementBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    title_kk: str = Field(min_length=1)
    title_ru: str = Field(min_length=1)
    core: bool
    # Empty: every form / every category.
    forms: list[ServiceForm] = Field(default_factory=list)
    categories: list[RecipientCategory] = Field(default_factory=list)

    def applies_to(self, subtypes: Iterable[tuple[ServiceForm, RecipientCategory]]) -> bool:
        return any(
            (not self.forms or form in self.forms)
            and (not self.categories or category in self.categories)
            for form, category in subtypes
        )


class StaffRatio(_RequirementBase):
    """At least `fte` of a role per `per_places` places, per site, or once."""

    kind: Literal["staff_ratio"]
    role: RoleCode
    fte: Decimal = Field(gt=0, max_digits=6, decimal_places=2)
    per_places: int | None = Field(default=None, ge=1)
    per_site: bool = False


class EquipmentPresent(_RequirementBase):
    kind: Literal["equipment"]
    code: EquipmentCode


class AreaPerPlace(_RequirementBase):
    kind: Literal["area_per_place"]
    m2_per_place: Decimal = Field(gt=0, max_digits=6, decimal_places=2)


class StepFreeAccess(_RequirementBase):
    kind: Literal["step_free_access"]


class CertifiedShare(_RequirementBase):
    """At least `min_share_percent` % of the declared FTE of a role held by workers whose
    professional certificate is valid on the decision date (issued on or before it, expiring
    on or after it). A provider without any FTE of the role meets it: whether the role must be
    staffed at all is a `staff_ratio` requirement's question, not this one's."""

    kind: Literal["certified_share"]
    role: RoleCode
    min_share_percent: Decimal = Field(gt=0, le=100, max_digits=5, decimal_places=2)


Requirement = Annotated[
    StaffRatio | EquipmentPresent | AreaPerPlace | StepFreeAccess | CertifiedShare,
    Field(discriminator="kind"),
]


class RequirementSet(BaseModel):
    """A versioned set of requirements and its policy for non-core requirements."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
    title: str = Field(min_length=1, max_length=300)
    non_core_blocking: bool
    requirements: list[Requirement] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "RequirementSet":
        seen: set[str] = set()
        for requirement in self.requirements:
            if requirement.id in seen:
                raise ValueError(f"requirement id {requirement.id!r} appears twice")
            seen.add(requirement.id)
        return self

    def blocks(self, requirement: _RequirementBase) -> bool:
        return requirement.core or self.non_core_blocking


@dataclass(frozen=True)
class Worker:
    """A named worker as evaluation reads them: the role, the FTE and the certificate's dates
    (the name and the certificate's number stay out of evaluation)."""

    role: str
    fte: Decimal
    certified_from: date | None = None
    certified_until: date | None = None

    def certified_on(self, on: date) -> bool:
        """Whether the worker's certificate is valid on a date (both ends included)."""
        if self.certified_from is None or self.certified_until is None:
            return False
        return self.certified_from <= on <= self.certified_until


@dataclass(frozen=True)
class Profile:
    """What an application (or a license) declares, as evaluation reads it."""

    subtypes: Sequence[tuple[ServiceForm, RecipientCategory]]
    site_places: Sequence[int | None]
    staffing: dict[str, Decimal]
    equipment: frozenset[str]
    area_m2: Decimal
    step_free_access: bool
    workers: Sequence[Worker] = ()

    @property
    def places(self) -> int:
        return sum(p or 0 for p in self.site_places)


@dataclass(frozen=True)
class Observation:
    """An inspector's finding on one requirement, overriding the declared values."""

    met: bool
    actual: str


def _fmt(value: Decimal) -> str:
    return str(value.quantize(TWO))


def _staff_expected(req: StaffRatio, profile: Profile) -> Decimal:
    units = 1
    if req.per_places is not None:
        units = math.ceil(profile.places / req.per_places)
    if req.per_site:
        units *= len(profile.site_places)
    return req.fte * units


def _certified_share(req: CertifiedShare, profile: Profile, on: date) -> tuple[bool, str, str]:
    expected = f"{req.role} certified >= {_fmt(req.min_share_percent)} % of FTE"
    declared = profile.staffing.get(req.role, Decimal(0))
    if declared <= 0:
        return True, expected, f"no {req.role} staff"
    certified = sum(
        (w.fte for w in profile.workers if w.role == req.role and w.certified_on(on)), Decimal(0)
    )
    # Compared exactly (certified / declared >= min / 100); rounded only for the text.
    met = certified * HUNDRED >= req.min_share_percent * declared
    share = certified * HUNDRED / declared
    return (
        met,
        expected,
        f"{req.role} certified {_fmt(share)} % ({_fmt(certified)} of {_fmt(declared)} FTE)",
    )


def evaluate_one(req: _RequirementBase, profile: Profile, on: date) -> tuple[bool, str, str]:
    """Whether one requirement is met on a date, with the expected and actual values as text."""
    if isinstance(req, CertifiedShare):
        return _certified_share(req, profile, on)
    if isinstance(req, StaffRatio):
        expected = _staff_expected(req, profile)
        actual = profile.staffing.get(req.role, Decimal(0))
        return (
            actual >= expected,
            f"{req.role} >= {_fmt(expected)} FTE",
            f"{req.role} {_fmt(actual)} FTE",
        )
    if isinstance(req, EquipmentPresent):
        present = req.code in profile.equipment
        return present, f"{req.code} present", "present" if present else "absent"
    if isinstance(req, AreaPerPlace):
        needed = req.m2_per_place * profile.places
        return (
            profile.area_m2 >= needed,
            f">= {_fmt(needed)} m2 ({_fmt(req.m2_per_place)} m2 x {profile.places} places)",
            f"{_fmt(profile.area_m2)} m2",
        )
    if isinstance(req, StepFreeAccess):
        return profile.step_free_access, "yes", "yes" if profile.step_free_access else "no"
    raise TypeError(f"unknown requirement kind {type(req).__name__}")


def evaluate(
    requirement_set: RequirementSet,
    profile: Profile,
    observations: dict[str, Observation] | None = None,
    *,
    on: date,
) -> list[Finding]:
    """A finding per requirement that applies to the profile's subtypes, on the decision date
    `on` (a certificate counts when it is valid on that date)."""
    findings = []
    for req in requirement_set.requirements:
        if not req.applies_to(profile.subtypes):
            continue
        met, expected, actual = evaluate_one(req, profile, on)
        observed = (observations or {}).get(req.id)
        if observed is not None:
            met, actual = observed.met, observed.actual
        findings.append(
            Finding(
                requirement_id=req.id,
                kind=req.kind,
                core=req.core,
                blocking=requirement_set.blocks(req),
                met=met,
                expected=expected,
                actual=actual,
                title_kk=req.title_kk,
                title_ru=req.title_ru,
            )
        )
    return findings


def unmet_blocking(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocking and not f.met]


def unmet(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if not f.met]


def passes(findings: Iterable[Finding]) -> bool:
    return not unmet_blocking(findings)


def places_required(forms: Iterable[ServiceForm]) -> bool:
    """Sites must state places when any requested form is residential, day care or temporary."""
    return any(form in RESIDENTIAL_FORMS for form in forms)


def license_number(*, region: str, year: int, sequence: int) -> str:
    """`SSU-<region two digits>-<year>-<6-digit sequence>`."""
    if not 1 <= sequence <= 999_999:
        raise ValueError(f"license sequence {sequence} is outside 1..999999")
    return f"SSU-{region[:2]}-{year:04d}-{sequence:06d}"


Action = Literal["suspend", "reinstate", "revoke", "add_site", "amend_staffing"]
StatusAction = Literal["suspend", "reinstate", "revoke"]


# Refusals (ssu_common.errors): each a stable problem type, `/problems/<slug>`, explained in kk
# and ru. Slugs are unique in the suite, so the generic ones carry the service's words.

LICENSE_NOT_SUSPENDABLE = kind(
    "license-not-suspendable",
    409,
    title=Texts(
        "License cannot be suspended",
        "Лицензияны тоқтата тұруға болмайды",
        "Лицензию нельзя приостановить",
    ),
    explanation=Texts(
        "Only an active license is suspended; `current_status` says what it is now.",
        "Тек қолданыстағы лицензия тоқтатыла тұрады; `current_status` оның қазіргі күйін айтады.",
        "Приостановить можно только действующую лицензию; `current_status` называет её статус.",
    ),
)
LICENSE_NOT_REINSTATABLE = kind(
    "license-not-reinstatable",
    409,
    title=Texts(
        "License cannot be reinstated",
        "Лицензияны қалпына келтіруге болмайды",
        "Лицензию нельзя восстановить",
    ),
    explanation=Texts(
        "Only a suspended license is reinstated; a revoked one never is. `current_status` says "
        "what it is now.",
        "Тек тоқтатыла тұрған лицензия қалпына келтіріледі; кері қайтарып алынғаны ешқашан "
        "келтірілмейді. `current_status` оның қазіргі күйін айтады.",
        "Восстановить можно только приостановленную лицензию; отозванную — никогда. "
        "`current_status` называет её статус.",
    ),
)
LICENSE_NOT_REVOCABLE = kind(
    "license-not-revocable",
    409,
    title=Texts(
        "License cannot be revoked",
        "Лицензияны кері қайтарып алуға болмайды",
        "Лицензию нельзя отозвать",
    ),
    explanation=Texts(
        "The license is revoked already: revocation is final.",
        "Лицензия кері қайтарып алынған: бұл шешім түпкілікті.",
        "Лицензия уже отозвана: отзыв окончателен.",
    ),
)
LICENSE_NOT_AMENDABLE = kind(
    "license-not-amendable",
    409,
    title=Texts(
        "License cannot be amended",
        "Лицензияны өзгертуге болмайды",
        "Лицензию нельзя изменить",
    ),
    explanation=Texts(
        "A revoked license takes no new site and no new staffing.",
        "Кері қайтарып алынған лицензияға жаңа алаң да, жаңа штат та қосылмайды.",
        "К отозванной лицензии не добавляются ни площадки, ни штат.",
    ),
)
APPLICATION_DECIDED = kind(
    "application-decided",
    409,
    title=Texts(
        "Application decided already",
        "Өтініш бойынша шешім қабылданған",
        "По заявке уже принято решение",
    ),
    explanation=Texts(
        "The application was approved or rejected; it takes no inspection and no second "
        "decision. `current_status` says which.",
        "Өтініш мақұлданған немесе қабылданбаған; оған тексеру де, екінші шешім де "
        "жазылмайды. `current_status` қайсысы екенін айтады.",
        "Заявка одобрена или отклонена; к ней не добавляются ни проверка, ни второе решение. "
        "`current_status` называет, какое.",
    ),
)
APPLICATION_UNMET_REQUIREMENTS = kind(
    "application-unmet-requirements",
    409,
    title=Texts(
        "Blocking requirements unmet",
        "Міндетті талаптар орындалмаған",
        "Не выполнены обязательные требования",
    ),
    explanation=Texts(
        "The application fails blocking requirements of the set in force; `unmet` lists them. "
        "Inspect again once they are met, or reject it.",
        "Өтініш қолданыстағы жиынның міндетті талаптарына сай емес; `unmet` оларды тізеді. "
        "Олар орындалғанда қайта тексеріңіз немесе өтінішті қабылдамаңыз.",
        "Заявка не выполняет обязательные требования действующего набора; `unmet` их "
        "перечисляет. Проверьте снова, когда они выполнены, или отклоните заявку.",
    ),
    disposition="retry",
)
INSPECTOR_DOES_NOT_APPROVE = kind(
    "inspector-does-not-approve",
    403,
    title=Texts(
        "The inspector does not approve",
        "Тексерген адам мақұлдамайды",
        "Проверявший не одобряет",
    ),
    explanation=Texts(
        "Four eyes: the official who inspected an application does not approve it; another "
        "official does. `inspector` names who inspected.",
        "Төрт көз қағидасы: өтінішті тексерген лауазымды тұлға оны мақұлдамайды, оны басқа "
        "тұлға мақұлдайды. `inspector` кім тексергенін атайды.",
        "Принцип четырёх глаз: проверявший заявку не одобряет её, одобряет другой. "
        "`inspector` называет проверявшего.",
    ),
)
NO_REQUIREMENT_SET_IN_FORCE = kind(
    "no-requirement-set-in-force",
    409,
    title=Texts(
        "No requirement set in force",
        "Қолданыстағы талаптар жиыны жоқ",
        "Нет действующего набора требований",
    ),
    explanation=Texts(
        "Nothing is judged until the ministry puts a requirement set in force "
        "(POST /v1/requirement-sets/{version}/activate).",
        "Министрлік талаптар жиынын күшіне енгізгенше ештеңе бағаланбайды "
        "(POST /v1/requirement-sets/{version}/activate).",
        "Ничего не оценивается, пока министерство не введёт набор требований в действие "
        "(POST /v1/requirement-sets/{version}/activate).",
    ),
    disposition="retry",
)
REQUIREMENT_SET_EXISTS = kind(
    "requirement-set-exists",
    409,
    title=Texts(
        "Requirement set exists already",
        "Талаптар жиыны бұрыннан бар",
        "Набор требований уже существует",
    ),
    explanation=Texts(
        "A version is immutable once stored: store the changed norms under a new version.",
        "Сақталған нұсқа өзгермейді: өзгерген нормаларды жаңа нұсқамен сақтаңыз.",
        "Сохранённая версия неизменна: сохраните изменённые нормы под новой версией.",
    ),
)
NORMS_ARE_NATIONAL = kind(
    "norms-are-national",
    403,
    title=Texts(
        "Norms are national",
        "Нормалар республикалық",
        "Нормы общереспубликанские",
    ),
    explanation=Texts(
        "Requirement sets hold for the whole country: a regional key cannot change them.",
        "Талаптар жиыны бүкіл елге ортақ: өңірлік кілт оларды өзгерте алмайды.",
        "Наборы требований действуют по всей стране: региональный ключ их не меняет.",
    ),
)


Missing = Literal["application", "license", "requirement_set"]
_MISSING: dict[Missing, tuple[str, str, str]] = {
    "application": ("application {} does not exist", "{} өтініші жоқ", "заявки {} нет"),
    "license": ("license {} does not exist", "{} лицензиясы жоқ", "лицензии {} нет"),
    "requirement_set": (
        "requirement set {} does not exist",
        "{} талаптар жиыны жоқ",
        "набора требований {} нет",
    ),
}


def missing(what: Missing, key: str) -> Texts:
    """That an application, license or requirement set does not exist (or is not the key's
    to see), in the three languages."""
    en, kk, ru = _MISSING[what]
    return Texts(en.format(key), kk.format(key), ru.format(key))


@dataclass(frozen=True)
class LicenseAction:
    """What a license's status must be for an action, and the refusal when it is not."""

    allowed: frozenset[LicenseStatus]
    refusal: ProblemKind
    # The action's words for the refusal's detail: "it cannot be <en>", "оны <kk> болмайды",
    # "её нельзя <ru>".
    words: Texts


_LIVE = frozenset({LicenseStatus.ACTIVE, LicenseStatus.SUSPENDED})
LICENSE_ACTIONS: dict[Action, LicenseAction] = {
    "suspend": LicenseAction(
        frozenset({LicenseStatus.ACTIVE}),
        LICENSE_NOT_SUSPENDABLE,
        Texts("suspended", "тоқтата тұруға", "приостановить"),
    ),
    "reinstate": LicenseAction(
        frozenset({LicenseStatus.SUSPENDED}),
        LICENSE_NOT_REINSTATABLE,
        Texts("reinstated", "қалпына келтіруге", "восстановить"),
    ),
    "revoke": LicenseAction(
        _LIVE, LICENSE_NOT_REVOCABLE, Texts("revoked", "кері қайтарып алуға", "отозвать")
    ),
    "add_site": LicenseAction(
        _LIVE,
        LICENSE_NOT_AMENDABLE,
        Texts("given a new site", "жаңа алаңмен толықтыруға", "дополнить площадкой"),
    ),
    "amend_staffing": LicenseAction(
        _LIVE,
        LICENSE_NOT_AMENDABLE,
        Texts("given a new staffing", "штатын өзгертуге", "изменить штат"),
    ),
}


def transition_allowed(action: Action, status: LicenseStatus) -> bool:
    return status in LICENSE_ACTIONS[action].allowed


def refusal_detail(action: Action, number: str, status: LicenseStatus) -> Texts:
    """Why a license in `status` cannot take `action`, in the three languages."""
    words = LICENSE_ACTIONS[action].words
    return Texts(
        f"license {number} is {status}; it cannot be {words.en}",
        f"{number} лицензиясы: {name_of('license_status', status, 'kk')}; оны {words.kk} болмайды",
        f"лицензия {number}: {name_of('license_status', status, 'ru')}; её нельзя {words.ru}",
    )


@dataclass(frozen=True)
class StatusChange:
    """A change of a license's status: where it leads, what the trail and the audit call it,
    the event it publishes and which of the decision's members that event carries."""

    to: LicenseStatus
    recorded_as: str
    event: type[LicenseEvent]
    carries: frozenset[Literal["reason", "until"]]


STATUS_CHANGES: dict[StatusAction, StatusChange] = {
    "suspend": StatusChange(
        LicenseStatus.SUSPENDED,
        "license.suspended",
        LicenseSuspendedV1,
        frozenset({"reason", "until"}),
    ),
    "reinstate": StatusChange(
        LicenseStatus.ACTIVE, "license.reinstated", LicenseReinstatedV1, frozenset()
    ),
    "revoke": StatusChange(
        LicenseStatus.REVOKED, "license.revoked", LicenseRevokedV1, frozenset({"reason"})
    ),
}


@dataclass(frozen=True)
class ApplicationDecision:
    """How a decision on an application is recorded: the trail's action, and the member of
    the trail's `after` beside the new status."""

    recorded_as: str
    after_member: Literal["license_number", "reason"]
    # The status as a refusal's detail names it.
    status_name: Texts


APPLICATION_DECISIONS: dict[ApplicationStatus, ApplicationDecision] = {
    ApplicationStatus.APPROVED: ApplicationDecision(
        "application.approved", "license_number", Texts("approved", "мақұлданды", "одобрена")
    ),
    ApplicationStatus.REJECTED: ApplicationDecision(
        "application.rejected", "reason", Texts("rejected", "қабылданбады", "отклонена")
    ),
}


def decided_detail(application_id: str, status: ApplicationStatus) -> Texts:
    """Why a decided application takes no inspection and no second decision."""
    name = APPLICATION_DECISIONS[status].status_name
    return Texts(
        f"application {application_id} is {status}; it has been decided already",
        f"{application_id} өтініші {name.kk}; ол бойынша шешім қабылданған",
        f"заявка {application_id} {name.ru}; решение по ней уже принято",
    )


@dataclass
class ImpactTotals:
    providers_passing: int = 0
    providers_failing: int = 0
    places_passing: int = 0
    places_failing: int = 0
    recipients_passing: int = 0
    recipients_failing: int = 0

    def add(self, *, passing: bool, places: int, recipients: int) -> None:
        if passing:
            self.providers_passing += 1
            self.places_passing += places
            self.recipients_passing += recipients
        else:
            self.providers_failing += 1
            self.places_failing += places
            self.recipients_failing += recipients


@dataclass
class ImpactChange:
    """Who passes under one set and not the other."""

    newly_passing: list[str] = field(default_factory=list)
    newly_failing: list[str] = field(default_factory=list)
    places_gained: int = 0
    places_lost: int = 0
    recipients_gained: int = 0
    recipients_lost: int = 0

    def add(self, key: str, *, before: bool, after: bool, places: int, recipients: int) -> None:
        if after and not before:
            self.newly_passing.append(key)
            self.places_gained += places
            self.recipients_gained += recipients
        elif before and not after:
            self.newly_failing.append(key)
            self.places_lost += places
            self.recipients_lost += recipients

    @property
    def providers(self) -> int:
        """Net change of providers passing."""
        return len(self.newly_passing) - len(self.newly_failing)

    @property
    def places(self) -> int:
        return self.places_gained - self.places_lost

    @property
    def recipients(self) -> int:
        return self.recipients_gained - self.recipients_lost


# commands


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ContactIn(_Command):
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()-]{6,19}$")
    language: Language


class SubtypeIn(_Command):
    form: ServiceForm
    category: RecipientCategory


class SiteIn(_Command):
    address: str = Field(min_length=1, max_length=500)
    kato: Kato
    places: int | None = Field(default=None, ge=1, le=100_000)


class StaffIn(_Command):
    role: RoleCode
    fte: Decimal = Field(gt=0, le=10_000, decimal_places=2)


class CertificateIn(_Command):
    """A social worker's professional certificate (qualification recognised since 2025)."""

    number: str = Field(min_length=1, max_length=64)
    issuing_body: str = Field(min_length=1, max_length=500)
    issued_on: date
    expires_on: date

    # pydantic's `ValidationInfo` is typed with an explicit `Any` (its `data`), hence the ignore.
    @field_validator("expires_on")
    @classmethod
    def _expires_after_issue(  # type: ignore[explicit-any]
        cls, value: date, info: ValidationInfo
    ) -> date:
        issued_on = info.data.get("issued_on")
        if issued_on is not None and value <= issued_on:
            raise ValueError(f"must be after issued_on ({issued_on.isoformat()})")
        return value


class WorkerIn(_Command):
    """A named worker holding `fte` of a role of the staffing table; the name is personal
    data, sealed at rest and never logged."""

    role: RoleCode
    fte: Decimal = Field(gt=0, le=10_000, decimal_places=2)
    full_name: str = Field(min_length=1, max_length=300)
    certificate: CertificateIn | None = None


class PremisesIn(_Command):
    area_m2: Decimal = Field(gt=0, le=10_000_000, decimal_places=2)
    step_free_access: bool


class SubmitApplication(_Command):
    """The body of `POST /v1/applications`."""

    bin: Bin
    provider_name: str = Field(min_length=1, max_length=500)
    legal_form: LegalForm
    region: RegionCode
    contact: ContactIn
    subtypes: list[SubtypeIn] = Field(min_length=1)
    sites: list[SiteIn] = Field(min_length=1)
    staffing: list[StaffIn] = Field(default_factory=list)
    # Who holds the positions of `staffing` (see `workers_errors`): optional, one entry per
    # person, with their certificate if they hold one.
    workers: list[WorkerIn] = Field(default_factory=list, max_length=10_000)
    equipment: list[EquipmentCode] = Field(default_factory=list)
    premises: PremisesIn
    # An application received on paper is recorded after the date it was filed.
    submitted_on: date | None = Field(
        default=None, description="date the application was filed; default today (Asia/Almaty)"
    )


def sites_errors(
    sites: Sequence[SiteIn], forms: Iterable[ServiceForm], *, prefix: str = "sites"
) -> list[tuple[str, str]]:
    """Field errors of sites: a known region in each KATO, places where the form needs them."""
    errors = []
    need_places = places_required(forms)
    for i, site in enumerate(sites):
        if region_of(site.kato) not in REGIONS:
            errors.append((f"{prefix}.{i}.kato", f"KATO {site.kato} is in no known region"))
        if need_places and site.places is None:
            errors.append(
                (
                    f"{prefix}.{i}.places",
                    "places are required for stationary, semi_stationary and temporary_stay forms",
                )
            )
    return errors


def workers_errors(
    staffing: Sequence[StaffIn], workers: Sequence[WorkerIn], *, prefix: str = "workers"
) -> list[tuple[str, str]]:
    """Field errors of the named workers against the staffing table.

    `staffing` is the staffing table (штатное расписание): the FTE of each role, which the
    staff norms are judged on. `workers` lists the people who hold those positions; a
    position may be vacant, so the workers' FTE of a role may be less than the table's, never
    more, and a worker's role must be in the table. FTE nobody named holds counts as held
    without a certificate.
    """
    declared: dict[str, Decimal] = {}
    for item in staffing:
        declared[item.role] = declared.get(item.role, Decimal(0)) + item.fte
    errors: list[tuple[str, str]] = []
    named: dict[str, Decimal] = {}
    for i, worker in enumerate(workers):
        if worker.role not in declared:
            errors.append((f"{prefix}.{i}.role", f"{worker.role} has no FTE in the staffing table"))
            continue
        named[worker.role] = named.get(worker.role, Decimal(0)) + worker.fte
        if named[worker.role] > declared[worker.role]:
            errors.append(
                (
                    f"{prefix}.{i}.fte",
                    f"the workers named as {worker.role} hold {_fmt(named[worker.role])} FTE,"
                    f" more than the {_fmt(declared[worker.role])} FTE of the staffing table",
                )
            )
    return errors


def application_errors(cmd: SubmitApplication) -> list[tuple[str, str]]:
    """Field errors that involve more than one field of an application."""
    errors: list[tuple[str, str]] = []
    if cmd.contact.email is None and cmd.contact.phone is None:
        errors.append(("contact.email", "an email or a phone is required"))
    seen: set[tuple[str, str]] = set()
    for i, sub in enumerate(cmd.subtypes):
        key = (sub.form, sub.category)
        if key in seen:
            errors.append((f"subtypes.{i}", "this subtype is listed twice"))
        seen.add(key)
    errors += sites_errors(cmd.sites, [s.form for s in cmd.subtypes])
    errors += workers_errors(cmd.staffing, cmd.workers)
    return errors


class AmendStaffing(_Command):
    """The body of `POST /v1/licenses/{number}/staffing`: the licensee's staffing table and
    named workers as they are now (a renewed certificate, a new hire); they replace the
    license's, under the rules of `workers_errors`."""

    staffing: list[StaffIn] = Field(default_factory=list)
    workers: list[WorkerIn] = Field(default_factory=list, max_length=10_000)


class ObservationIn(_Command):
    requirement_id: str = Field(min_length=1)
    met: bool
    actual: str = Field(min_length=1, max_length=500)


class RecordInspection(_Command):
    """The body of `POST /v1/applications/{id}/inspections`."""

    inspected_on: date
    findings: list[ObservationIn] = Field(default_factory=list)
    photos: list[str] = Field(default_factory=list, max_length=100)
    notes: str | None = Field(default=None, max_length=5000)


# Stored documents (jsonb) as the commands' `model_dump(mode="json")` wrote them: decimals and
# dates as text. Types for reading only: nothing validates what older versions wrote.


class SubtypeDoc(TypedDict):
    form: str
    category: str


class SiteDoc(TypedDict):
    site_id: str
    address: str
    kato: str
    places: int | None


class StaffDoc(TypedDict):
    role: str
    fte: str


class CertificateDoc(TypedDict):
    number: str
    issuing_body: str
    issued_on: str
    expires_on: str


class WorkerDoc(TypedDict):
    role: str
    fte: str
    full_name: str
    certificate: CertificateDoc | None


class PremisesDoc(TypedDict):
    area_m2: str
    step_free_access: bool


class ContactDoc(TypedDict):
    email: str | None
    phone: str | None
    language: str


class FindingDoc(TypedDict):
    requirement_id: str
    kind: str
    core: bool
    blocking: bool
    met: bool
    expected: str
    actual: str
    title_kk: str | None
    title_ru: str | None


class ObservationDoc(TypedDict):
    requirement_id: str
    met: bool
    actual: str


class Declared(Protocol):
    """What an application (or a license) declares, as stored: what evaluation reads."""

    @property
    def subtypes(self) -> list[SubtypeDoc]: ...
    @property
    def sites(self) -> list[SiteDoc]: ...
    @property
    def staffing(self) -> list[StaffDoc]: ...
    @property
    def workers(self) -> list[WorkerDoc]: ...
    @property
    def equipment(self) -> list[str]: ...
    @property
    def premises(self) -> PremisesDoc: ...


@dataclass(frozen=True)
class Declaration:
    """An application's declaration before it is stored (sites with their new ids)."""

    subtypes: list[SubtypeDoc]
    sites: list[SiteDoc]
    staffing: list[StaffDoc]
    workers: list[WorkerDoc]
    equipment: list[str]
    premises: PremisesDoc


class Inspected(Protocol):
    @property
    def observations(self) -> list[ObservationDoc]: ...


def _worker(item: WorkerDoc) -> Worker:
    certificate = item.get("certificate")
    return Worker(
        role=item["role"],
        fte=Decimal(item["fte"]),
        certified_from=date.fromisoformat(certificate["issued_on"]) if certificate else None,
        certified_until=date.fromisoformat(certificate["expires_on"]) if certificate else None,
    )


def profile_of(record: Declared) -> Profile:
    """The evaluation profile of a stored application or license."""
    staffing: dict[str, Decimal] = {}
    for item in record.staffing:
        staffing[item["role"]] = staffing.get(item["role"], Decimal(0)) + Decimal(item["fte"])
    return Profile(
        subtypes=[
            (ServiceForm(s["form"]), RecipientCategory(s["category"])) for s in record.subtypes
        ],
        site_places=[s.get("places") for s in record.sites],
        staffing=staffing,
        equipment=frozenset(record.equipment),
        area_m2=Decimal(record.premises["area_m2"]),
        step_free_access=bool(record.premises["step_free_access"]),
        workers=[_worker(w) for w in record.workers or []],
    )


def observations_of(inspection: Inspected | None) -> dict[str, Observation]:
    if inspection is None:
        return {}
    return {
        o["requirement_id"]: Observation(met=o["met"], actual=o["actual"])
        for o in inspection.observations
    }


# Public view (DESIGN §6: a shelter's address is never public)

# A victim of domestic violence hides in these; a license covering any of them keeps every one
# of its sites' addresses from the public registry (sites do not say which subtype they serve).
SHELTER_FORMS = frozenset({ServiceForm.TEMPORARY_STAY})
SHELTER_CATEGORIES = frozenset({RecipientCategory.DOMESTIC_VIOLENCE})


def shelters(subtypes: Iterable[tuple[str, str]]) -> bool:
    """Whether a license with these (form, category) subtypes runs shelters."""
    return any(
        form in SHELTER_FORMS or category in SHELTER_CATEGORIES for form, category in subtypes
    )


def district_of(kato: str) -> str:
    """The district (KATO `ABCD00000`) of a place: as near as the public may come to a shelter."""
    return kato[:4] + "00000"


# Dates of an application's life (DESIGN §5): each against today and the facts it follows.


def filing_date_error(submitted_on: date, *, today: date, provider: bool) -> str | None:
    """Why an application cannot be dated `submitted_on`, if it cannot."""
    if submitted_on > today:
        return f"must not be after today ({today.isoformat()})"
    if provider and submitted_on != today:
        return "a provider's own system files an application on the day it sends it"
    return None


def inspection_date_error(inspected_on: date, *, submitted_on: date, today: date) -> str | None:
    """Why an inspection cannot be dated `inspected_on`, if it cannot."""
    if inspected_on > today:
        return f"must not be after today ({today.isoformat()}): it is recorded once it happened"
    if inspected_on < submitted_on:
        return f"must not be before the application was submitted ({submitted_on.isoformat()})"
    return None


def issue_date_error(
    issued_on: date, *, submitted_on: date, inspected_on: date | None, today: date
) -> str | None:
    """Why a license cannot be issued on `issued_on`, if it cannot."""
    if issued_on > today:
        return f"must not be after today ({today.isoformat()})"
    if issued_on < submitted_on:
        return f"must not be before the application was submitted ({submitted_on.isoformat()})"
    if inspected_on is not None and issued_on < inspected_on:
        return f"must not be before the inspection it rests on ({inspected_on.isoformat()})"
    return None
