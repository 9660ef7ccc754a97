"""The demo community's activity: about ``cfg.activities`` canonical records over ``cfg.months`` months.

``generate_activities`` yields plain dicts in exactly the form ``connectors.records.parse_record``
accepts (``record_to_dict(parse_record(d)) == d``), **in time order** (ties broken by person, source,
type). Ids are ``f"{source}-{n}"``, numbered in time order per source, so they are stable for a
given config. Everything is drawn from ``random.Random`` seeded by the config: no clock, no global
random state, no database.

The world: a vendor ("Nimbus") with a GitHub organization, a Discourse forum, a Slack community,
monthly webinars and quarterly meetups, quarterly NPS surveys, review sites, the product itself
(``product``: product_usage and referral) and billing (``billing``: purchase, one buyer per customer).
Engagement is heavy-tailed (45% of the people on open-ended platforms have 1-3 activities there, a few
have thousands); 12% go quiet 2-5 months before the end, 15% ramp up, 8% come in one burst.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from pathlib import Path
from random import Random
from typing import Any

import orjson

from plugin.demo.people import (
    COMMUNITY_PLATFORMS,
    DemoConfig,
    DemoOrganization,
    DemoPerson,
    generate_people,
    window,
)
from plugin.demo.render import REPOS, REVIEW_SITES, Campaign, Event, Item, Renderer

__all__ = [
    "DemoConfig",
    "DemoOrganization",
    "DemoPerson",
    "generate_activities",
    "generate_people",
    "window",
    "write_jsonl",
]

DAY = 86_400
YEAR = 365 * DAY
KINDS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {  # open-ended sources: types, weights
    "github": (
        ("issue_opened", "comment", "pr_opened", "pr_review", "star", "fork"),
        (12, 34, 12, 14, 20, 8),
    ),
    "discourse": (
        ("post", "reply", "answer", "reaction", "support_question", "feature_request"),
        (12, 36, 12, 26, 10, 4),
    ),
    "slack": (("post", "reply", "reaction"), (30, 40, 30)),
    "product": (("product_usage",), (1,)),
}
FOLLOW_UPS = {"pr_opened": ("pr_merged", 0.55), "answer": ("answer_accepted", 0.3)}
SOURCE_WEIGHT = {"github": 1.0, "discourse": 1.2, "slack": 1.6, "product": 2.0}
UTC_OFFSET = {
    "en-US": -5,
    "en-GB": 0,
    "de-DE": 1,
    "fr-FR": 1,
    "pt-BR": -3,
    "he-IL": 2,
    "ar-SA": 3,
    "zh-CN": 8,
    "ru-RU": 3,
    "ja-JP": 9,
}
CITIES = (
    ("Berlin", "berlin"),
    ("London", "london"),
    ("Tel Aviv", "tel-aviv"),
    ("New York", "new-york"),
    ("Dubai", "dubai"),
    ("Shanghai", "shanghai"),
    ("São Paulo", "sao-paulo"),
    ("Tokyo", "tokyo"),
)
WEBINARS = ("Webhooks", "Scoring", "CRM sync", "Exports", "SSO", "Dashboards")
NPS_HAPPY = (1, 1, 1, 2, 2, 3, 5, 10, 15, 30, 30)  # weights of 0..10
NPS_QUIET = (4, 4, 6, 8, 10, 12, 14, 14, 12, 8, 8)
STEADY, QUIET, RAMP, BURST = range(4)


@dataclass(slots=True)
class _Persona:
    join: int  # seconds after the window's start
    stop: int
    pattern: int
    offset: int  # the person's UTC offset in hours: activity happens in their daytime
    center: float  # of a burst


def _month(start: datetime, k: int, day: int, hour: int) -> datetime:
    index = start.year * 12 + start.month - 1 + k
    return datetime(index // 12, index % 12 + 1, day, hour, tzinfo=UTC)


def _calendar(start: datetime, cfg: DemoConfig) -> tuple[list[Event], list[Campaign]]:
    """Monthly webinars, quarterly meetups, a yearly summit (up to two months past the end: those only
    get registrations), and quarterly NPS campaigns. Times are seconds after ``start``."""
    events: list[tuple[datetime, str, str, str]] = []
    campaigns: list[tuple[datetime, str]] = []
    for k in range(cfg.months + 2):
        webinar = _month(start, k, 10, 16)
        stamp = f"{webinar:%Y-%m}"
        topic = WEBINARS[k % len(WEBINARS)]
        events.append((webinar, f"evt-{stamp}-webinar", f"Nimbus Office Hours: {topic}", "online"))
        if k % 3 == 1:
            city, slug = CITIES[k // 3 % len(CITIES)]
            events.append(
                (_month(start, k, 20, 17), f"evt-{stamp}-{slug}", f"Nimbus Meetup {city}", "in_person")
            )
        if webinar.month == 10:
            year = webinar.year
            events.append(
                (_month(start, k, 15, 8), f"evt-{year}-summit", f"Nimbus Summit {year}", "in_person")
            )
        if webinar.month % 3 == 0 and k < cfg.months:
            campaigns.append((_month(start, k, 5, 10), f"nps-{webinar.year}-q{webinar.month // 3}"))

    def rel(when: datetime) -> int:
        return int((when - start).total_seconds())

    return (
        [(rel(when), eid, name, fmt) for when, eid, name, fmt in sorted(events)],
        [(rel(when), sid) for when, sid in campaigns],
    )


def _open_sources(person: DemoPerson) -> list[str]:
    product = ["product"] if "product" in person.user_ids else []
    return [p for p in COMMUNITY_PLATFORMS if p in person.platforms] + product


def _allocate(rng: Random, active: list[int], total: int) -> dict[int, int]:
    """Heavy-tailed counts summing to ``total``: 45% lurkers with 1-3, the rest Pareto-weighted."""
    counts = {i: rng.choice((1, 1, 1, 2, 2, 3)) for i in rng.sample(active, int(len(active) * 0.45))}
    rest = [i for i in active if i not in counts]
    if not rest:
        return counts
    weights = [min(rng.paretovariate(1.2), 150.0) for _ in rest]
    scale = max(total - sum(counts.values()), len(rest)) / sum(weights)
    counts.update((i, max(1, int(w * scale))) for i, w in zip(rest, weights, strict=True))
    short = total - sum(counts.values())
    for i in rng.choices(rest, weights, k=max(0, short)):
        counts[i] += 1
    return counts


class _Planner:
    """Decides who does what when: compact tuples, sorted by time once everything is planned."""

    def __init__(self, rng: Random, span: int, weekday: int) -> None:
        self.rng, self.span, self.weekday = rng, span, weekday
        self.items: list[Item] = []
        self.links = 0

    def add(self, t: int, i: int, source: str, kind: str, a: int = 0, b: int = 0) -> None:
        self.items.append((t, i, source, kind, a, b))

    def persona(self, person: DemoPerson) -> _Persona:
        rng, span = self.rng, self.span
        # a third were members before the window; the community grows
        join = 0 if rng.random() < 0.3 else int(span * 0.92 * rng.random() ** 1.3)
        roll = rng.random()
        pattern = QUIET if roll < 0.12 else RAMP if roll < 0.27 else BURST if roll < 0.35 else STEADY
        stop = span - int(rng.uniform(60, 150) * DAY) if pattern == QUIET else span
        if stop - join < 45 * DAY:
            pattern, stop = STEADY, span
        return _Persona(join, stop, pattern, UTC_OFFSET.get(person.locale, 0), rng.random())

    def when(self, ps: _Persona) -> int:
        """A moment in the person's active period, on a weekday more often than not, in their daytime."""
        rng = self.rng
        u = rng.random()
        if ps.pattern == RAMP:
            u **= 0.4
        elif ps.pattern == BURST:
            u = min(1.0, max(0.0, ps.center + (u - 0.5) * 0.15))
        day = (ps.join + int(u * (ps.stop - ps.join))) // DAY
        weekday = (day + self.weekday) % 7
        if weekday >= 5 and rng.random() < 0.6:
            day -= weekday - 4
        t = day * DAY + int((8 + 14 * rng.random() - ps.offset) % 24 * 3600)
        if t >= self.span:  # local daytime of the last day can be past the end in UTC
            t -= DAY
        return min(max(t, 0), self.span - 1)

    def fixed(
        self, i: int, person: DemoPerson, ps: _Persona, events: list[Event], campaigns: list[Campaign]
    ) -> None:
        """Registrations and check-ins, survey answers, reviews and purchases."""
        rng, span = self.rng, self.span
        if "events" in person.platforms:
            until = ps.stop + (0 if ps.pattern == QUIET else 45 * DAY)
            near = [k for k, ev in enumerate(events) if ps.join - 20 * DAY <= ev[0] <= until]
            near = near or [rng.randrange(len(events))]
            for k in rng.sample(near, min(len(near), 1 + (rng.random() < 0.45) + (rng.random() < 0.2))):
                start = events[k][0]
                registered = start - rng.randrange(DAY, 30 * DAY)
                if registered < 0 < start:  # an event early in the window
                    registered = rng.randrange(start)
                if 0 <= registered < span:
                    self.add(registered, i, "events", "event_registered", k)
                    if start < span - 3600 and rng.random() < 0.6:
                        self.add(start + rng.randrange(1800), i, "events", "event_attended", k)
        if "surveys" in person.platforms and campaigns:
            mine = [c for c, (t, _) in enumerate(campaigns) if ps.join - 30 * DAY <= t <= ps.stop]
            answered = [c for c in mine if rng.random() < 0.5] or [mine[-1] if mine else len(campaigns) - 1]
            for c in answered:
                t = campaigns[c][0] + int(rng.expovariate(1 / (2 * DAY)))
                score = rng.choices(range(11), NPS_QUIET if ps.pattern == QUIET else NPS_HAPPY)[0]
                if t < span:
                    self.add(t, i, "surveys", "survey_response", c, score)
        if "reviews" in person.platforms:
            for site in rng.sample(range(len(REVIEW_SITES)), 2 if rng.random() < 0.15 else 1):
                weights = (15, 20, 30, 25, 10) if ps.pattern == QUIET else (3, 4, 10, 35, 48)
                self.add(self.when(ps), i, "reviews", "review", site, rng.choices(range(1, 6), weights)[0])
        if "billing" in person.user_ids:
            first = rng.randrange(0, YEAR)
            for year, t in enumerate(range(first, span, YEAR)):
                self.add(t, i, "billing", "purchase", year)

    def open(self, i: int, person: DemoPerson, ps: _Persona, n: int, population: int) -> None:
        """``n`` activities on GitHub, Discourse, Slack and in the product, with their follow-ups."""
        rng, span = self.rng, self.span
        sources = _open_sources(person)
        weights = [SOURCE_WEIGHT[s] * (0.3 + 1.4 * rng.random()) for s in sources]
        per = Counter(rng.choices(sources, weights, k=n))
        for source in sources:
            m = per[source]
            if not m:
                continue
            kinds = rng.choices(*KINDS[source], k=m)
            when = self.when
            times = sorted([when(ps) for _ in range(m)])
            extra = (
                rng.choices(range(len(REPOS)), cum_weights=(5, 8, 10, 11), k=m)
                if source == "github"
                else [0] * m
            )
            links = [0] * m
            if source == "slack":
                kinds[0] = "member_joined"
            elif source == "product" and m >= 10 and rng.random() < 0.2:
                kinds[-1], extra[-1] = "referral", rng.randrange(population)
            for j in range(m - 1):
                follow = FOLLOW_UPS.get(kinds[j])
                if follow and rng.random() < follow[1]:
                    later = times[j] + 600 + int(rng.expovariate(1 / (2 * DAY)))
                    if later < span:
                        self.links += 1
                        kinds[j + 1], times[j + 1], extra[j + 1] = follow[0], later, extra[j]
                        links[j] = links[j + 1] = self.links
            self.items.extend(zip(times, repeat(i), repeat(source), kinds, extra, links))


def generate_activities(cfg: DemoConfig, people: Sequence[DemoPerson]) -> Iterator[dict[str, Any]]:
    """About ``cfg.activities`` canonical record dicts for ``people`` (from :func:`generate_people`)."""
    start, end = window(cfg)
    span = int((end - start).total_seconds())
    rng = Random(f"{cfg.seed}:activities")  # noqa: S311 - a reproducible demo, not a secret
    events, campaigns = _calendar(start, cfg)
    planner = _Planner(rng, span, start.weekday())
    personas = [planner.persona(p) for p in people]
    for i, person in enumerate(people):
        planner.fixed(i, person, personas[i], events, campaigns)
    active = [i for i, p in enumerate(people) if _open_sources(p)]
    counts = _allocate(rng, active, cfg.activities - len(planner.items))
    for i in active:
        ps = personas[i]
        if counts.get(i, 0) > 40:  # the very active have been around for a while
            ps.join = int(ps.join * 0.6 * rng.random())
        planner.open(i, people[i], ps, counts.get(i, 0), len(people))
    items = planner.items
    items.sort()
    renderer = Renderer(cfg.seed, people, start, events, campaigns)
    for item in items:
        yield renderer.render(item)


def write_jsonl(records: Iterable[dict[str, Any]], path: Path) -> int:
    """Write one JSON object per line (UTF-8, no BOM) and return how many were written."""
    count = 0
    with path.open("wb") as fh:
        for record in records:
            fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            count += 1
    return count
