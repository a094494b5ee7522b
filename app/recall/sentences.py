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


def sentences(content: str) -> list[str]:
    """The sentences of at least MIN_WORDS words, each with the memory's author prefix
    (unless it names its own: "User: ... Assistant: ..."); [] when there are fewer than two
    (the whole text is then its one sentence)."""
    prefix, body = split_speaker(content)
    found = [s.strip() for s in _BOUNDARY.split(body)]
    found = [s for s in found if len(s.split()) >= MIN_WORDS]
    if len(found) < 2:
        return []
    return [s if split_speaker(s)[0] else prefix + s for s in found[:MAX_SENTENCES]]
