"""The people and organizations of the demo world: who they are, where they work, where they show up.

Everything is drawn from ``random.Random`` and per-locale ``Faker`` instances seeded from the
config's seed, so the same config always gives the same world. No clock, no global random state.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from random import Random

from faker import Faker
from faker.decode import unidecode

from plugin.services.domains import is_company_domain

COMMUNITY_PLATFORMS = ("github", "discourse", "slack")
OTHER_PLATFORMS = ("events", "reviews", "surveys")
CONSENT_PURPOSES = ("marketing", "research", "sales")


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 7
    members: int = 5000
    activities: int = 200_000
    months: int = 18
    end: datetime = datetime(2026, 11, 1, tzinfo=UTC)  # the demo's "now"; deterministic, not the clock


@dataclass(frozen=True)
class DemoPerson:
    """One real person of the demo world (who may have several identities, one per platform)."""

    person_id: int
    name: str
    email: str
    locale: str  # BCP 47, e.g. "he-IL"
    title: str | None
    company: str | None
    company_domain: str | None
    company_size: int | None
    industry: str | None
    lifecycle_stage: str
    platforms: tuple[str, ...]  # among COMMUNITY_PLATFORMS + OTHER_PLATFORMS
    handles: dict[str, str]  # github / discourse / slack handle
    consents: dict[str, bool]  # purpose -> granted
    #: The platform's own user id per source: every platform in ``platforms``, plus "product" for
    #: product users and "billing" for the one buyer of each customer organization.
    user_ids: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DemoOrganization:
    domain: str
    name: str
    size: int
    industry: str
    customer: bool


@dataclass(frozen=True)
class _Locale:
    faker: str
    tag: str
    weight: float
    tld: str
    free_mail: tuple[str, ...]


LOCALES = (
    _Locale("en_US", "en-US", 24, "com", ("gmail.com", "outlook.com", "yahoo.com", "icloud.com")),
    _Locale("en_GB", "en-GB", 8, "co.uk", ("gmail.com", "outlook.com", "btinternet.com", "hotmail.co.uk")),
    _Locale("de_DE", "de-DE", 13, "de", ("gmail.com", "web.de", "gmx.de", "t-online.de")),
    _Locale("fr_FR", "fr-FR", 5, "fr", ("gmail.com", "orange.fr", "free.fr", "laposte.net")),
    _Locale("pt_BR", "pt-BR", 5, "com.br", ("gmail.com", "uol.com.br", "bol.com.br", "outlook.com")),
    _Locale("he_IL", "he-IL", 8, "co.il", ("gmail.com", "outlook.com", "hotmail.com")),
    _Locale("ar_SA", "ar-SA", 8, "com.sa", ("gmail.com", "hotmail.com", "outlook.com")),
    _Locale("zh_CN", "zh-CN", 12, "cn", ("qq.com", "163.com", "126.com", "sina.com")),
    _Locale("ru_RU", "ru-RU", 10, "ru", ("yandex.ru", "mail.ru", "rambler.ru", "gmail.com")),
    _Locale("ja_JP", "ja-JP", 5, "co.jp", ("gmail.com", "yahoo.co.jp")),
)
INDUSTRIES = {
    "Software": ("Software", "Labs", "Systems"),
    "Fintech": ("Pay", "Capital", "Finance"),
    "Healthcare": ("Health", "Medical"),
    "E-commerce": ("Commerce", "Retail"),
    "Manufacturing": ("Industries", "Robotics"),
    "Education": ("Learning", "Academy"),
    "Media": ("Media", "Studios"),
    "Logistics": ("Logistics", "Freight"),
    "Telecommunications": ("Telecom", "Networks"),
    "Gaming": ("Games", "Interactive"),
    "Consulting": ("Consulting", "Partners"),
}
STEMS = (
    "North",
    "Blue",
    "Bright",
    "Iron",
    "Cedar",
    "Nova",
    "Silver",
    "Vertex",
    "Orbit",
    "Summit",
    "Harbor",
    "Pioneer",
    "Atlas",
    "Lumen",
    "Zephyr",
    "Granite",
    "Maple",
    "Falcon",
    "Quartz",
    "Helix",
    "Beacon",
    "Cobalt",
    "Ember",
    "Juniper",
    "Meridian",
    "Onyx",
    "Polar",
    "Redwood",
)
TAILS = ("wind", "peak", "stone", "bridge", "field", "works", "line", "gate", "point", "wave", "", "", "")
LEGAL = {"de_DE": " GmbH", "fr_FR": " SAS", "pt_BR": " Ltda.", "he_IL": " Ltd.", "en_GB": " Ltd"}
SIZES = ((10, 50), (51, 250), (251, 1000), (1001, 5000), (5001, 50_000))
SIZE_WEIGHTS = (35, 30, 17, 10, 8)
SENIOR = (
    "CTO",
    "VP Engineering",
    "Head of Data",
    "Director of Engineering",
    "Head of Developer Relations",
    "Chief Product Officer",
    "VP Marketing",
    "Head of Customer Success",
)
MID = (
    "Engineering Manager",
    "Product Manager",
    "Data Scientist",
    "DevOps Engineer",
    "Staff Engineer",
    "Solutions Architect",
    "Community Manager",
    "Marketing Manager",
)
JUNIOR = (
    "Software Engineer",
    "Developer",
    "Backend Developer",
    "Frontend Developer",
    "Data Analyst",
    "QA Engineer",
    "Support Engineer",
    "Junior Developer",
)
INDEPENDENT = (
    "Student",
    "Freelance Developer",
    "Independent Consultant",
    "Open Source Maintainer",
    "Software Engineer",
    None,
)
PROSPECT_STAGES = (
    ("lead", 40),
    ("marketingqualifiedlead", 25),
    ("opportunity", 15),
    ("subscriber", 15),
    ("salesqualifiedlead", 5),
)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
#: per platform: the user id's prefix and numeric range
_ID_FORMATS = {
    "github": ("", 10**5, 2 * 10**8),
    "discourse": ("", 2, 10**6),
    "slack": ("U0", 10**9, 10**10),
    "events": ("att-", 10**5, 10**7),
    "reviews": ("rv-", 10**5, 10**7),
    "surveys": ("resp-", 10**5, 10**7),
    "product": ("usr_", 10**5, 10**7),
    "billing": ("cus_", 10**5, 10**7),
}
_FAKERS: dict[str, Faker] = {}  # one per locale, re-seeded by every call: building them is the slow part


def window(cfg: DemoConfig) -> tuple[datetime, datetime]:
    """[start, end) of the demo's activity: ``cfg.months`` calendar months ending at ``cfg.end``, in UTC."""
    end = cfg.end.astimezone(UTC)
    index = end.year * 12 + end.month - 1 - cfg.months
    return end.replace(year=index // 12, month=index % 12 + 1, day=min(end.day, 28)), end


def roman(text: str) -> str:
    """An ASCII, lowercase, alphanumeric rendering of a name part, for emails and handles."""
    return _NOT_ALNUM.sub("", unidecode(text.translate(_GERMAN)).lower())


def _faker(locale: str, seed: int) -> Faker:
    if locale not in _FAKERS:  # only the providers used here; unweighted picks are ~30x faster for en_US
        providers = ["faker.providers.person", "faker.providers.company", "faker.providers.internet"]
        _FAKERS[locale] = Faker(locale, providers=providers, use_weighting=False)
    fake = _FAKERS[locale]
    fake.seed_instance(seed)
    return fake


def _unique(stem: str, used: set[str], suffix: str = "") -> str:
    """``stem + suffix``, or ``stem + "2" + suffix``... whichever is not in ``used`` yet (then it is)."""
    value, n = stem + suffix, 1
    while value in used:
        n += 1
        value = f"{stem}{n}{suffix}"
    used.add(value)
    return value


def _organizations(
    rng: Random, fakers: dict[str, Faker], count: int
) -> list[tuple[DemoOrganization, _Locale]]:
    out: list[tuple[DemoOrganization, _Locale]] = []
    used: set[str] = set()
    weights = [loc.weight for loc in LOCALES]
    for _ in range(count):
        loc = rng.choices(LOCALES, weights)[0]
        fake = fakers[loc.faker]
        industry = rng.choice(sorted(INDUSTRIES))
        kind = rng.choice(INDUSTRIES[industry])
        if loc.faker in ("zh_CN", "ru_RU", "ja_JP"):  # native company names, romanised domains
            name = fake.company()
            if loc.faker == "ja_JP":
                label = fake.last_romanized_name()
            elif loc.faker == "zh_CN":
                label = name[:2]  # the trade name: 诺依 of 诺依曼软件科技有限公司
            else:
                label = name.split("«")[-1].split("»")[0]  # Блохин-Егорова of ЗАО «Блохин-Егорова»
        else:
            local_name = loc.faker in LEGAL and rng.random() < 0.4
            base = fake.last_name() if local_name else rng.choice(STEMS) + rng.choice(TAILS)
            name = f"{base} {kind}{LEGAL.get(loc.faker, '')}"
            label = base if rng.random() < 0.5 else f"{base}-{kind}"
        slug = "-".join(filter(None, (roman(part) for part in re.split(r"[\s\-]+", label)))) or "company"
        domain = f"{slug}.{loc.tld}"
        while domain in used or not is_company_domain(domain):
            domain = f"{slug}{rng.randrange(2, 99)}.{loc.tld}"
        used.add(domain)
        low, high = rng.choices(SIZES, SIZE_WEIGHTS)[0]
        size = int(math.exp(rng.uniform(math.log(low), math.log(high))))
        customer = rng.random() < (0.25 if size < 1000 else 0.4)
        out.append((DemoOrganization(domain, name, size, industry, customer), loc))
    return out


def _name(fake: Faker, loc: _Locale, female: bool) -> tuple[str, str, str]:
    """(name in the locale's script, romanised given name, romanised family name)."""
    if loc.faker == "ja_JP":
        given = fake.first_name_female_pair() if female else fake.first_name_male_pair()
        family = fake.last_name_pair()
        return f"{family[0]} {given[0]}", roman(given[2]), roman(family[2])
    first = fake.first_name_female() if female else fake.first_name_male()
    if loc.faker == "ru_RU":
        last = fake.last_name_female() if female else fake.last_name_male()
    else:
        last = fake.last_name()
    name = f"{last}{first}" if loc.faker == "zh_CN" else f"{first} {last}"
    return name, roman(first) or "member", roman(last) or "x"


def _title_and_stage(rng: Random, org: DemoOrganization | None) -> tuple[str | None, str]:
    if org is None:
        stage = rng.choices(("subscriber", "lead", "other"), (60, 35, 5))[0]
        return rng.choice(INDEPENDENT), stage
    senior = 0.25 if org.size < 50 else 0.1
    roll = rng.random()
    title = rng.choice(SENIOR if roll < senior else MID if roll < senior + 0.3 else JUNIOR)
    if org.customer:
        return title, "customer"
    return title, rng.choices([s for s, _ in PROSPECT_STAGES], [w for _, w in PROSPECT_STAGES])[0]


def _platforms(rng: Random) -> tuple[str, ...]:
    count = rng.choices((0, 1, 2, 3), (15, 55, 22, 8))[0]  # community platforms: 30% on two or three
    chosen = rng.sample(COMMUNITY_PLATFORMS, count) if count else []
    for other, share in zip(OTHER_PLATFORMS, (0.22, 0.06, 0.14), strict=True):
        if len(chosen) < 3 and rng.random() < (share * 3 if count == 0 else share):
            chosen.append(other)
    if not chosen:
        chosen.append(rng.choice(OTHER_PLATFORMS))
    order = COMMUNITY_PLATFORMS + OTHER_PLATFORMS
    return tuple(sorted(chosen, key=order.index))


def generate_people(cfg: DemoConfig) -> tuple[list[DemoPerson], list[DemoOrganization]]:
    """About ``cfg.members`` people and ``cfg.members * 6%`` organizations (300 for 5,000 people)."""
    rng = Random(f"{cfg.seed}:people")  # noqa: S311 - a reproducible demo, not a secret
    fakers = {loc.faker: _faker(loc.faker, cfg.seed * 100 + i) for i, loc in enumerate(LOCALES)}
    orgs = _organizations(rng, fakers, max(5, round(cfg.members * 0.06)))
    org_weights = [1 + math.log10(org.size) ** 2 for org, _ in orgs]
    locale_weights = [loc.weight for loc in LOCALES]
    # who works where and in which locale; then a handful of namesakes at the same company
    seats: list[tuple[_Locale, int | None]] = []
    for _ in range(cfg.members):
        if rng.random() < 0.65:
            k = rng.choices(range(len(orgs)), org_weights)[0]
            own = orgs[k][1] if rng.random() < 0.75 else rng.choices(LOCALES, locale_weights)[0]
            seats.append((own, k))
        else:
            seats.append((rng.choices(LOCALES, locale_weights)[0], None))
    names = [_name(fakers[loc.faker], loc, rng.random() < 0.45) for loc, _ in seats]
    colleagues: dict[int, list[int]] = {}
    for i, (_, company) in enumerate(seats):
        if company is not None:
            colleagues.setdefault(company, []).append(i)
    shared = sorted(k for k, idx in colleagues.items() if len(idx) >= 2)
    for k in rng.sample(shared, min(len(shared), max(2, cfg.members // 1000))):
        first, second = colleagues[k][:2]
        seats[second], names[second] = (seats[first][0], k), names[first]

    roles = [_title_and_stage(rng, orgs[at][0] if at is not None else None) for _, at in seats]
    buyers: dict[int, int] = {}  # organization -> its buyer: the last senior person, else the first one
    for i, ((_, at), (title, _)) in enumerate(zip(seats, roles, strict=True)):
        if at is not None and orgs[at][0].customer and (at not in buyers or title in SENIOR):
            buyers[at] = i
    buying = set(buyers.values())

    people: list[DemoPerson] = []
    emails: set[str] = set()
    handles_used: dict[str, set[str]] = {p: set() for p in COMMUNITY_PLATFORMS}
    ids_used: set[str] = set()
    for i, (seat, (name, given, family), (title, stage)) in enumerate(zip(seats, names, roles, strict=True)):
        loc, at = seat
        org = orgs[at][0] if at is not None else None
        if org is not None:
            local = rng.choice((f"{given}.{family}", f"{given[0]}{family}", f"{given}_{family}", given))
            domain = org.domain
        else:
            domain = rng.choice(loc.free_mail)
            if domain in ("qq.com", "163.com") and rng.random() < 0.6:
                local = str(rng.randrange(10**7, 10**10))
            elif rng.random() < 0.3:
                local = fakers["en_US"].user_name()
            else:
                local = f"{given}.{family}{rng.randrange(100) if rng.random() < 0.5 else ''}"
        email = _unique(local, emails, f"@{domain}")
        platforms = _platforms(rng)
        handles: dict[str, str] = {}
        for platform in COMMUNITY_PLATFORMS:
            if platform not in platforms:
                continue
            same = handles.get("github", "")  # the same handle on both: a merge suggestion later
            taken = same in handles_used[platform]
            if platform == "discourse" and same and not taken and rng.random() < 0.25:
                handles[platform] = same
                handles_used[platform].add(same)
                continue
            styles = (f"{given}{family}", f"{given}-{family}", f"{given[0]}{family}", f"{given}.{family}")
            base = rng.choice(styles)
            if platform == "github" and rng.random() < 0.3:
                base = fakers["en_US"].user_name()
            handles[platform] = _unique(base, handles_used[platform])
        user_ids = {p: _user_id(rng, p, ids_used) for p in platforms}
        if rng.random() < {"customer": 0.7, "opportunity": 0.5}.get(stage, 0.0):
            user_ids["product"] = _user_id(rng, "product", ids_used)
        if i in buying:
            user_ids["billing"] = _user_id(rng, "billing", ids_used)
        marketing = 0.4 if loc.faker in ("de_DE", "fr_FR") else 0.55
        consents = {
            "marketing": rng.random() < marketing,
            "research": rng.random() < 0.35,
            "sales": rng.random() < (0.45 if stage == "customer" else 0.2),
        }
        people.append(
            DemoPerson(
                i + 1,
                name,
                email,
                loc.tag,
                title,
                org.name if org else None,
                org.domain if org else None,
                org.size if org else None,
                org.industry if org else None,
                stage,
                platforms,
                handles,
                consents,
                user_ids,
            )
        )
    return people, [org for org, _ in orgs]


def _user_id(rng: Random, platform: str, used: set[str]) -> str:
    prefix, low, high = _ID_FORMATS[platform]
    while True:
        value = f"{prefix}{rng.randrange(low, high)}"
        if f"{platform}:{value}" not in used:
            used.add(f"{platform}:{value}")
            return value
