"""What HubSpot knows, read back: contacts (lifecycle stage, owner, company) and deals."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from connectors.crm.base import CrmContact, CrmDeal
from connectors.crm.hubspot_wire import PAGE, HubSpotCore


class ReadsMixin(HubSpotCore):
    def _pages(
        self, name: str, api: Any, properties: Sequence[str], associations: Sequence[str]
    ) -> Iterator[Any]:
        """Every record of one object type, a page of :data:`PAGE` at a time (``paging.next.after``)."""
        after: str | None = None
        while True:
            kwargs: dict[str, Any] = {
                "limit": PAGE,
                "properties": list(properties),
                "_request_timeout": self._timeout,
            }
            if associations:
                kwargs["associations"] = list(associations)
            if after:
                kwargs["after"] = after
            page, _ = self._call(name, lambda kwargs=kwargs: api.get_page_with_http_info(**kwargs))  # type: ignore[misc]
            yield from page.results or []
            nxt = page.paging.next if page.paging is not None else None
            if nxt is None or not nxt.after:
                return
            after = str(nxt.after)

    def read_contacts(self) -> Iterator[CrmContact]:
        api = self._client.crm.contacts.basic_api
        for r in self._pages(
            "contacts.list", api, ("email", "lifecyclestage", "hubspot_owner_id"), ("companies",)
        ):
            props = r.properties or {}
            yield CrmContact(
                str(r.id),
                props.get("email"),
                props.get("lifecyclestage") or None,
                props.get("hubspot_owner_id") or None,
                _associated(r, "companies"),
            )

    def read_deals(self) -> Iterator[CrmDeal]:
        """Deals with their stage and associations. Won: ``hs_is_closed_won`` where HubSpot sets it,
        else the default pipeline's ``closedwon`` stage."""
        api = self._client.crm.deals.basic_api
        names = ("dealname", "dealstage", "amount", "closedate", "hs_is_closed_won", "hs_is_closed")
        for r in self._pages("deals.list", api, names, ("contacts", "companies")):
            props = r.properties or {}
            stage = props.get("dealstage") or None
            won_flag = props.get("hs_is_closed_won")
            won = won_flag == "true" if won_flag is not None else stage == "closedwon"
            closed_flag = props.get("hs_is_closed")
            closed = (
                closed_flag == "true" if closed_flag is not None else stage in ("closedwon", "closedlost")
            )
            try:
                amount = float(props["amount"]) if props.get("amount") not in (None, "") else None
            except ValueError:
                amount = None
            yield CrmDeal(
                str(r.id),
                props.get("dealname"),
                stage,
                won,
                closed,
                amount,
                props.get("closedate") or None,
                _associated(r, "contacts"),
                _associated(r, "companies"),
            )


def _associated(record: Any, kind: str) -> tuple[str, ...]:
    found = (getattr(record, "associations", None) or {}).get(kind)
    return tuple(str(a.id) for a in (found.results or [])) if found is not None else ()
