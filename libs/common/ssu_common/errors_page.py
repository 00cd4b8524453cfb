"""The short pages that explain each problem type (`/problems/<slug>`), in Kazakh, Russian and
English: what a client sees in a problem's `type` can be opened and read."""

from html import escape

from ssu_common.errors import KINDS, LANGUAGES, Language, ProblemKind

_HEADINGS = {
    "kk": "Бұл не және не істеу керек",
    "ru": "Что это и что делать",
    "en": "What it means",
}
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;"
    "color:#1a1a1a;background:#fff;line-height:1.5}code{background:#f2f2f2;padding:0 .2rem}"
    "a{color:#0645ad}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="kk"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _section(kind: ProblemKind, language: Language) -> str:
    return (
        f'<section lang="{language}"><h2>{escape(kind.title.pick(language))}</h2>'
        f"<p>{escape(kind.explanation.pick(language))}</p></section>"
    )


def kind_page(slug: str) -> str | None:
    kind = KINDS.get(slug)
    if kind is None:
        return None
    sections = "".join(_section(kind, language) for language in LANGUAGES)
    body = (
        f"<h1>{escape(kind.title.kk)} / {escape(kind.title.ru)}</h1>"
        f"<p><code>{escape(kind.type)}</code>, HTTP {kind.status}</p>{sections}"
        '<p><a href="/problems">/problems</a></p>'
    )
    return _page(f"{kind.title.kk} / {kind.title.ru}", body)


def index_page(service_title: str) -> str:
    items = "".join(
        f'<li><a href="{escape(k.type)}">{escape(k.title.kk)} / {escape(k.title.ru)}</a>'
        f" (<code>{escape(k.slug)}</code>, HTTP {k.status})</li>"
        for k in sorted(KINDS.values(), key=lambda k: (k.status, k.slug))
    )
    heading = f"{service_title}: қате түрлері / типы ошибок"
    return _page(heading, f"<h1>{escape(heading)}</h1><ul>{items}</ul>")
