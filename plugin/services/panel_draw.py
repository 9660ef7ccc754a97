"""Seeded stratified sampling for insight panels, as a pure function (arrays in, a draw out).

Each stratum's eligible members are put in a random order drawn from the seed; every stratum
first gets its minimum, then the free places go, in a seeded random order of the remaining
candidates, to strata still under their maximum. A stratum that cannot reach its minimum is
reported with its shortfall and is never filled from another stratum. Each stratum's next
members in its own order form its reserve, so a decline is replaced from the same stratum. The
same seed and the same eligible members (in any input order) give the same panel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Quota:
    minimum: int
    maximum: int


@dataclass
class Draw:
    selected: dict[str, list[int]] = field(default_factory=dict)  # stratum -> member ids, in draw order
    reserve: dict[str, list[int]] = field(default_factory=dict)
    eligible: dict[str, int] = field(default_factory=dict)
    shortfall: dict[str, int] = field(default_factory=dict)  # stratum -> places its minimum lacks
    unfilled: int = 0  # places of the target size no stratum could take

    @property
    def size(self) -> int:
        return sum(len(v) for v in self.selected.values())


def draw(
    members: Sequence[int],
    strata: Sequence[str],
    quotas: Mapping[str, Quota],
    size: int,
    reserve: int,
    seed: int,
) -> Draw:
    """``members[i]`` is eligible and in stratum ``strata[i]``; members of a stratum without a
    quota are not drawn. ``reserve`` is the reserve size, shared across strata by their quota."""
    out = Draw()
    ids = np.asarray(members, dtype=np.int64)
    labels = np.asarray(strata, dtype=object)
    rng = np.random.Generator(np.random.PCG64(seed))
    order: dict[str, list[int]] = {}
    for name in sorted(quotas):
        pool = np.sort(ids[labels == name])  # sorted first: the input order does not matter
        out.eligible[name] = int(pool.size)
        order[name] = [int(x) for x in rng.permutation(pool)]
    taken: dict[str, int] = {}
    for name in sorted(quotas):
        want = quotas[name].minimum
        taken[name] = min(want, len(order[name]))
        if taken[name] < want:
            out.shortfall[name] = want - taken[name]
    # The places a short stratum could not fill stay empty: they are not another stratum's.
    free = size - sum(q.minimum for q in quotas.values())
    # The free places, one at a time, to a random candidate of the strata still below their maximum.
    candidates = [(name, i) for name in sorted(quotas) for i in range(taken[name], len(order[name]))]
    if free > 0 and candidates:
        for k in rng.permutation(len(candidates)):
            if free <= 0:
                break
            name, _ = candidates[int(k)]
            if taken[name] < min(quotas[name].maximum, len(order[name])):
                taken[name] += 1
                free -= 1
    out.unfilled = max(free, 0) + sum(out.shortfall.values())
    total_max = sum(q.maximum for q in quotas.values()) or 1
    for name in sorted(quotas):
        out.selected[name] = order[name][: taken[name]]
        share = round(reserve * quotas[name].maximum / total_max)
        out.reserve[name] = order[name][taken[name] : taken[name] + share]
    return out
