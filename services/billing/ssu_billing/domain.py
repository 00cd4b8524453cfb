"""Pure rules of billing: periods, tariff limits, attendance and treasury files."""

import csv
import io
import secrets
from calendar import monthrange
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException
from ssu_common.errors import Texts, kind

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Month:
    """A billing period `YYYY-MM`: calendar dates in Asia/Almaty."""

    first: date

    @classmethod
    def parse(cls, text: str) -> "Month":
        year, month = text.split("-")
        return cls(date(int(year), int(month), 1))

    @property
    def last(self) -> date:
        return self.first.replace(day=self.days)

    @property
    def days(self) -> int:
        return monthrange(self.first.year, self.first.month)[1]

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m}"

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last

    def next(self) -> "Month":
        return Month(self.last + timedelta(days=1))


def month_not_ended(month: Month, today: date) -> str | None:
    """Why a month cannot be billed yet: a month is billed once it has ended (Asia/Almaty)."""
    if month.last < today:
        return None
    verb = "has not begun" if month.first > today else "has not ended"
    return f"{month.label} {verb} (today is {today}): a month is billed once it has ended"


def run_out_of_order(
    *, month: Month, region: str | None, held: list[tuple[date, str | None]]
) -> str | None:
    """Why a run of `month` (one region, or national: every region) breaks the order of runs,
    or None. Within a contract year a region's months are billed in order: not before a month
    already billed, and after the first month billed only once the previous month was. `held`:
    the runs of the year, (first day, region or None for national)."""
    regions = sorted({r for _, r in held if r is not None})
    scopes: list[str | None] = [region] if region is not None else [*regions, None]
    previous = (month.first - timedelta(days=1)).replace(day=1)
    for scope in scopes:
        months = {m for m, r in held if r is None or r == scope}
        if month.first in months:
            continue  # this region's month was billed (by a national or regional run)
        name = f"region {scope}" if scope is not None else "the national run"
        later = sorted(m for m in months if m > month.first)
        if later:
            return f"{name} was billed for {later[-1]:%Y-%m}: months are billed in order"
        if months and previous not in months:
            return f"{name} has not been billed for {previous:%Y-%m}: months are billed in order"
    return None


def round_money(value: Decimal) -> Decimal:
    """Half-up to the tiyn (0.01 KZT)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def rate_outside_limits(
    *, rate: Decimal, form: str, unit: str, limits: dict[str, dict[str, tuple[Decimal, Decimal]]]
) -> str | None:
    """Why a rate lies outside the national minimum and maximum for its form, or None."""
    bounds = limits.get(form, {}).get(unit)
    if bounds is None:
        return f"no national limits are configured for form {form} per {unit}"
    low, high = bounds
    if not low <= rate <= high:
        return f"rate {rate} is outside the national limits {low}..{high} for {form} per {unit}"
    return None


def budget_statuses(*, budget: Decimal, spent: Decimal, amounts: list[Decimal]) -> list[str]:
    """The budget rule (DESIGN §3), lines taken in the budget order (month, then enrollment
    start date, then enrollment id): a line that would take the contract past its budget is
    `over_budget` and spends nothing; a later line that still fits is `billed`. A line of
    nothing or less (a credit) is always billed."""
    statuses: list[str] = []
    for amount in amounts:
        if amount > 0 and spent + amount > budget:
            statuses.append("over_budget")
        else:
            statuses.append("billed")
            spent += amount
    return statuses


@dataclass(frozen=True)
class RowError:
    line: int
    field: str
    reason: str
    value: str | None = None


@dataclass(frozen=True)
class AttendanceRow:
    line: int
    iin: str
    provider_bin: str
    day: date


def attendance_rows(text: str) -> Iterator[AttendanceRow | RowError]:
    """Rows of `iin,provider_bin,date`, one by one (line numbers count the header as line 1)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"iin", "provider_bin", "date"} - set(reader.fieldnames or [])
    if missing:
        yield RowError(1, "header", f"missing columns: {', '.join(sorted(missing))}")
        return
    for number, raw in enumerate(reader, start=2):
        iin = (raw.get("iin") or "").strip()
        bin_ = (raw.get("provider_bin") or "").strip()
        text_date = (raw.get("date") or "").strip()
        try:
            day = date.fromisoformat(text_date)
        except ValueError:
            yield RowError(number, "date", "not a date (YYYY-MM-DD)", text_date)
            continue
        if not (len(iin) == 12 and iin.isdigit()):
            yield RowError(number, "iin", "not an IIN (12 digits)", iin)
            continue
        yield AttendanceRow(number, iin, bin_, day)


@dataclass(frozen=True)
class TreasuryRow:
    line: int
    invoice_number: str
    amount_paid: Decimal
    status: str
    paid_on: date
    # the treasury's payment order number, when its file has a `reference` column
    reference: str = ""


def parse_treasury_csv(text: str) -> tuple[list[TreasuryRow], list[RowError]]:
    """The treasury's result file: `invoice_number,amount_paid,status,date[,reference]`."""
    reader = csv.DictReader(io.StringIO(text))
    missing = {"invoice_number", "amount_paid", "status", "date"} - set(reader.fieldnames or [])
    if missing:
        return [], [RowError(1, "header", f"missing columns: {', '.join(sorted(missing))}")]
    rows: list[TreasuryRow] = []
    errors: list[RowError] = []
    for number, raw in enumerate(reader, start=2):
        invoice = (raw.get("invoice_number") or "").strip()
        status = (raw.get("status") or "").strip()
        try:
            amount = Decimal((raw.get("amount_paid") or "").strip())
            if not amount.is_finite() or amount < 0 or amount != round_money(amount):
                raise InvalidOperation
        except InvalidOperation:
            errors.append(
                RowError(number, "amount_paid", "not an amount in KZT", raw.get("amount_paid"))
            )
            continue
        if status not in {"paid", "rejected"}:
            errors.append(RowError(number, "status", "must be paid or rejected", status))
            continue
        try:
            paid_on = date.fromisoformat((raw.get("date") or "").strip())
        except ValueError:
            errors.append(RowError(number, "date", "not a date (YYYY-MM-DD)", raw.get("date")))
            continue
        reference = (raw.get("reference") or "").strip()
        rows.append(TreasuryRow(number, invoice, amount, status, paid_on, reference))
    return rows, errors


def payment_outcome(
    *, total: Decimal, amount_paid: Decimal, status: str, paid_before: Decimal = Decimal(0)
) -> tuple[str | None, str | None]:
    """(invoice status, discrepancy) for one treasury row, a tranche after `paid_before`;
    status None means the row is refused."""
    if status == "rejected":
        if amount_paid != 0:
            return None, f"rejected with a payment of {amount_paid}"
        return "payment_rejected", None
    paid = paid_before + amount_paid
    if paid == total:
        return "paid", None
    if paid < total:
        return "partially_paid", f"paid {paid} of {total}: short by {total - paid}"
    if paid_before:
        return None, overpayment(total=total, paid_before=paid_before, amount_paid=amount_paid)
    return None, f"paid {amount_paid}, more than the invoice total {total}"


def overpayment(*, total: Decimal, paid_before: Decimal, amount_paid: Decimal) -> str:
    """Why a tranche is refused: with what was paid before it, it exceeds the invoice total."""
    return (
        f"a tranche of {amount_paid} after {paid_before} paid comes to"
        f" {paid_before + amount_paid}, more than the invoice total {total}:"
        f" over by {paid_before + amount_paid - total}"
    )


# Statuses of an invoice the treasury may (still) pay: in the register with what is due.
PAYABLE = frozenset({"approved", "partially_paid"})


@dataclass(frozen=True)
class BankDetails:
    """Where the treasury pays a contract's provider, as the treasury's payment order needs it."""

    iik: str  # the account (IIK), in IBAN form: KZ, 2 check digits, 16 characters
    bik: str  # the bank (BIK), a SWIFT code of a Kazakh bank: 8 or 11 characters
    kbk: str  # budget classification code: 6 digits
    knp: str  # payment purpose code: 3 digits


def normal_iik(text: str) -> str:
    """The IIK in compact IBAN form; ValueError when it is not a Kazakh IBAN with valid check
    digits (ISO 13616, mod 97)."""
    compact = "".join(text.split()).upper()
    if not compact.startswith("KZ"):
        raise ValueError("not a Kazakh account: an IIK begins with KZ")
    if len(compact) != 20:
        raise ValueError(f"an IIK has 20 characters, not {len(compact)}")
    try:
        return str(IBAN(compact).compact)
    except SchwiftyException as exc:
        raise ValueError(f"not a valid IIK (IBAN, ISO 13616): {exc}") from None


def normal_bik(text: str) -> str:
    """The BIK as a SWIFT code of a Kazakh bank (8 or 11 characters, country KZ)."""
    compact = text.strip().upper()
    if len(compact) not in (8, 11) or not compact.isalnum() or not compact.isascii():
        raise ValueError("a BIK has 8 or 11 letters and digits (SWIFT form)")
    if not compact[:4].isalpha():
        raise ValueError("a BIK begins with the bank's 4 letters")
    if compact[4:6] != "KZ":
        raise ValueError("not a Kazakh bank: the 5th and 6th characters of a BIK are KZ")
    return compact


def check_kbk(text: str) -> str:
    if not (len(text) == 6 and text.isdigit() and text.isascii()):
        raise ValueError("a KBK (budget classification code) has 6 digits")
    return text


def check_knp(text: str) -> str:
    if not (len(text) == 3 and text.isdigit() and text.isascii()):
        raise ValueError("a KNP (payment purpose code) has 3 digits")
    return text


# Checks before payment (issue 19): named rules of the billing run. Each is one set-based query
# over the run's lines (store.check_run); a line that fails a blocking rule is held (its amount
# is not paid until a second person releases it, nor dropped), one that fails an advisory rule
# is paid and shows the finding. Dates after a death or outside the enrollment are never paid
# whatever the rule's verdict: the rule says whether the rest of the line waits for review.


@dataclass(frozen=True)
class Rule:
    slug: str
    # held for review by default (CheckPolicy.advisory lists the default's exceptions)
    blocking: bool
    kk: str
    ru: str


DOUBLE_ATTENDANCE = "double_attendance"
OVER_SITE_CAPACITY = "over_site_capacity"
AFTER_DEATH = "after_death"
OUTSIDE_ENROLLMENT = "outside_enrollment"
DUPLICATE_PERSON = "duplicate_person"
OVER_LICENSED_PLACES = "over_licensed_places"
DISPUTED_MONTH = "disputed_month"
UNCONFIRMED_MONTH = "unconfirmed_month"

RULES: dict[str, Rule] = {
    r.slug: r
    for r in (
        Rule(
            DOUBLE_ATTENDANCE,
            True,
            "Алушы сол күні сол нысанда басқа жеткізушіде де болған",
            "В этот день получатель посещал другого поставщика в той же форме",
        ),
        Rule(
            OVER_SITE_CAPACITY,
            True,
            "Сол күні объектідегі орын санынан көп келу белгіленген",
            "В этот день посещений больше, чем мест на объекте",
        ),
        Rule(
            AFTER_DEATH,
            True,
            "Алушы қайтыс болғаннан кейінгі күндер",
            "Даты после смерти получателя",
        ),
        Rule(
            OUTSIDE_ENROLLMENT,
            False,
            "Қызмет көрсету мерзімінен тыс күндер",
            "Даты вне периода обслуживания",
        ),
        Rule(
            DUPLICATE_PERSON,
            True,
            "Алушы екі рет тіркелген (бір ЖСН)",
            "Получатель учтён дважды (один ИИН)",
        ),
        Rule(
            OVER_LICENSED_PLACES,
            True,
            "Жеткізушіге лицензиядағы орын санынан көп алушы үшін төленеді",
            "Поставщику оплачивается больше получателей, чем мест по лицензии",
        ),
        Rule(
            DISPUTED_MONTH,
            True,
            "Алушы айдағы келуді даулады: өңір қарайды",
            "Получатель оспорил посещение за месяц: рассматривает регион",
        ),
        Rule(
            UNCONFIRMED_MONTH,
            False,
            "Алушы айдағы келуді әлі растамады",
            "Получатель ещё не подтвердил посещение за месяц",
        ),
    )
}

# What the run does with a month the recipient was asked to confirm and has not answered.
UNCONFIRMED_POLICIES = ("pay", "hold", "partial")


@dataclass(frozen=True)
class CheckPolicy:
    """How the run's rules act (settings `SSU_BILLING_UNCONFIRMED`, `..._UNCONFIRMED_SHARE`,
    `..._ADVISORY_RULES`)."""

    # pay: an unanswered month is paid (the finding is shown); hold: held for review like a
    # blocking rule; partial: `unconfirmed_share` of the line is paid, the rest held.
    unconfirmed: str = "pay"
    unconfirmed_share: Decimal = Decimal("0.5")
    # rules recorded and shown but not holding a line (a disputed month always holds)
    advisory: frozenset[str] = frozenset({OUTSIDE_ENROLLMENT})

    def __post_init__(self) -> None:
        if self.unconfirmed not in UNCONFIRMED_POLICIES:
            raise ValueError(f"unconfirmed must be one of {', '.join(UNCONFIRMED_POLICIES)}")
        if not Decimal(0) <= self.unconfirmed_share <= Decimal(1):
            raise ValueError("unconfirmed_share is a share between 0 and 1")
        unknown = self.advisory - set(RULES)
        if unknown:
            raise ValueError(f"unknown rules: {', '.join(sorted(unknown))}")
        if DISPUTED_MONTH in self.advisory:
            raise ValueError("a disputed month is always held for review by the region")

    def blocking(self) -> list[str]:
        """The rules that hold a line under this policy."""
        rules = set(RULES) - {UNCONFIRMED_MONTH} - self.advisory
        rules.add(DISPUTED_MONTH)
        if self.unconfirmed == "hold":
            rules.add(UNCONFIRMED_MONTH)
        return sorted(rules)

    def partial_share(self) -> Decimal | None:
        """The share paid of an unconfirmed month, when it is paid in part."""
        return self.unconfirmed_share if self.unconfirmed == "partial" else None


def held_amount(*, amount: Decimal, failed: set[str], policy: CheckPolicy) -> Decimal:
    """What of a billed line is held (store._VERDICTS does the same in SQL): all of it on a
    blocking rule, the unpaid share of an unconfirmed month under `partial`, else nothing; a
    line of nothing or less (a credit) holds nothing."""
    if amount <= 0:
        return Decimal(0)
    if failed & set(policy.blocking()):
        return amount
    share = policy.partial_share()
    if share is not None and UNCONFIRMED_MONTH in failed:
        return amount - round_money(amount * share)
    return Decimal(0)


def person_key(name: str, birth_date: date) -> str:
    """A recipient's name and birth date as billing compares them for `duplicate_person`:
    case, spacing and ё/е folded (its keyed index is kept, never the name)."""
    folded = " ".join(name.casefold().replace("ё", "е").split())
    return f"{folded}\x1f{birth_date.isoformat()}"


# --- attendance confirmations (issue 19): asking the recipient about a closed month --------

CONFIRMATION_VALID_DAYS = 30
# Wrong 6-digit codes for one enrollment before its code path is locked (the link's long token
# still answers: guessing one is hopeless).
MAX_CODE_ATTEMPTS = 5
SMS_CODE_DIGITS = 6


@dataclass(frozen=True)
class ConfirmationSecrets:
    """The single-use answer of one request: a link's token and a code for typing it."""

    token: str
    sms_code: str


def new_confirmation_secrets() -> ConfirmationSecrets:
    return ConfirmationSecrets(
        token=secrets.token_urlsafe(32),
        sms_code=f"{secrets.randbelow(10**SMS_CODE_DIGITS):0{SMS_CODE_DIGITS}d}",
    )


def token_key(token: str) -> tuple[str, str]:
    """What the keyed digest of a link's token is taken of."""
    return ("confirmation.token", token)


def code_key(enrollment_id: str, month: date, code: str) -> tuple[str, str, str, str]:
    """What the keyed digest of a code is taken of: a code is only ever one request's."""
    return ("confirmation.code", enrollment_id, month.isoformat(), code)


def confirmation_refusal(
    *, state: str, answered_at: datetime | None, expires_at: datetime | None, now: datetime
) -> str | None:
    """Why a request can no longer be answered (`answered`, `expired`), or None."""
    if state != "requested" or answered_at is not None:
        return "answered"
    if expires_at is not None and now >= expires_at:
        return "expired"
    return None


# --- the kinds of billing's refusals (ssu_common.errors): a stable `/problems/<slug>` each ---

CONTRACT_EXISTS = kind(
    "contract-exists",
    409,
    title=Texts("Contract exists", "Шарт бар", "Договор уже есть"),
    explanation=Texts(
        "A contract with this number, or for this provider, region and year, is held; "
        "`contract_number` names it. Amend its budget or bank details instead.",
        "Осы нөмірмен немесе осы жеткізуші, өңір мен жылға шарт бар; `contract_number` оны "
        "атайды. Оның бюджетін немесе банк деректемелерін өзгертіңіз.",
        "Договор с этим номером или для этого поставщика, региона и года уже есть; "
        "`contract_number` называет его. Измените его бюджет или банковские реквизиты.",
    ),
)
NOT_THE_KEYS_BIN = kind(
    "not-the-keys-bin",
    403,
    title=Texts("Another provider's BIN", "Басқа жеткізушінің БСН-і", "БИН другого поставщика"),
    explanation=Texts(
        "A provider's key reports, withdraws and reads attendance for its own BIN only; "
        "`errors` names what belongs to another.",
        "Жеткізушінің кілті қатысуды тек өз БСН-і бойынша береді, алып тастайды және оқиды; "
        "`errors` басқаға тиесілісін атайды.",
        "Ключ поставщика передаёт, отзывает и читает посещаемость только по своему БИН; "
        "`errors` называет то, что относится к другому.",
    ),
)
ATTENDANCE_INVOICED = kind(
    "attendance-invoiced",
    409,
    title=Texts("Attendance invoiced", "Қатысу шотқа енген", "Посещение уже в счёте"),
    explanation=Texts(
        "The date is counted by an invoice (`invoice_number`): it is no longer withdrawn; the "
        "next run's adjustment corrects it.",
        "Күн шотқа (`invoice_number`) енгізілген: оны енді алып тастауға болмайды; келесі "
        "есептеудің түзетуі оны түзейді.",
        "Дата учтена в счёте (`invoice_number`): её больше нельзя отозвать; её исправит "
        "корректировка следующего расчёта.",
    ),
)
RUN_FOUR_EYES = kind(
    "run-four-eyes",
    403,
    title=Texts("Four eyes", "Төрт көз", "Четыре глаза"),
    explanation=Texts(
        "The person who started a billing run neither approves its invoices nor decides its "
        "held lines; `started_by` names them. Another person decides.",
        "Есептеуді бастаған адам оның шоттарын бекітпейді және ұсталған жолдарын шешпейді; "
        "`started_by` оны атайды. Басқа адам шешеді.",
        "Тот, кто запустил расчёт, не утверждает его счета и не решает по задержанным строкам; "
        "`started_by` называет его. Решает другой человек.",
    ),
)
RUN_OTHER_REGION = kind(
    "run-other-region",
    403,
    title=Texts("Another region's run", "Басқа өңірдің есептеуі", "Расчёт другого региона"),
    explanation=Texts(
        "A regional key runs billing for its own region only; a national run needs a national key.",
        "Өңірлік кілт тек өз өңірінің есептеуін іске қосады; ұлттық есептеуге ұлттық кілт қажет.",
        "Региональный ключ запускает расчёт только своего региона; для национального расчёта "
        "нужен национальный ключ.",
    ),
)
MONTH_BILLED_NATIONALLY = kind(
    "month-billed-nationally",
    409,
    title=Texts(
        "Billed by a national run",
        "Ұлттық есептеумен есептелген",
        "Рассчитано национальным расчётом",
    ),
    explanation=Texts(
        "A national run of the month covered every region, this one too: there is nothing left "
        "to bill for it.",
        "Айдың ұлттық есептеуі барлық өңірді, осы өңірді де қамтыды: есептейтін ештеңе қалмады.",
        "Национальный расчёт месяца охватил все регионы, и этот тоже: рассчитывать нечего.",
    ),
)
MONTHS_OUT_OF_ORDER = kind(
    "months-out-of-order",
    409,
    title=Texts("Months in order", "Айлар ретімен", "Месяцы по порядку"),
    explanation=Texts(
        "Months are billed in order, per region: run the earlier month first; a later month "
        "already billed is corrected by the next run's adjustments instead.",
        "Айлар әр өңір бойынша ретімен есептеледі: алдымен ертерек айды есептеңіз; кейінгі ай "
        "есептеліп қойса, оны келесі есептеудің түзетулері түзейді.",
        "Месяцы рассчитываются по порядку в каждом регионе: сначала более ранний месяц; если "
        "более поздний уже рассчитан, его исправят корректировки следующего расчёта.",
    ),
)
RUN_NOT_COMPLETED = kind(
    "run-not-completed",
    409,
    title=Texts("Run not completed", "Есептеу аяқталмаған", "Расчёт не завершён"),
    explanation=Texts(
        "Only a completed run has invoices to approve; `run_status` says where it is (queued, "
        "running, failed).",
        "Тек аяқталған есептеудің бекітетін шоттары бар; `run_status` оның күйін айтады "
        "(кезекте, орындалуда, сәтсіз).",
        "Счета для утверждения есть только у завершённого расчёта; `run_status` говорит, где "
        "он (в очереди, выполняется, неудачен).",
    ),
)
INVOICE_LINE_NOT_HELD = kind(
    "invoice-line-not-held",
    409,
    title=Texts("Line not held", "Жол ұсталмаған", "Строка не задержана"),
    explanation=Texts(
        "The invoice line passed its checks: there is nothing to release or reject.",
        "Шот жолы тексерістерден өтті: босататын немесе қабылдамайтын ештеңе жоқ.",
        "Строка счёта прошла проверки: нечего выпускать или отклонять.",
    ),
)
INVOICE_LINE_DECIDED = kind(
    "invoice-line-decided",
    409,
    title=Texts("Line already decided", "Жол шешілген", "По строке уже решено"),
    explanation=Texts(
        "A held line is released or rejected once; `hold` and `decided_by` say how and by whom.",
        "Ұсталған жол бір рет қана босатылады немесе қабылданбайды; `hold` пен `decided_by` "
        "қалай және кім шешкенін айтады.",
        "Задержанная строка выпускается или отклоняется один раз; `hold` и `decided_by` "
        "говорят, как и кем.",
    ),
)
TREASURY_FILE_OVERPAYS = kind(
    "treasury-file-overpays",
    422,
    title=Texts("Overpaying file", "Артық төлейтін файл", "Файл переплачивает"),
    explanation=Texts(
        "The treasury's result file would pay invoices more than their totals: nothing of it "
        "is applied; `errors` names the lines.",
        "Қазынашылықтың нәтиже файлы шоттарға сомасынан артық төлейді: одан ештеңе "
        "қолданылмады; `errors` жолдарды атайды.",
        "Файл результата казначейства оплатил бы счета больше их сумм: ничего из него не "
        "применено; `errors` называет строки.",
    ),
)
PAYMENT_NOT_REJECTED = kind(
    "payment-not-rejected",
    409,
    title=Texts("Payment not rejected", "Төлем қабылданбаған емес", "Платёж не отклонён"),
    explanation=Texts(
        "Only a payment the treasury rejected is corrected; `status_of_invoice` is the "
        "invoice's status.",
        "Тек қазынашылық қабылдамаған төлем түзетіледі; `status_of_invoice` шоттың күйі.",
        "Исправляется только отклонённый казначейством платёж; `status_of_invoice` — статус счёта.",
    ),
)
CONFIRMATION_CODE_UNKNOWN = kind(
    "confirmation-code-unknown",
    404,
    title=Texts("Code not found", "Код табылмады", "Код не найден"),
    explanation=Texts(
        "The link, the enrollment or the code is unknown or wrong (nothing says which); after "
        "five wrong codes the month is answered by its link only.",
        "Сілтеме, қабылдау немесе код белгісіз не қате (қайсысы екені айтылмайды); бес қате "
        "кодтан кейін айға тек сілтеме арқылы жауап беріледі.",
        "Ссылка, зачисление или код неизвестны или неверны (что именно, не сообщается); после "
        "пяти неверных кодов на месяц отвечают только по ссылке.",
    ),
)
CONFIRMATION_ANSWERED = kind(
    "confirmation-answered",
    409,
    title=Texts("Already answered", "Жауап берілген", "Уже отвечено"),
    explanation=Texts(
        "The month was confirmed or disputed already: a link and a code answer once.",
        "Ай расталған немесе дауланған: сілтеме мен код бір рет қана жарамды.",
        "Месяц уже подтверждён или оспорен: ссылка и код действуют один раз.",
    ),
)
CONFIRMATION_EXPIRED = kind(
    "confirmation-expired",
    410,
    title=Texts("Answer period over", "Жауап мерзімі өтті", "Срок ответа истёк"),
    explanation=Texts(
        "The time to answer for the month has passed; the regional office answers questions.",
        "Айға жауап беру мерзімі өтті; сұрақтарға аймақтық бөлім жауап береді.",
        "Срок ответа за месяц истёк; на вопросы отвечает региональное управление.",
    ),
)
CONFIRMATION_LOCKED = kind(
    "confirmation-locked",
    429,
    title=Texts("Too many wrong codes", "Қате код тым көп", "Слишком много неверных кодов"),
    explanation=Texts(
        "Five wrong codes were entered for the enrollment: its months are answered by the "
        "message's link only.",
        "Қабылдау үшін бес қате код енгізілді: оның айларына тек хабарламадағы сілтеме арқылы "
        "жауап беріледі.",
        "Для зачисления введено пять неверных кодов: на его месяцы отвечают только по ссылке "
        "из сообщения.",
    ),
    disposition="retry",
)
