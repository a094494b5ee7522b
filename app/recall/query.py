"""Turning any user text into a safe FTS5 query."""

from __future__ import annotations

import itertools
import re

_WORD = re.compile(r"\w+", re.UNICODE)

# Words that carry no topic: dropped from the BM25 query unless nothing else is left.
STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only
    or other our ours ourselves out over own same she should so some such than that the
    their theirs them themselves then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves s t don didn doesn isn wasn ll re ve d m o y
    """.split()
)


def terms(text: str) -> list[str]:
    """Lower-cased words of the text, stop words removed (kept if they are all there is)."""
    words = [w.replace("_", " ").strip() for w in _WORD.findall(text.lower())]
    words = [w for w in words if w]
    content = [w for w in words if w not in STOP_WORDS]
    chosen = content or words
    seen: dict[str, None] = {}
    for w in chosen:
        seen.setdefault(w, None)
    return list(seen)


MAX_PHRASES = 32


def phrases(text: str) -> list[str]:
    """Adjacent pairs of content words ("grand opening", "dance studio"): a memory holding
    the pair as written matches the query more closely than one holding both words apart."""
    words = [w.replace("_", " ").strip() for w in _WORD.findall(text.lower())]
    pairs: dict[str, None] = {}
    for a, b in itertools.pairwise(words):
        if a and b and a not in STOP_WORDS and b not in STOP_WORDS:
            pairs.setdefault(f"{a} {b}", None)
    return list(pairs)[:MAX_PHRASES]


def fts_match(text: str, *, with_phrases: bool = True) -> str | None:
    """An FTS5 MATCH expression that ORs the query's terms (and, with_phrases, its adjacent
    content-word pairs as phrases), each quoted so that no user text (quotes, operators,
    NEAR, column filters, emoji) is read as FTS syntax. None when the text has no words."""
    words = terms(text)
    if not words:
        return None
    parts = words + (phrases(text) if with_phrases else [])
    return " OR ".join(f'"{w}"' for w in parts)


# "Caroline: ...", "Dr. Lee: ...": the author of a memory written as a transcript line.
_SPEAKER = re.compile(r"\s*([^\W\d_][\w'.-]*(?:[ \t]+[^\W\d_][\w'.-]*){0,2})[ \t]*:\s")


def speaker(content: str) -> frozenset[str]:
    """The lower-cased words of the name a memory starts with ("Name: text"), if any."""
    m = _SPEAKER.match(content)
    if m is None:
        return frozenset()
    return frozenset(w for w in _WORD.findall(m.group(1).lower()) if w not in STOP_WORDS)


# Identifier-like tokens: letters and digits joined by - _ . / : # (A-77812, db-stage-02,
# v1.2.3), or a single token mixing letters and digits, or a long number (ZX9QK4TLP, 77812).
_IDENTIFIER = re.compile(
    r"[^\W_]+(?:[-_./:#][^\W_]+)+|\b(?=[^\W_]*\d)(?=[^\W_]*[^\W\d_])[^\W_]{3,}\b|\b\d{4,}\b",
    re.UNICODE)


def identifier_match(text: str) -> str | None:
    """An FTS5 expression matching the identifiers the text names, each as an exact phrase.
    An identifier in a query is near-certain evidence: the memory that contains it is
    wanted even when the embedding cannot tell it apart from similar-looking ones."""
    phrases = []
    for m in _IDENTIFIER.finditer(text):
        words = _WORD.findall(m.group(0).lower().replace("_", " "))
        if words:
            phrases.append('"' + " ".join(words) + '"')
    if not phrases:
        return None
    return "content : (" + " OR ".join(dict.fromkeys(phrases)) + ")"
