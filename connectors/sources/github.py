"""GitHub webhook deliveries (``X-GitHub-Event`` header + JSON body) to canonical activity records.

Field names follow GitHub's "Webhook events and payloads" reference
(docs.github.com/en/webhooks/webhook-events-and-payloads) and the octokit/webhooks example payloads.
Record ids come from GitHub's own object ids, so a retried delivery, a re-imported file and a later
API pull of the same activity give the same id. Accounts of ``type: "Bot"`` are not members.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connectors.errors import InvalidRecord, NoActivity
from connectors.records import (
    MAX_ID,
    MAX_NAME,
    MAX_TEXT,
    MAX_TITLE,
    MAX_URL,
    ActivityRecord,
    MemberRef,
    normalize_email,
)
from connectors.sources.payload import delivery as _delivery
from connectors.sources.payload import obj as _obj
from connectors.sources.payload import text as _text
from connectors.sources.payload import time as _time

SOURCE = "github"

#: Every ``X-GitHub-Event`` name this module reads; any other event gives NoActivity.
GITHUB_EVENTS: frozenset[str] = frozenset(
    {
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "discussion",
        "discussion_comment",
        "star",
        "watch",
        "fork",
        "release",
        "member",
        "sponsorship",
        "ping",
    }
)

#: (event, action) -> (type, object key, id template, author key, time key, key of the titled parent).
#: The author of the object is the member: e.g. a review is credited to ``review.user``.
_SIMPLE: dict[tuple[str, str], tuple[str, str, str, str, str, str | None]] = {
    ("issues", "opened"): ("issue_opened", "issue", "issue:{}", "user", "created_at", None),
    ("issue_comment", "created"): ("comment", "comment", "comment:{}", "user", "created_at", "issue"),
    ("pull_request", "opened"): ("pr_opened", "pull_request", "pr:{}:opened", "user", "created_at", None),
    ("pull_request_review", "submitted"): (
        "pr_review",
        "review",
        "review:{}",
        "user",
        "submitted_at",
        "pull_request",
    ),
    ("pull_request_review_comment", "created"): (
        "comment",
        "comment",
        "review_comment:{}",
        "user",
        "created_at",
        "pull_request",
    ),
    ("discussion", "created"): ("post", "discussion", "discussion:{}", "user", "created_at", None),
    ("discussion_comment", "created"): (
        "reply",
        "comment",
        "discussion_comment:{}",
        "user",
        "created_at",
        "discussion",
    ),
    # created/released/prereleased fire alongside published for one release: count published only.
    ("release", "published"): ("release", "release", "release:{}", "author", "published_at", None),
}

#: Scalar fields copied into ``properties`` when the object has them.
_PROP_KEYS = (
    "number",
    "state",
    "state_reason",
    "draft",
    "author_association",
    "tag_name",
    "prerelease",
    "path",
    "in_reply_to_id",
    "parent_id",
    "privacy_level",
)

_MAINTENANCE = frozenset(
    {
        "labeled",
        "unlabeled",
        "assigned",
        "unassigned",
        "locked",
        "unlocked",
        "pinned",
        "unpinned",
        "milestoned",
        "demilestoned",
        "transferred",
        "category_changed",
        "review_requested",
        "review_request_removed",
        "converted_to_draft",
        "ready_for_review",
        "synchronize",
        "reopened",
        "dismissed",
        "unanswered",
        "enqueued",
        "dequeued",
        "auto_merge_enabled",
        "auto_merge_disabled",
    }
)


def _sub(parent: Any, key: str) -> Mapping[str, Any]:
    """An optional nested object, or an empty one."""
    value = parent.get(key) if isinstance(parent, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def _ident(parent: Mapping[str, Any], key: str, path: str) -> str:
    value = parent.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip() and len(value) <= 100:
        return value.strip()
    raise InvalidRecord(f"{path}.{key}", "is required" if value is None else "must be an id")


def _member(user: Mapping[str, Any], path: str, what: str) -> MemberRef:
    if user.get("type") == "Bot":
        raise NoActivity(f"{what} by bot account {_text(user, 'login', 100)} is not community activity")
    email = _text(user, "email")
    try:
        email = normalize_email(email) if email else None
    except ValueError:
        email = None  # optional and unverified: a malformed one is dropped, not fatal
    return MemberRef(
        source_user_id=_ident(user, "id", path),
        handle=_text(user, "login"),
        name=_text(user, "name"),
        email=email,
    )


def _props(obj: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _PROP_KEYS:
        value = obj.get(key)
        if isinstance(value, bool | int) or (isinstance(value, str) and value):
            out[key] = value[:200] if isinstance(value, str) else value
    labels = obj.get("labels")
    if isinstance(labels, list):
        out["labels"] = [name for label in labels if (name := _text(label, "name", 100))]
    total = _sub(obj, "reactions").get("total_count")
    if isinstance(total, int) and not isinstance(total, bool):
        out["reactions"] = total
    return out


class _Ctx:
    """One delivery being read, and the record defaults it implies (repo channel, delivery id...)."""

    def __init__(self, event: str, action: str, payload: Mapping[str, Any], delivery_id: str | None) -> None:
        self.event, self.action, self.p, self.delivery_id = event, action, payload, delivery_id
        self.what = f"{event}.{action}" if action else event
        self.repo = _sub(payload, "repository")

    def user(self, parent: Mapping[str, Any], key: str, path: str) -> MemberRef:
        return _member(_obj(parent, key, path), f"{path}.{key}", self.what)

    def record(
        self, kind: str, rid: str, when: datetime, member: MemberRef, obj: Mapping[str, Any], **extra: Any
    ) -> ActivityRecord:
        """Build the record; ``extra`` may override channel/title/url/text, the rest are properties."""
        if len(rid) > MAX_ID:
            raise InvalidRecord("id", f"longer than {MAX_ID} characters")
        title = _text(obj, "title", MAX_TITLE) or _text(obj, "name", MAX_TITLE) or _text(obj, "tag_name")
        fields = {
            "channel": _text(self.repo, "full_name"),
            "title": title,
            "url": _text(obj, "html_url", MAX_URL),
            "text": _text(obj, "body", MAX_TEXT),
        }
        for key, limit in (("channel", MAX_NAME), ("title", MAX_TITLE), ("url", MAX_URL), ("text", MAX_TEXT)):
            override = extra.pop(key, None)
            if override is not None:
                fields[key] = str(override)[:limit]
        props = {
            "event": self.event,
            "action": self.action or None,
            "repo": _text(self.repo, "full_name"),
            **_props(obj),
            "delivery_id": self.delivery_id,
        }
        props.update((k, v) for k, v in extra.items() if v is not None)
        return ActivityRecord(
            source=SOURCE,
            id=rid,
            type=kind,
            occurred_at=when,
            member=member,
            channel=fields["channel"],
            title=fields["title"],
            url=fields["url"],
            text=fields["text"],
            properties={k: v for k, v in props.items() if v is not None},
        )

    def simple(
        self, kind: str, key: str, id_tpl: str, user_key: str, time_key: str, parent_key: str | None
    ) -> ActivityRecord:
        obj = _obj(self.p, key, "payload")
        path = f"payload.{key}"
        if obj.get(time_key) is None and "created_at" in obj:
            time_key = "created_at"  # e.g. a release without published_at
        parent = _obj(self.p, parent_key, "payload") if parent_key else {}
        category = _sub(obj, "category") or _sub(parent, "category")  # discussions only
        answerable = category.get("is_answerable")
        return self.record(
            kind,
            id_tpl.format(_ident(obj, "id", path)),
            _time(obj, time_key, path),
            self.user(obj, user_key, path),
            obj,
            title=_text(parent, "title", MAX_TITLE),
            number=parent.get("number") if parent_key else None,
            is_pull_request=bool(_sub(parent, "pull_request")) or None,
            category=_text(category, "name"),
            answerable=answerable if isinstance(answerable, bool) else None,
        )


# -- the (event, action) pairs that need more than _SIMPLE -------------------------------------------


def _issue_closed(c: _Ctx) -> ActivityRecord:
    issue = _obj(c.p, "issue", "payload")  # credited to whoever closed it (the sender), not the author
    return c.record(
        "issue_closed",
        f"issue:{_ident(issue, 'id', 'payload.issue')}:closed",
        _time(issue, "closed_at", "payload.issue"),
        c.user(c.p, "sender", "payload"),
        issue,
        issue_author=_text(_sub(issue, "user"), "login"),
    )


def _pr_closed(c: _Ctx) -> ActivityRecord:
    pr = _obj(c.p, "pull_request", "payload")
    # Docs, pull_request event: "If the action is closed and the merged key is true, the PR was merged".
    if pr.get("merged") is not True:
        raise NoActivity("pull_request.closed without a merge is not community activity")
    # A merged PR is its author's contribution; who pressed the button is kept as merged_by.
    merger = _sub(pr, "merged_by") or _sub(c.p, "sender")
    path = "payload.pull_request"
    return c.record(
        "pr_merged",
        f"pr:{_ident(pr, 'id', path)}:merged",
        _time(pr, "merged_at", path),
        c.user(pr, "user", path),
        pr,
        merged_by=_text(merger, "login"),
    )


def _answered(c: _Ctx) -> ActivityRecord:
    # The accepted answer is credited to its author (answer.user), not to whoever marked it.
    disc, answer = _obj(c.p, "discussion", "payload"), _obj(c.p, "answer", "payload")
    member = c.user(answer, "user", "payload.answer")
    # discussion.answer_chosen_at/answer_chosen_by are set on answered discussions (Docs: discussion event)
    when = (
        _time(disc, "answer_chosen_at", "payload.discussion")
        if disc.get("answer_chosen_at") is not None
        else _time(answer, "created_at", "payload.answer")
    )
    chooser = _sub(disc, "answer_chosen_by") or _sub(c.p, "sender")
    return c.record(
        "answer_accepted",
        f"answer:{_ident(answer, 'id', 'payload.answer')}:accepted",
        when,
        member,
        answer,
        title=_text(disc, "title", MAX_TITLE),
        number=disc.get("number"),
        accepted_by=_text(chooser, "login"),
        category=_text(_sub(disc, "category"), "name"),
        self_answer=_sub(disc, "user").get("id") == _sub(answer, "user").get("id"),
    )


def _star(c: _Ctx) -> ActivityRecord:
    """``star.created`` and ``watch.started`` (the legacy name of starring) share one id: no double count."""
    member = c.user(c.p, "sender", "payload")
    rid = f"star:{_ident(_obj(c.p, 'repository', 'payload'), 'id', 'payload.repository')}:{member.key}"
    if c.event == "star":  # Docs, star event: starred_at "will be null for the deleted action"
        when, source = _time(c.p, "starred_at", "payload"), "starred_at"
    else:  # watch has no star time; GitHub bumps repository.updated_at when the star count changes
        when, source = _time(c.repo, "updated_at", "payload.repository"), "repository.updated_at"
    return c.record(
        "star",
        rid,
        when,
        member,
        {"html_url": c.repo.get("html_url")},
        title=_text(c.repo, "full_name", MAX_TITLE),
        time_source=source,
        stargazers=c.repo.get("stargazers_count"),
    )


def _fork(c: _Ctx) -> ActivityRecord:
    forkee = _obj(c.p, "forkee", "payload")  # the sender forked it (forkee.owner may be an organisation)
    return c.record(
        "fork",
        f"fork:{_ident(forkee, 'id', 'payload.forkee')}",
        _time(forkee, "created_at", "payload.forkee"),
        c.user(c.p, "sender", "payload"),
        forkee,
        title=_text(forkee, "full_name", MAX_TITLE),
        fork=_text(forkee, "full_name"),
    )


def _member_added(c: _Ctx) -> ActivityRecord:
    member = c.user(c.p, "member", "payload")  # the collaborator added, not the admin who added them
    rid = f"member:{_ident(_obj(c.p, 'repository', 'payload'), 'id', 'payload.repository')}:{member.key}"
    # The member event carries no time of its own; repository.updated_at is the closest stable one.
    return c.record(
        "member_joined",
        rid,
        _time(c.repo, "updated_at", "payload.repository"),
        member,
        {},
        time_source="repository.updated_at",
        added_by=_text(_sub(c.p, "sender"), "login"),
    )


def _sponsorship(c: _Ctx) -> ActivityRecord:
    sp = _obj(c.p, "sponsorship", "payload")  # webhooks_sponsorship has node_id but no numeric id
    tier, target, path = (
        _sub(sp, "tier"),
        _text(_sub(sp, "sponsorable"), "login"),
        "payload.sponsorship",
    )
    return c.record(
        "sponsorship",
        f"sponsorship:{_ident(sp, 'node_id', path)}",
        _time(sp, "created_at", path),
        c.user(sp, "sponsor", path),
        sp,
        channel=f"sponsors/{target}" if target else None,
        title=_text(tier, "name", MAX_TITLE),
        sponsorable=target,
        tier=_text(tier, "name"),
        one_time=tier.get("is_one_time") is True,
        monthly_price_in_cents=tier.get("monthly_price_in_cents"),
    )


_SPECIAL: dict[tuple[str, str], Callable[[_Ctx], ActivityRecord]] = {
    ("issues", "closed"): _issue_closed,
    ("pull_request", "closed"): _pr_closed,
    ("discussion", "answered"): _answered,
    ("star", "created"): _star,
    ("watch", "started"): _star,
    ("fork", ""): _fork,
    ("member", "added"): _member_added,
    ("sponsorship", "created"): _sponsorship,
}


def _skip_reason(what: str, action: str, payload: Mapping[str, Any]) -> str | None:
    if what == "issues.opened" and "old_issue" in _sub(payload, "changes"):  # sent to the new repo
        return "issues.opened from a transfer is not new activity"
    if what == "release.published" and _sub(payload, "release").get("draft") is True:
        return "release.published for a draft is not community activity"
    if what in {"release.created", "release.released", "release.prereleased"}:
        return f"{what} is counted from release.published, which GitHub sends for the same release"
    if what in {"star.deleted", "watch.deleted"}:
        return f"{what} (un-starring) is not community activity"
    if action in _MAINTENANCE:
        return f"{what} is a maintenance action, not community activity"
    if action in {"edited", "deleted"}:
        return f"{what}: edits and deletions are not new community activity"
    return None


def parse_github(
    event: str, payload: Mapping[str, Any], delivery_id: str | None = None
) -> list[ActivityRecord]:
    """Map one delivery to records; NoActivity if it carries none, InvalidRecord if it is malformed."""
    event, payload = _delivery(event, payload, "X-GitHub-Event")
    if event == "ping":
        raise NoActivity("ping carries no activity")
    if event not in GITHUB_EVENTS:
        raise NoActivity(f"{event[:60]} events are not read by Flywheel")
    action = payload.get("action")
    if event != "fork" and (not isinstance(action, str) or not action):
        raise InvalidRecord("payload.action", "is required" if action is None else "must be a string")
    action = action if isinstance(action, str) and event != "fork" else ""
    ctx = _Ctx(event, action, payload, str(delivery_id)[:MAX_ID] if delivery_id else None)
    reason = _skip_reason(ctx.what, action, payload)
    if reason:
        raise NoActivity(reason)
    if (spec := _SIMPLE.get((event, action))) is not None:
        return [ctx.simple(*spec)]
    if (special := _SPECIAL.get((event, action))) is not None:
        return [special(ctx)]
    raise NoActivity(f"{ctx.what} carries no community activity")


def infer_github_event(payload: Mapping[str, Any]) -> str:
    """Guess the ``X-GitHub-Event`` name from the keys a payload carries."""
    if not isinstance(payload, Mapping):
        raise InvalidRecord("payload", "must be a JSON object")
    has = payload.__contains__
    rules = [
        (has("zen") or has("hook_id"), "ping"),
        (has("forkee"), "fork"),
        (has("sponsorship"), "sponsorship"),
        (has("starred_at"), "star"),
        (has("discussion") and has("comment"), "discussion_comment"),
        (has("discussion"), "discussion"),
        (has("issue") and has("comment"), "issue_comment"),
        (has("pull_request") and has("review"), "pull_request_review"),
        (has("pull_request") and has("comment"), "pull_request_review_comment"),
        (has("pull_request"), "pull_request"),
        (has("issue"), "issues"),
        (has("release"), "release"),
        (has("member") and has("repository"), "member"),
        (payload.get("action") == "started" and has("repository"), "watch"),
    ]
    for matched, name in rules:
        if matched:
            return name
    raise InvalidRecord("event", "cannot tell the GitHub event from the payload; send X-GitHub-Event")
