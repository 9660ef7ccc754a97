"""What a member reads about an insight panel, in their language: the invitation and reminder
text that ``focus_group.invitation`` / ``focus_group.reminder`` carry to the company's email or
survey tool (so every receiver sends the same careful words), and the small page the personal
accept and decline links open.

The page for a link only asks: it shows one button in a POST form and changes nothing itself,
because mail scanners and link previews open (GET) every link in an email. The page is plain
HTML with inline CSS, no script and no external asset, so it works in any browser and leaks the
personal link to no one; every value put in it is escaped.

Right-to-left languages (Hebrew, Arabic) get ``direction="rtl"``, and in their text each inserted
value (the name, the panel, the deadline, the two links) is wrapped in Unicode isolation marks,
U+2068 … U+2069, so a Latin URL or name is not reordered by the right-to-left text around it.
The deadline is written ``2026-05-18 21:59 UTC`` in every language: no month names, no local
time zone to guess. Names and panel names are kept exactly as written, in any script.

The words themselves are in :mod:`plugin.services.panel_texts`, one table per language.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from plugin.services.panel_texts import TEXTS

LANGUAGES: tuple[str, ...] = ("en", "de", "he", "ar", "zh", "ru")
RTL: frozenset[str] = frozenset({"he", "ar"})
KINDS = ("invitation", "reminder")
STATES = ("confirm_accept", "confirm_decline", "accepted", "declined", "expired", "invalid")
# Old codes still sent by some systems (Java's Locale gave "iw" for Hebrew).
_ALIASES = {"iw": "he"}
_FSI, _PDI = "\u2068", "\u2069"
_STYLE = (
    "body{margin:0;padding:2rem 1rem;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;"
    "color:#1d1d1f;background:#f4f4f2}"
    "main{max-width:32rem;margin:0 auto;padding:1.5rem;background:#fff;border-radius:8px}"
    "h1{margin:0 0 .75rem;font-size:1.4rem;line-height:1.3}"
    ".panel{font-weight:600}"
    "button{font:inherit;padding:.6rem 1.2rem;border:0;border-radius:6px;background:#1f5fbf;"
    "color:#fff;cursor:pointer}"
    "button:focus-visible{outline:3px solid #f0b429;outline-offset:2px}"
)
# Only inline styles, nothing loaded, and the form may only go back to Flywheel itself.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'"


@dataclass(frozen=True)
class Message:
    """An invitation or reminder ready to send: ``locale`` is the language it is written in,
    ``direction`` is ``"ltr"`` or ``"rtl"`` (for the email body's ``dir``), ``text`` is plain text."""

    locale: str
    direction: str  # "ltr" | "rtl"
    subject: str
    text: str

    def as_dict(self) -> dict[str, str]:
        return {
            "locale": self.locale,
            "direction": self.direction,
            "subject": self.subject,
            "text": self.text,
        }


def language_of(locale: str | None) -> str:
    """The language of a BCP 47 tag (``he-IL`` gives ``he``, ``zh_Hans_CN`` gives ``zh``), or
    ``en`` when it is none of :data:`LANGUAGES` (or there is no tag)."""
    if not locale:
        return "en"
    language = locale.strip().replace("_", "-").split("-", 1)[0].lower()
    language = _ALIASES.get(language, language)
    return language if language in LANGUAGES else "en"


def direction_of(language: str) -> str:
    return "rtl" if language in RTL else "ltr"


def render(
    kind: str,
    locale: str | None,
    *,
    name: str | None,
    panel: str,
    accept_url: str,
    decline_url: str,
    deadline: datetime,
) -> Message:
    """The ``kind`` (``"invitation"`` or ``"reminder"``) message for a member whose locale is
    ``locale``: greeting (by name when known), what the panel is, the deadline, the accept and
    the decline link each on a line of its own, and that declining has no other consequence."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if not isinstance(panel, str) or not panel.strip():
        raise ValueError("panel must be the panel's name")
    if "\n" in panel or "\r" in panel:
        raise ValueError("panel must be one line (it goes into the subject)")
    language = language_of(locale)
    t = TEXTS[language]
    rtl = language in RTL

    def value(text: str) -> str:
        return f"{_FSI}{text}{_PDI}" if rtl else text

    values = {
        "name": value(name) if name and name.strip() else "",
        "panel": value(panel),
        "deadline": value(_deadline(deadline)),
    }
    values |= {
        "accept_url": value(_url(accept_url, "accept_url")),
        "decline_url": value(_url(decline_url, "decline_url")),
    }
    lines = (
        t["greeting.name" if values["name"] else "greeting"],
        "",
        t[f"{kind}.intro"],
        t[f"{kind}.answer_by"],
        "",
        t["accept"],
        "{accept_url}",
        "",
        t["decline"],
        "{decline_url}",
        "",
        t["free_to_decline"],
        "",
        t["thanks"],
    )
    # Only the templates are formatted: a "{" inside a name, panel or URL is left as it is.
    text = "\n".join(line.format_map(values) for line in lines)
    subject = t[f"{kind}.subject"].format_map(values)
    return Message(language, direction_of(language), subject, text + "\n")


def page(locale: str | None, *, state: str, panel: str, action_url: str | None = None) -> str:
    """The whole HTML page a personal panel link opens, in the member's language. ``state`` is
    one of :data:`STATES`: the two ``confirm_*`` pages show one button in a POST form to
    ``action_url`` (required for them, unused by the others); ``accepted``/``declined`` confirm
    the answer; ``expired`` and ``invalid`` say the link cannot be used and nothing changed.
    ``panel`` is shown under the title when not empty (pass ``""`` when the link is unknown)."""
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}, not {state!r}")
    language = language_of(locale)
    t = TEXTS[language]
    esc = html.escape
    title = esc(t[f"{state}.title"])
    body = [f"<h1>{title}</h1>"]
    if panel and panel.strip():
        body.append(f'<p class="panel"><bdi>{esc(panel)}</bdi></p>')
    body.append(f"<p>{esc(t[f'{state}.text'])}</p>")
    if state.startswith("confirm_"):
        if not action_url:
            raise ValueError(f"the {state} page needs the action_url its form posts to")
        action = esc(_action(action_url))
        button = esc(t[f"{state}.button"])
        body.append(f'<form method="post" action="{action}"><button type="submit">{button}</button></form>')
    content = "\n".join(body)
    return (
        "<!doctype html>\n"
        f'<html lang="{language}" dir="{direction_of(language)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="robots" content="noindex, nofollow">\n'
        f"<title>{title}</title>\n"
        f"<style>{_STYLE}</style>\n"
        "</head>\n"
        "<body>\n"
        f"<main>\n{content}\n</main>\n"
        "</body>\n"
        "</html>\n"
    )


def _deadline(when: datetime) -> str:
    if not isinstance(when, datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("deadline must be a timezone-aware datetime (a naive one is ambiguous)")
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _url(url: str, what: str) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(c.isspace() for c in url)
    ):
        raise ValueError(f"{what} must be an absolute http(s) URL without spaces")
    return url


def _action(url: str) -> str:
    """The form's target: a path on Flywheel (``/p/...``) or an absolute http(s) URL."""
    if url.startswith("/") and not url.startswith("//"):
        if any(c.isspace() for c in url):
            raise ValueError("action_url must not contain spaces")
        return url
    return _url(url, "action_url")
