"""The public referral form at an advocate's link, in the visitor's language (from the browser's
Accept-Language: English, German, Hebrew, Arabic, Chinese or Russian), right-to-left where the
script is; a plain page with no scripts and no outside assets."""

from __future__ import annotations

import html

from plugin.services.panel_messages import LANGUAGES, direction_of, language_of

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "You were recommended",
        "intro": "A member of our community thinks you would like to hear from us. "
        "Leave your details and we will get in touch.",
        "name": "Your name",
        "email": "Email",
        "company": "Company (optional)",
        "send": "Send",
        "thanks": "Thank you! We will be in touch soon.",
        "invalid": "This referral link is not valid.",
        "error": "Please check the fields marked below.",
    },
    "de": {
        "title": "Sie wurden empfohlen",
        "intro": "Ein Mitglied unserer Community meint, dass wir Sie interessieren "
        "könnten. Hinterlassen Sie Ihre Angaben, und wir melden uns.",
        "name": "Ihr Name",
        "email": "E-Mail",
        "company": "Firma (optional)",
        "send": "Senden",
        "thanks": "Vielen Dank! Wir melden uns bald.",
        "invalid": "Dieser Empfehlungslink ist nicht gültig.",
        "error": "Bitte prüfen Sie die markierten Felder.",
    },
    "he": {
        "title": "המליצו עליך",
        "intro": "חבר או חברה בקהילה שלנו חושבים שכדאי לך לשמוע מאיתנו. השאירו פרטים ונחזור אליכם.",
        "name": "השם שלך",
        "email": "דוא״ל",
        "company": "חברה (לא חובה)",
        "send": "שליחה",
        "thanks": "תודה! נחזור אליך בקרוב.",
        "invalid": "קישור ההפניה הזה אינו תקף.",
        "error": "נא לבדוק את השדות המסומנים.",
    },
    "ar": {
        "title": "لقد أوصى بك أحدهم",
        "intro": "يعتقد أحد أعضاء مجتمعنا أنك قد تهتم بما نقدمه. اترك بياناتك وسنتواصل معك.",
        "name": "اسمك",
        "email": "البريد الإلكتروني",
        "company": "الشركة (اختياري)",
        "send": "إرسال",
        "thanks": "شكرًا لك! سنتواصل معك قريبًا.",
        "invalid": "رابط الإحالة هذا غير صالح.",
        "error": "يرجى التحقق من الحقول المشار إليها.",
    },
    "zh": {
        "title": "有人向您推荐了我们",
        "intro": "我们社区的一位成员认为您会对我们感兴趣。留下您的联系方式，我们会与您联系。",
        "name": "您的姓名",
        "email": "电子邮箱",
        "company": "公司（可选）",
        "send": "提交",
        "thanks": "谢谢！我们会尽快与您联系。",
        "invalid": "此推荐链接无效。",
        "error": "请检查下方标出的字段。",
    },
    "ru": {
        "title": "Вас порекомендовали",
        "intro": "Участник нашего сообщества считает, что вам будет интересно "
        "узнать о нас. Оставьте свои данные, и мы свяжемся с вами.",
        "name": "Ваше имя",
        "email": "Эл. почта",
        "company": "Компания (необязательно)",
        "send": "Отправить",
        "thanks": "Спасибо! Мы скоро свяжемся с вами.",
        "invalid": "Эта реферальная ссылка недействительна.",
        "error": "Проверьте отмеченные поля.",
    },
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.5rem;font-size:1rem}"
    "button{margin-top:1.5rem;padding:.6rem 1.4rem;font-size:1rem}.error{color:#a00}"
)
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def best_language(accept_language: str | None) -> str:
    """The first language of the browser's list that the form speaks, else English."""
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip()
        language = language_of(tag)
        if tag and language in LANGUAGES and (language != "en" or tag.lower().startswith("en")):
            return language
    return "en"


def form_page(
    language: str,
    *,
    state: str,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> str:
    """``state``: ``form`` (with the values and errors of a failed try), ``thanks`` or ``invalid``."""
    t = TEXTS.get(language, TEXTS["en"])
    esc = html.escape
    body = [f"<h1>{esc(t['title'] if state == 'form' else t[state])}</h1>"]
    if state == "form":
        body.append(f"<p>{esc(t['intro'])}</p>")
        if errors:
            body.append(f'<p class="error">{esc(t["error"])}</p>')
        fields = []
        for name, kind, required in (
            ("name", "text", True),
            ("email", "email", True),
            ("company", "text", False),
        ):
            mark = f' <span class="error">{esc(errors[name])}</span>' if errors and name in errors else ""
            value = esc((values or {}).get(name, ""))
            req = " required" if required else ""
            fields.append(
                f'<label for="{name}">{esc(t[name])}{mark}</label>'
                f'<input id="{name}" name="{name}" type="{kind}" value="{value}" maxlength="255"{req}>'
            )
        body.append(
            '<form method="post">'
            + "".join(fields)
            + f'<button type="submit">{esc(t["send"])}</button></form>'
        )
    content = "\n".join(body)
    return (
        f'<!doctype html>\n<html lang="{language}" dir="{direction_of(language)}">\n'
        '<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="referrer" content="no-referrer">\n<title>{esc(t["title"])}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{content}\n</main>\n</body>\n</html>\n"
    )
