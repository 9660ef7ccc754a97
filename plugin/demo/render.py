"""Turning the demo community's planned activity into canonical record dicts, in time order.

Issue and pull request numbers, forum topics and ids (``f"{source}-{n}"``) are handed out in the
order the items are rendered, so the items must come in time order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from random import Random
from typing import Any, TypeVar

from plugin.demo.people import DemoPerson
from plugin.demo.phrases import CATEGORIES, GITHUB_COMMENTS, GITHUB_TITLES, NATIVE_SHARE, PHRASES

T = TypeVar("T")
Item = tuple[int, int, str, str, int, int]  # (t, person index, source, type, a, b)
Event = tuple[int, str, str, str]  # (t, event id, name, format)
Campaign = tuple[int, str]  # (t, survey id)

REPOS = ("nimbus-hq/nimbus", "nimbus-hq/nimbus-python", "nimbus-hq/nimbus-js", "nimbus-hq/helm-charts")
REVIEW_SITES = ("G2", "Capterra", "TrustRadius")
FEATURES = ("dashboards", "segments", "exports", "webhooks", "crm_sync", "scoring", "api")
EMOJI = ("+1", "heart", "tada", "eyes", "rocket", "pray")
REVIEW_STATES = ("approved", "approved", "commented", "changes_requested")
SLACK_CHANNELS = ("#general", "#help", "#dev")
FORUM_CATEGORY = {
    "support_question": "Support",
    "answer": "Support",
    "answer_accepted": "Support",
    "feature_request": "Ideas",
}
TOPIC_KEY = {"post": "post", "support_question": "question", "feature_request": "idea"}
MINUTES_SECONDS = [f"{s // 60:02d}:{s % 60:02d}Z" for s in range(3600)]
ISSUE_URLS = {
    "issue_opened": "issues",
    "comment": "issues",
    "pr_opened": "pull",
    "pr_merged": "pull",
    "pr_review": "pull",
}


class Renderer:
    """Call :meth:`render` with the planned items in time order."""

    def __init__(
        self,
        seed: int,
        people: Sequence[DemoPerson],
        start: datetime,
        events: list[Event],
        campaigns: list[Campaign],
    ) -> None:
        self.random = Random(f"{seed}:texts").random  # noqa: S311 - a reproducible demo, not a secret
        self.people, self.events, self.campaigns = people, events, campaigns
        self.base = int(start.timestamp())
        self.counters: dict[str, int] = {}
        self.hours: dict[int, str] = {}
        self.members: dict[tuple[int, str], dict[str, Any]] = {}
        self.numbers: dict[int, int] = {}  # link -> pull request number, until merged
        self.answers: dict[int, tuple[int, int]] = {}  # link -> (topic, post), until accepted
        self.issues = {repo: list(range(1, 400 // (k + 1))) for k, repo in enumerate(REPOS)}  # pre-window
        self.topics = list(range(4000, 4200))
        self.by_source: dict[str, Callable[[dict[str, Any], int, str, int, int], None]] = {
            "github": self._github,
            "discourse": self._discourse,
            "slack": self._slack,
            "events": self._events,
            "reviews": self._reviews,
            "surveys": self._surveys,
            "product": self._product,
            "billing": self._billing,
        }

    def pick(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def stamp(self, t: int) -> str:
        hour, sec = divmod(self.base + t, 3600)
        prefix = self.hours.get(hour)
        if prefix is None:
            prefix = self.hours[hour] = f"{datetime.fromtimestamp(hour * 3600, UTC):%Y-%m-%dT%H:}"
        return prefix + MINUTES_SECONDS[sec]

    def member(self, i: int, source: str) -> dict[str, Any]:
        """What ``source`` knows about person ``i`` (built once, copied for every record)."""
        template = self.members.get((i, source))
        if template is None:
            p = self.people[i]
            template = {"source_user_id": p.user_ids[source], "name": p.name}
            if source in p.handles:
                template["handle"] = p.handles[source]
            if source != "github" or p.person_id * 2654435761 % 100 < 15:  # few show an email on GitHub
                template["email"] = p.email
            if source in ("slack", "events", "reviews") and p.title:
                template["title"] = p.title
            if source in ("events", "reviews", "billing") and p.company:
                template["company"] = p.company
            if source in ("discourse", "events", "surveys", "product"):
                template["locale"] = p.locale
            if source in ("product", "billing"):  # the vendor's own systems: verified, knowing the stage
                template.update(email_verified=True, lifecycle_stage=p.lifecycle_stage)
            self.members[(i, source)] = template
        return template

    def language(self, i: int) -> str:
        lang = self.people[i].locale[:2]
        return lang if lang in CATEGORIES and self.random() < NATIVE_SHARE[lang] else "en"

    def recent(self, items: list[int]) -> int:
        return items[-1 - int(self.random() ** 3 * min(len(items), 300))]

    def render(self, item: Item) -> dict[str, Any]:
        t, i, source, kind, a, b = item
        n = self.counters[source] = self.counters.get(source, 0) + 1
        member = self.members.get((i, source)) or self.member(i, source)
        record = {
            "source": source,
            "id": f"{source}-{n}",
            "type": kind,
            "occurred_at": self.stamp(t),
            "member": member.copy(),
        }
        self.by_source[source](record, i, kind, a, b)
        return record

    def _github(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        repo = REPOS[a]
        rec["channel"] = repo
        props: dict[str, Any] = {"repo": repo}
        rec["properties"] = props
        if kind in ("star", "fork"):
            return
        if kind in ("issue_opened", "pr_opened"):
            issues = self.issues[repo]
            number = issues[-1] + 1
            issues.append(number)
            if b:  # it will be merged
                self.numbers[b] = number
            rec["title"] = self.pick(GITHUB_TITLES)
        else:
            number = self.numbers.pop(b) if kind == "pr_merged" else self.recent(self.issues[repo])
        rec["url"] = f"https://github.com/{repo}/{ISSUE_URLS[kind]}/{number}"
        props["number"] = number
        if kind == "comment":
            rec["text"] = self.pick(GITHUB_COMMENTS)
        elif kind == "pr_review":
            props["state"] = self.pick(REVIEW_STATES)

    def _discourse(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        lang = self.language(i)
        if kind in TOPIC_KEY:
            topic, post = self.topics[-1] + 1, 1
            self.topics.append(topic)
            rec["title"] = self.pick(PHRASES[lang][TOPIC_KEY[kind]])
        elif kind == "answer_accepted":
            topic, post = self.answers.pop(b)
        else:
            topic, post = self.recent(self.topics), 2 + int(self.random() * 38)
            if kind == "answer" and b:  # it will be accepted
                self.answers[b] = (topic, post)
            if kind == "reaction":
                rec["properties"] = {"emoji": self.pick(EMOJI)}
            else:
                rec["text"] = self.pick(PHRASES[lang]["chat"])
        rec["channel"] = FORUM_CATEGORY.get(kind) or CATEGORIES.get(lang, "General")
        rec["url"] = (
            f"https://community.example.com/t/{topic}/{post}"
            if post > 1
            else f"https://community.example.com/t/{topic}"
        )

    def _slack(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        if kind == "member_joined":
            rec["channel"] = "#general"
            return
        lang = self.language(i)
        rec["channel"] = f"#lang-{lang}" if lang != "en" else self.pick(SLACK_CHANNELS)
        if kind == "reaction":
            rec["properties"] = {"emoji": self.pick(EMOJI)}
        else:
            rec["text"] = self.pick(PHRASES[lang]["chat"])

    def _events(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        _, event_id, name, fmt = self.events[a]
        rec["channel"], rec["title"] = fmt, name
        rec["url"] = f"https://events.example.com/{event_id}"
        rec["properties"] = {"event_id": event_id, "event_name": name}

    def _reviews(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        rec["channel"] = REVIEW_SITES[a]
        rec["properties"] = {"rating": b, "platform": REVIEW_SITES[a]}
        rec["sentiment"] = (b - 3) / 2
        if b != 3:
            rec["text"] = self.pick(PHRASES[self.language(i)]["good" if b > 3 else "bad"])

    def _surveys(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        rec["channel"] = "nps"
        rec["properties"] = {"nps": b, "survey_id": self.campaigns[a][1]}
        rec["sentiment"] = round((b - 5) / 5, 1)

    def _product(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        if kind == "referral":
            other = self.people[a if a != i else (a + 1) % len(self.people)]
            rec["properties"] = {"referred_email": other.email}
        else:
            count = 1 + int(self.random() * self.random() * 40)
            rec["properties"] = {"feature": self.pick(FEATURES), "count": count}

    def _billing(self, rec: dict[str, Any], i: int, kind: str, a: int, b: int) -> None:
        """A purchase (``a`` = 0) or its yearly renewal."""
        p = self.people[i]
        size = p.company_size or 10
        plan = "Team" if size < 100 else "Business" if size < 1000 else "Enterprise"
        tld = p.email.rpartition(".")[2]
        currency = "EUR" if tld in ("de", "fr") else "GBP" if tld == "uk" else "USD"
        amount = {"Team": 6_000, "Business": 24_000}.get(plan, int(round(size**0.5 * 1_200, -3)))
        rec["title"] = f"Nimbus {plan}, annual" + (" (renewal)" if a else "")
        rec["properties"] = {"amount": amount, "currency": currency, "plan": plan}
