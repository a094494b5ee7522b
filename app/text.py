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


# -- tokens for full-text search (the memories' BM25 index and its queries) -------------------

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STEM_CACHE_MAX = 200_000


class _Stems:
    """Porter stems (the algorithm SQLite FTS5's porter tokenizer uses), cached: a
    vocabulary is small next to the number of words stemmed."""

    def __init__(self) -> None:
        import Stemmer

        self._stem = Stemmer.Stemmer("porter").stemWord
        self._cache: dict[str, str] = {}

    def __call__(self, word: str) -> str:
        stem = self._cache.get(word)
        if stem is None:
            if len(self._cache) >= _STEM_CACHE_MAX:
                self._cache.clear()
            stem = self._cache[word] = self._stem(word) or word
        return stem


_stems: _Stems | None = None


def fold(text: str) -> str:
    """Lower case without diacritics ("Café" -> "cafe")."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    if decomposed.isascii():
        return decomposed
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str) -> list[str]:
    """The words of a text, folded: runs of letters and digits ("db-stage_02" -> db, stage,
    02); punctuation, symbols and emoji separate words."""
    return _WORD.findall(fold(text))


def stems(words: list[str]) -> list[str]:
    global _stems
    if _stems is None:
        _stems = _Stems()
    return [_stems(w) for w in words]


def tokens(text: str) -> list[str]:
    """What full-text search indexes and matches: the stems of the words, in order."""
    return stems(words(text))


def event_words(event_time: int | None) -> str:
    """The date of a remembered event in words ("Monday 8 May 2023"), indexed beside the
    content so that questions naming a day, month or year find what happened then."""
    if event_time is None:
        return ""
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(event_time, tz=UTC)
    return f"{day:%A} {day.day} {day:%B} {day.year}"


# -- BM25 as both backends score it (app/index/text.py in memory; PostgreSQL in SQL) -------

BM25_K1 = 1.2
BM25_B = 0.75
DATE_WEIGHT = 0.5  # an event date's words count half as much as the content's


def term_frequencies(content: str, event_time: int | None) -> tuple[dict[str, float], float]:
    """A memory's weighted term frequencies (content + DATE_WEIGHT x its event date in
    words) and its weighted length, as BM25 counts them."""
    body, date = tokens(content), tokens(event_words(event_time))
    freq: dict[str, float] = {}
    for term in body:
        freq[term] = freq.get(term, 0.0) + 1.0
    for term in date:
        freq[term] = freq.get(term, 0.0) + DATE_WEIGHT
    return freq, len(body) + DATE_WEIGHT * len(date)
