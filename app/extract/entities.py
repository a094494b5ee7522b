"""extract(): every rule run over one text, overlaps settled, the asked-for types kept.

Two passes. The pattern rules (email, url, date, identifier, number_with_unit) find spans
with characteristic shapes; where two overlap the longer wins, then the more specific rule.
The name rules (person, org, location) then read the capitalised words of what is left, so
"Berlin" inside a url or "March" inside a date is never also a name.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.extract import dates, names, patterns
from app.extract.candidate import Candidate

# Every type the extractor knows, and the ones the extraction routes use when a request
# names none (the API contract's default set).
ENTITY_TYPES: tuple[str, ...] = (
    "person",
    "org",
    "location",
    "date",
    "url",
    "email",
    "number_with_unit",
    "identifier",
)
DEFAULT_TYPES: tuple[str, ...] = ("person", "org", "location", "date", "url", "email")

_NAME_TYPES = frozenset({"person", "org", "location"})


@dataclass(frozen=True, slots=True)
class Entity:
    """One mention: its type, the text as written, a key that is equal for two mentions of
    the same thing (case and spacing folded; dates as ISO yyyy-mm-dd, yyyy-mm, yyyy or
    --mm-dd without a year), its character span in the text, and the rule's confidence."""

    entity_type: str
    value: str
    normalized: str
    start: int
    end: int
    score: float


def _resolve(candidates: list[Candidate]) -> list[Candidate]:
    """Non-overlapping spans: the longer first, then the more specific rule (lower rank)."""
    kept: list[Candidate] = []
    taken: list[tuple[int, int]] = []
    for c in sorted(candidates, key=lambda c: (c.start - c.end, c.rank, c.start)):
        if all(c.end <= s or c.start >= e for s, e in taken):
            kept.append(c)
            taken.append((c.start, c.end))
    return kept


def _check_types(types: Collection[str] | None) -> frozenset[str]:
    if types is None:
        return frozenset(ENTITY_TYPES)
    wanted = frozenset(types)
    unknown = wanted.difference(ENTITY_TYPES)
    if unknown:
        raise ValueError(f"unknown entity types: {', '.join(sorted(unknown))}")
    return wanted


def extract(text: str, types: Collection[str] | None = None) -> list[Entity]:
    """The entities of `text` in reading order, only those of `types` (all types when None).

    Raises ValueError for a type that is not one of ENTITY_TYPES.
    """
    wanted = _check_types(types)
    if not text or not wanted:
        return []
    found = _resolve(patterns.find(text) + dates.find(text))
    if wanted & _NAME_TYPES:
        found += names.find(text, [(c.start, c.end) for c in found])
    found.sort(key=lambda c: c.start)
    return [
        Entity(c.entity_type, c.value, c.normalized, c.start, c.end, c.score)
        for c in found
        if c.entity_type in wanted
    ]
