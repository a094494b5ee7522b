"""The span a rule proposes, before overlaps between rules are settled."""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_SPACE = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")


def has_digit(text: str) -> bool:
    return _DIGIT.search(text) is not None


class Candidate(NamedTuple):
    entity_type: str
    value: str
    normalized: str
    start: int
    end: int
    score: float
    rank: int  # between equally long overlapping spans the lower rank wins


def fold(value: str) -> str:
    """Case, width and spacing folded: the key of a name or an identifier."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", value).casefold()).strip()
