"""A memory that says several things, as its sentences: recall scores a memory by its best
sentence as well as by its whole text.

A turn of a conversation often says several things ("You'd be a great counselor! ... By the
way, take a look at this. [a photo of a painting of a sunset]"); a question asks about one of
them, and the one vector of the whole text (the mean of its tokens) dilutes it. Each sentence
keeps the memory's author ("Melanie: ..."), as the whole text does.
"""

from __future__ import annotations

import re

from app.recall.query import split_speaker

# After a sentence's end (. ! ? and what closes it), or before a bracketed aside.
_BOUNDARY = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"')\]])\s+|\s+(?=\[)")
MIN_WORDS = 3  # shorter pieces ("Thanks!", "Oh wow.") say nothing on their own
MAX_SENTENCES = 32


Span = tuple[int, int]  # a character range of the content: [start, end)


def sentences(content: str) -> list[str]:
    """The sentences of at least MIN_WORDS words, each with the memory's author prefix
    (unless it names its own: "User: ... Assistant: ..."); [] when there are fewer than two
    (the whole text is then its one sentence)."""
    return [text for text, _ in sentence_parts(content)]


def sentence_parts(content: str) -> list[tuple[str, list[Span]]]:
    """`sentences`, each with where it lies in `content`: the author prefix's range (when
    the sentence takes it) and its own. The embedder pools a sentence's vector from the
    whole text's tokens in those ranges (app/embed: late chunking)."""
    prefix, body = split_speaker(content)
    offset = len(content) - len(body)
    pieces: list[Span] = []
    start = 0
    for m in _BOUNDARY.finditer(body):
        pieces.append((start, m.start()))
        start = m.end()
    pieces.append((start, len(body)))
    found = []
    for a, b in pieces:
        text = body[a:b]
        a += len(text) - len(text.lstrip())
        b -= len(text) - len(text.rstrip())
        if len(body[a:b].split()) >= MIN_WORDS:
            found.append((a + offset, b + offset))
    if len(found) < 2:
        return []
    out = []
    for a, b in found[:MAX_SENTENCES]:
        text = content[a:b]
        if split_speaker(text)[0] or not prefix:
            out.append((text, [(a, b)]))
        else:
            out.append((prefix + text, [(0, offset), (a, b)]))
    return out
