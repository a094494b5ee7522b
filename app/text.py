"""Text helpers shared by layers: the normal form used to spot duplicate memories."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Case, width, punctuation and spacing folded away: "Thanks!" == "thanks"."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _NON_WORD.sub(" ", folded).strip()


def normal_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8", "surrogatepass")).hexdigest()


_NUMBERISH = re.compile(r"\w*\d\w*", re.UNICODE)


def numbers(text: str) -> list[str]:
    """The tokens holding digits (amounts, dates, ids, versions), sorted: two texts that
    differ in them state different facts however similar they read."""
    return sorted(_NUMBERISH.findall(normalise(text)))
