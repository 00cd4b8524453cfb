"""Pure rules of the portal: languages, what a public page may show, the simulation chart."""

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape

from ssu_contracts import RecipientCategory, ServiceForm, Subtype, region_of

LANGUAGES = ("kk", "ru")
DEFAULT_LANGUAGE = "kk"

# Sites of a license that covers one of these are shelters: their address is never public.
SHELTER_FORMS = frozenset({ServiceForm.TEMPORARY_STAY})
SHELTER_CATEGORIES = frozenset({RecipientCategory.DOMESTIC_VIOLENCE})

CATALOGUE_SORTS = ("name", "free", "region")


class PortalError(Exception):
    """A request the portal cannot serve; `key` names the message shown to the person."""

    status = 400

    def __init__(self, key: str, detail: str = "") -> None:
        super().__init__(detail or key)
        self.key = key
        self.detail = detail


class NotFound(PortalError):
    status = 404


class SignInRequired(PortalError):
    status = 401


class Forbidden(PortalError):
    status = 403


class UpstreamFailed(PortalError):
    """A service the portal acts through refused or could not be reached."""

    status = 502

    def __init__(self, key: str, detail: str = "", *, upstream_status: int | None = None):
        super().__init__(key, detail)
        self.upstream_status = upstream_status


def choose_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    """The page language: the one asked for, else the one kept, else the browser's, else kk."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return str(candidate)
    for part in (accept or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LANGUAGES:
            return tag
    return DEFAULT_LANGUAGE


def is_shelter(subtypes: Iterable[Subtype]) -> bool:
    return any(s.form in SHELTER_FORMS or s.category in SHELTER_CATEGORIES for s in subtypes)


def district_of(kato: str) -> str:
    """The district of a KATO code (`AB CD 00 000`): what a shelter's public entry shows."""
    return kato[:4] + "00000"


def public_address(address: str, kato: str, *, shelter: bool) -> str | None:
    """A site's address as a public page shows it: none for a shelter."""
    return None if shelter else address


def recipient_key(secret: str, iin: str) -> bytes:
    """A keyed hash of an IIN: counts people without holding who they are."""
    return hmac.new(secret.encode(), iin.encode(), hashlib.sha256).digest()


def normalise_query(q: str) -> str:
    return " ".join(q.split())[:200]


def looks_like_bin(q: str) -> bool:
    return len(q) == 12 and q.isdigit()


def region_code(kato: str) -> str:
    return region_of(kato)


@dataclass(frozen=True)
class Bar:
    label: str
    values: tuple[int, ...]


def bar_chart_svg(
    *,
    title: str,
    bars: Sequence[Bar],
    series: Sequence[str],
    width: int = 640,
    bar_height: int = 18,
) -> str:
    """A horizontal grouped bar chart as SVG markup, labelled for screen readers.

    Each bar group is a row (a provider group, a region); each series a bar in it, drawn in a
    colour that keeps 3:1 contrast against white and told apart by a legend and a pattern-free
    text value at the bar's end, so colour is never the only carrier of meaning.
    """
    colours = ("#1f4e9c", "#a3420f", "#2e6b30", "#6b2e6b")
    label_width = 220
    value_width = 60
    scale_width = width - label_width - value_width
    top = 30
    row_height = bar_height * len(series) + 12
    height = top + row_height * len(bars) + 10 + 20 * len(series)
    peak = max((v for b in bars for v in b.values), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="chart-title" '
        f'viewBox="0 0 {width} {height}">',
        f'<title id="chart-title">{escape(title)}</title>',
        f'<text x="0" y="18" font-size="15" font-weight="bold" fill="#111">{escape(title)}</text>',
    ]
    for i, bar in enumerate(bars):
        y0 = top + i * row_height
        parts.append(
            f'<text x="0" y="{y0 + bar_height}" font-size="13" fill="#111">'
            f"{escape(bar.label[:32])}</text>"
        )
        for j, value in enumerate(bar.values):
            y = y0 + j * bar_height
            length = round(scale_width * value / peak)
            colour = colours[j % len(colours)]
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{length}" height="{bar_height - 3}" '
                f'fill="{colour}"><title>{escape(series[j])}: {value}</title></rect>'
            )
            parts.append(
                f'<text x="{label_width + length + 4}" y="{y + bar_height - 5}" font-size="12" '
                f'fill="#111">{value}</text>'
            )
    legend_top = top + row_height * len(bars) + 10
    for j, name in enumerate(series):
        y = legend_top + 20 * j
        parts.append(
            f'<rect x="0" y="{y}" width="14" height="14" fill="{colours[j % len(colours)]}"/>'
        )
        parts.append(f'<text x="20" y="{y + 12}" font-size="13" fill="#111">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def money(value: Decimal) -> str:
    """KZT with a thin space between thousands and two decimals: 1 234 567.89."""
    text = f"{value:,.2f}"
    return text.replace(",", "\u202f")


def almaty_today() -> date:
    """Dates of the suite are Asia/Almaty calendar dates (DESIGN §3)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Almaty")).date()
