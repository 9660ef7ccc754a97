"""A batch of activity records held column by column, the form the store path works on.

Bulk ingest spends its time per record, so the batch keeps one list per stored column: rows for
the insert are then made by ``zip`` (in C), the batch crosses from the parsing process to the
storing one as a few long lists (cheap to pickle), and identity resolution looks at each distinct
person of the batch once, not at every record.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors.records import ActivityRecord, MemberRef
from plugin.db.base import to_micros

MemberKey = tuple[str, str]  # (source, the platform's user key)

#: Types whose activities carry a number scoring reads, and the key of ``properties`` holding it.
VALUED = {"survey_response": "nps", "review": "rating", "purchase": "amount"}


def value_of(kind: str, properties: Mapping[str, Any] | None) -> float | None:
    """The number an activity of this type carries (NPS, rating, amount), stored in its own column
    so scoring reads it from an index: a JSON number under the type's key, else None ("USD 49",
    true or {...} are no value)."""
    key = VALUED.get(kind)
    if key is None or not properties:
        return None
    got = properties.get(key)
    if isinstance(got, bool) or not isinstance(got, int | float):
        return None
    number = float(got)
    return number if math.isfinite(number) else None


@dataclass
class ColumnBatch:
    sources: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    occurred: list[int] = field(default_factory=list)  # epoch microseconds, UTC
    channels: list[str | None] = field(default_factory=list)
    titles: list[str | None] = field(default_factory=list)
    urls: list[str | None] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    properties: list[str] = field(default_factory=list)  # JSON text
    sentiments: list[float | None] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)  # see value_of
    #: per record, the index of its person in ``members`` (ints pickle and map far cheaper than keys)
    person: list[int] = field(default_factory=list)
    #: the distinct people of the batch, in order of appearance, each with the distinct ways the
    #: batch described them
    members: dict[MemberKey, list[MemberRef]] = field(default_factory=dict)
    _index: dict[MemberKey, int] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_index"] = None  # derivable from ``members``; not worth its bytes in the pipe
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._index = {key: i for i, key in enumerate(self.members)}

    def append(self, record: ActivityRecord) -> None:
        self.sources.append(record.source)
        self.ids.append(record.id)
        self.types.append(record.type)
        self.occurred.append(to_micros(record.occurred_at))
        self.channels.append(record.channel)
        self.titles.append(record.title)
        self.urls.append(record.url)
        self.texts.append(record.text)
        self.properties.append(orjson.dumps(record.properties).decode() if record.properties else "{}")
        self.sentiments.append(record.sentiment)
        self.values.append(value_of(record.type, record.properties))
        member = record.member
        key = (record.source, member.key)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self._index)
            self.members[key] = [member]
        else:
            refs = self.members[key]
            if member not in refs:
                refs.append(member)
        self.person.append(index)

    def extend(self, records: Iterable[ActivityRecord]) -> None:
        for record in records:
            self.append(record)

    def without_repeats(self) -> tuple[ColumnBatch, int]:
        """The batch keeping the first of records with the same (source, id), and how many went."""
        first: dict[tuple[str, str], int] = {}
        for index, pair in enumerate(zip(self.sources, self.ids, strict=True)):
            first.setdefault(pair, index)
        dropped = len(self) - len(first)
        if not dropped:
            return self, 0
        keep = sorted(first.values())
        kept = ColumnBatch(members=self.members, _index=self._index)
        for name in (
            "sources",
            "ids",
            "types",
            "occurred",
            "channels",
            "titles",
            "urls",
            "texts",
            "properties",
            "sentiments",
            "values",
            "person",
        ):
            column = getattr(self, name)
            setattr(kept, name, [column[i] for i in keep])
        return kept, dropped
