"""Turning a query into what the text channel searches: its topic words as stems, and the
identifiers it names as exact token sequences."""

from __future__ import annotations

import re

from app.text import stems, tokens, words

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
    """The folded words of the text, stop words removed (kept if they are all there is)."""
    found = words(text)
    content = [w for w in found if w not in STOP_WORDS]
    return list(dict.fromkeys(content or found))


def query_stems(text: str) -> list[str]:
    """What BM25 scores for a query: the stems of its terms."""
    return list(dict.fromkeys(stems(terms(text))))


# "Caroline: ...", "Dr. Lee: ...": the author of a memory written as a transcript line.
_SPEAKER = re.compile(r"\s*([^\W\d_][\w'.-]*(?:[ \t]+[^\W\d_][\w'.-]*){0,2})[ \t]*:\s")


def split_speaker(content: str) -> tuple[str, str]:
    """("Name: ", the rest) for a memory written as a transcript line, else ("", content)."""
    m = _SPEAKER.match(content)
    return ("", content) if m is None else (f"{m.group(1)}: ", content[m.end():])


def speaker(content: str) -> frozenset[str]:
    """The lower-cased words of the name a memory starts with ("Name: text"), if any."""
    m = _SPEAKER.match(content)
    if m is None:
        return frozenset()
    return frozenset(w for w in words(m.group(1)) if w not in STOP_WORDS)


# Identifier-like tokens: letters and digits joined by - _ . / : # (A-77812, db-stage-02,
# v1.2.3), or a single token mixing letters and digits, or a long number (ZX9QK4TLP, 77812).
_IDENTIFIER = re.compile(
    r"[^\W_]+(?:[-_./:#][^\W_]+)+|\b(?=[^\W_]*\d)(?=[^\W_]*[^\W\d_])[^\W_]{3,}\b|\b\d{4,}\b",
    re.UNICODE)


def identifiers(text: str) -> list[list[str]]:
    """The identifiers the text names, each as its token sequence (A-77812 -> a, 77812).
    An identifier in a query is near-certain evidence: the memory that contains it is
    wanted even when the embedding cannot tell it apart from similar-looking ones."""
    found = {}
    for m in _IDENTIFIER.finditer(text):
        seq = tokens(m.group(0))
        if seq:
            found[" ".join(seq)] = seq
    return list(found.values())
