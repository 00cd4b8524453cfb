"""Notice texts: Jinja templates as files, one per (event, audience, language).

A template file `templates/<lang>/<event>.<audience>.txt` defines the blocks `subject`, `body`
and, for people reached by phone, `sms`. Undefined variables fail loudly (StrictUndefined).
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Protocol

import jinja2
from ssu_contracts import name_of

from ssu_notification.domain import format_date, format_money, format_period, is_shelter

TEMPLATES_DIR = Path(__file__).parent / "templates"
LANGUAGES = ("kk", "ru")


@dataclass(frozen=True)
class Text:
    subject: str
    body: str
    sms: str | None


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_name(event_key: str, audience: str, lang: str) -> str:
    return f"{lang}/{event_key}.{audience}.txt"


class _Placed(Protocol):
    """An event naming a place's form and category (enrollments, offers)."""

    @property
    def form(self) -> str: ...
    @property
    def category(self) -> str: ...


def _helpers(lang: str) -> dict[str, object]:
    def date_(value: date | datetime) -> str:
        return format_date(value)

    def money(value: Decimal) -> str:
        return format_money(Decimal(value))

    def ref(kind: str, code: str) -> str:
        return name_of(kind, str(code), lang)

    def period(value: str) -> str:
        return format_period(value, lang)

    def shelter(event: _Placed) -> bool:
        return is_shelter(event.form, event.category)

    return {
        "date": date_,
        "money": money,
        "ref": ref,
        "period": period,
        "shelter": shelter,
        "lang": lang,
    }


def render(event_key: str, audience: str, lang: str, context: dict[str, object]) -> Text:
    """Render one template in one language."""
    template = _environment().get_template(template_name(event_key, audience, lang))
    # `audience` lets a shared part tell whom it is written for (a shelter's address).
    ctx = template.new_context({**_helpers(lang), "audience": audience, **context})

    def block(name: str) -> str | None:
        render_block = template.blocks.get(name)
        if render_block is None:
            return None
        return "".join(render_block(ctx)).strip()

    subject, body = block("subject"), block("body")
    if not subject or not body:
        raise LookupError(f"{template.name} must define the blocks subject and body")
    return Text(subject=" ".join(subject.split()), body=body + "\n", sms=block("sms"))


def render_bilingual(event_key: str, audience: str, context: dict[str, object]) -> Text:
    """Kazakh and Russian in one message (regional departments)."""
    kk = render(event_key, audience, "kk", context)
    ru = render(event_key, audience, "ru", context)
    return Text(
        subject=f"{kk.subject} / {ru.subject}",
        body=f"{kk.body}\n----------\n\n{ru.body}",
        sms=None,
    )
