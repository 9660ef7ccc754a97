"""Typed models, one aggregate per module; importing this package registers them all."""

from plugin.db.models.activity import Activity
from plugin.db.models.crm import CrmCompanyLink, CrmConnection, CrmDeal, CrmLink, CrmSyncRun
from plugin.db.models.erasure import Erasure
from plugin.db.models.identity_log import MergeLog, MergeSuggestion
from plugin.db.models.inbound import HookSecret, InboundDelivery
from plugin.db.models.job import Lease, ScheduledJob
from plugin.db.models.member import Consent, Identity, Member
from plugin.db.models.organization import Organization
from plugin.db.models.panel import Panel, PanelDraw, PanelMember
from plugin.db.models.referral import Outreach, Referral, ReferralInvite
from plugin.db.models.reward import RewardGrant, RewardLine
from plugin.db.models.score import HandRaise, MemberStats, Score, ScoreEvent, ScoreRun
from plugin.db.models.webhook import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    WebhookNotice,
)
from plugin.db.models.workspace import ApiToken, User, Workspace

__all__ = [
    "Activity",
    "ApiToken",
    "Consent",
    "CrmCompanyLink",
    "CrmConnection",
    "CrmDeal",
    "CrmLink",
    "CrmSyncRun",
    "Erasure",
    "HandRaise",
    "HookSecret",
    "Identity",
    "InboundDelivery",
    "Lease",
    "Member",
    "MemberStats",
    "MergeLog",
    "MergeSuggestion",
    "Organization",
    "Outreach",
    "Panel",
    "PanelDraw",
    "PanelMember",
    "Referral",
    "ReferralInvite",
    "RewardGrant",
    "RewardLine",
    "ScheduledJob",
    "Score",
    "ScoreEvent",
    "ScoreRun",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "WebhookNotice",
    "Workspace",
]
