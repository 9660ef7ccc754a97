"""``/api/v1/organizations``: accounts with their people, customers and churn risk."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from plugin.services.org_read import PEOPLE, SORTS, OrgQuery, organization_detail, search, sort_key
from plugin.web.api.core import PageArgs, blueprint, current, decode_cursor, guarded, page_schema, paged
from plugin.web.api.query_args import text
from plugin.web.context import engine

blp = blueprint("organizations", "/organizations", "Organizations (accounts): people, customers, churn risk")
F = ma.fields


class OrgChurnBrief(ma.Schema):
    score = F.Float(required=True, metadata={"description": "account churn risk, 0 to 1"})
    band = F.String(required=True, metadata={"description": "low, medium or high"})


class OrgChurn(OrgChurnBrief):
    reasons = F.List(F.String(), required=True, metadata={"description": "why, in sentences"})
    as_of = F.AwareDateTime(required=True)
    model_version = F.String(required=True)


class OrganizationItem(ma.Schema):
    id = F.Integer(required=True)
    name = F.String(required=True)
    domain = F.String(required=True)
    size = F.Integer(allow_none=True, required=True, metadata={"description": "employees, when known"})
    industry = F.String(allow_none=True, required=True)
    member_count = F.Integer(required=True, metadata={"description": "people in the community"})
    customer_count = F.Integer(required=True, metadata={"description": "of them, customers"})
    churn = F.Nested(
        OrgChurnBrief, allow_none=True, required=True, metadata={"description": "null: unscored"}
    )


class OrganizationArgs(PageArgs):
    sort = F.String(
        load_default="id",
        validate=ma.validate.OneOf(SORTS),
        metadata={"description": "`churn`: highest account churn risk first, unscored last"},
    )
    q = text(200, metadata={"description": "part of the name or domain"})
    has_customers = F.Boolean(metadata={"description": "only organizations with (or without) customers"})


OrganizationPage = page_schema(OrganizationItem, "OrganizationPage")


@blp.get("")
@guarded(blp, "organizations:read", not_found=False)
@blp.arguments(OrganizationArgs, location="query")
@blp.response(200, OrganizationPage)
def list_organizations(args: dict[str, Any]) -> dict[str, Any]:
    """Organizations of the workspace by id, or by account churn risk (``sort=churn``), with filters."""
    limit, cursor = args.pop("limit"), args.pop("cursor")
    query = OrgQuery(**args)
    after = decode_cursor(cursor, [int] if query.sort == "id" else [float, int])
    with engine().connect() as conn:
        rows = search(conn, current().workspace_id, query, limit, after)
    return paged(rows, limit, sort_key(query.sort))


class PersonScore(ma.Schema):
    score = F.Float(required=True)
    label = F.String(required=True, metadata={"description": "advocate level, lead grade or churn band"})
    hot = F.Boolean(required=True)


class OrgPerson(ma.Schema):
    id = F.Integer(required=True)
    display_name = F.String(allow_none=True, required=True)
    primary_email = F.String(allow_none=True, required=True)
    title = F.String(allow_none=True, required=True)
    lifecycle_stage = F.String(allow_none=True, required=True)
    customer = F.Boolean(required=True)
    activities = F.Integer(required=True, metadata={"description": "activities recorded, all time"})
    last_active_at = F.AwareDateTime(allow_none=True, required=True)
    scores = F.Dict(
        keys=F.String(),
        values=F.Nested(PersonScore),
        required=True,
        metadata={"description": "by kind: advocate, lead, churn (a kind not scored is absent)"},
    )


class OrganizationDetail(OrganizationItem):
    churn = F.Nested(OrgChurn, allow_none=True, required=True, metadata={"description": "null: unscored"})
    people = F.List(
        F.Nested(OrgPerson),
        required=True,
        metadata={
            "description": f"the {PEOPLE} most active people, most active first; "
            "`GET /members?organization_id=` lists them all"
        },
    )


@blp.get("/<int:org_id>")
@guarded(blp, "organizations:read")
@blp.response(200, OrganizationDetail)
def get_organization(org_id: int) -> dict[str, Any]:
    """An organization with its churn risk and the reasons for it, and its people with their scores."""
    with engine().connect() as conn:
        return organization_detail(conn, current().workspace_id, org_id)
