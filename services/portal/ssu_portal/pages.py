"""Rendering: the Jinja2 environment, the kk/ru message files and the reference names."""

from functools import cache
from pathlib import Path
from urllib.parse import urlencode

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from ssu_contracts import REGIONS, RecipientCategory, ServiceForm, name_of

from ssu_portal.domain import LANGUAGES, money

HERE = Path(__file__).parent


@cache
def messages(lang: str) -> dict[str, str]:
    """Every string a person reads, in one language (`messages/<lang>.yaml`)."""
    text = (HERE / "messages" / f"{lang}.yaml").read_text(encoding="utf-8")
    return {str(k): str(v) for k, v in yaml.safe_load(text).items()}


def _names(kind: str, lang: str) -> list[tuple[str, str]]:
    if kind == "region":
        codes = sorted(REGIONS, key=lambda c: name_of("region", c, lang))
    elif kind == "form":
        codes = [str(f) for f in ServiceForm]
    else:
        codes = [str(c) for c in RecipientCategory]
    return [(code, name_of(kind, code, lang)) for code in codes]


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["name_of"] = name_of
    env.globals["choices"] = _names
    env.filters["money"] = money
    env.filters["svg"] = Markup  # only for SVG markup the portal itself drew
    return env


def render(template: str, *, lang: str, path: str, query: dict[str, str], **context: object) -> str:
    """A page in one language, with the link to the same page in the other."""
    other = next(code for code in LANGUAGES if code != lang)
    switch = f"{path}?{urlencode({**query, 'lang': other})}"
    return (
        environment()
        .get_template(template)
        .render(
            lang=lang,
            other_lang=other,
            switch_url=switch,
            t=messages(lang),
            other_t=messages(other),
            path=path,
            **context,
        )
    )
