"""GDPR actions (admins only): export a member's data, erase a member, and the erasures' audit lines."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from plugin.services import gdpr
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.context import engine, now

blp = blueprint("gdpr", "", "GDPR: a member's data exported, a member erased, the erasures' audit lines")
F = ma.fields


class MemberExport(ma.Schema):
    """Everything Flywheel holds about the person; times are UTC ISO 8601."""

    exported_at = F.String(required=True)
    member = F.Dict(required=True, metadata={"description": "profile, organization, merged member ids"})
    identities = F.List(F.Dict(), required=True)
    activities = F.List(F.Dict(), required=True)
    consents = F.List(F.Dict(), required=True, metadata={"description": "the whole consent history"})
    scores = F.List(F.Dict(), required=True, metadata={"description": "with their reasons in words"})
    score_events = F.List(F.Dict(), required=True)
    merge_log = F.List(F.Dict(), required=True)
    programs = F.Dict(
        required=True,
        metadata={"description": "referral invitations and referrals, rewards, panels, contact log"},
    )
    crm = F.List(F.Dict(), required=True, metadata={"description": "the member's CRM records"})
    erasures = F.List(F.Dict(), required=True)


class EraseBody(ma.Schema):
    reason = F.String(
        required=True,
        validate=ma.validate.Length(1, 255),
        metadata={"description": "why (e.g. the request's reference); kept in the audit line"},
    )


class CrmRef(ma.Schema):
    connection_id = F.Integer()
    crm = F.String()
    crm_object = F.String()
    crm_id = F.String()
    # "fields" is a Schema attribute: the field is declared under another name, shown as "fields"
    field_names = F.List(
        F.String(),
        data_key="fields",
        attribute="fields",
        metadata={"description": "the CRM fields Flywheel wrote (names only)"},
    )
    action = F.String(metadata={"description": "delete, anonymize or keep"})
    done_at = F.String(allow_none=True)
    result = F.String(allow_none=True)
    error = F.String(allow_none=True, metadata={"description": "the last CRM failure; retried next sync"})


class AuditLine(ma.Schema):
    """An erasure, with no personal data: counts of what was removed, and the CRM records' handling."""

    id = F.Integer(required=True)
    member_id = F.Integer(required=True, metadata={"description": "the now empty member"})
    requested_by = F.String(required=True)
    reason = F.String(allow_none=True)
    erased_at = F.String(required=True)
    removed = F.Dict(keys=F.String(), values=F.Integer(), required=True)
    crm_action = F.String(required=True, metadata={"description": "delete, anonymize, keep (or mixed)"})
    crm_refs = F.List(F.Nested(CrmRef), required=True)
    crm_done_at = F.String(allow_none=True, metadata={"description": "null while the CRM sync has work left"})
    crm_result = F.String(allow_none=True)
    crm_plan = F.List(F.String(), metadata={"description": "what happens (or happened) in the CRM, in words"})


AuditPage = page_schema(AuditLine, "ErasurePage")


@blp.get("/members/<int:member_id>/export")
@guarded(blp, "gdpr")
@blp.response(200, MemberExport)
def export_member(member_id: int) -> dict[str, Any]:
    """Everything Flywheel holds about a member (a data subject's access request): profile,
    identities, activities, consents, scores with reasons, programs and CRM records."""
    with engine().connect() as conn:
        return gdpr.export_member(conn, current().workspace_id, member_id)


@blp.post("/members/<int:member_id>/erase")
@guarded(blp, "gdpr")
@blp.arguments(EraseBody)
@blp.response(200, AuditLine)
def erase_member(body: dict[str, Any], member_id: int) -> dict[str, Any]:
    """Erase a member: personal data and activities removed in one transaction, an anonymous audit
    line kept, and the member's CRM records deleted, anonymized or kept by the next CRM sync as the
    connection's erasure policy says. 422 when the member was already erased."""
    who = current()
    with engine().begin() as conn:
        erasure_id = gdpr.erase_member(
            conn, who.workspace_id, member_id, actor=who.actor, reason=body["reason"], now=now()
        )
        line = gdpr.erasure(conn, who.workspace_id, erasure_id)
    return line | {"crm_plan": gdpr.crm_plan(line)}


@blp.get("/erasures")
@guarded(blp, "gdpr", not_found=False)
@blp.arguments(PageArgs, location="query")
@blp.response(200, AuditPage)
def list_erasures(args: dict[str, Any]) -> dict[str, Any]:
    """The workspace's erasures, newest first."""
    after = decode_cursor(args["cursor"], [int])
    with engine().connect() as conn:
        lines = gdpr.erasures(
            conn, current().workspace_id, limit=args["limit"] + 1, before=None if after is None else after[0]
        )
    return paged([x | {"crm_plan": gdpr.crm_plan(x)} for x in lines], args["limit"], lambda x: [x["id"]])
