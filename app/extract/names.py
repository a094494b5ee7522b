"""Persons, organisations and places, read from the capitalised words of a text.

Capitalisation alone is weak evidence (every sentence starts with a capital), so a run of
capitalised words becomes an entity only when something else speaks for it:
- a speaker label opening a line ("Caroline: ...") or a title ("Dr. Priya Raman") -> person;
- the whole run is in a gazetteer (data/orgs.txt, data/locations.txt);
- the run ends like an organisation ("... Bank", "... LLC") or starts like one ("University
  of ..."), or ends or starts like a place ("... Street", "... River", "Lake ...");
- the run starts with a known given name (data/first_names.txt) -> person, with its surname.
Words that are names and also everyday words (May, Will, Apple, Turkey) or two kinds of
name (Georgia, Jordan) need a cue from their neighbours: the verb after them, the
preposition before them, a possessive. A run that merely contains a known name ("Google
Docs", "Berlin Marathon") is something named after it, and is left alone.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from app.extract.candidate import Candidate, fold, has_digit
from app.extract.lexicon import (
    AGENT_VERBS,
    COMMON,
    CONNECTORS,
    FIRST_NAMES,
    LOC_HEADS,
    LOC_SUFFIXES,
    LOCATIONS,
    MONTH_NAMES,
    NAME_PLACES,
    ORG_HEADS,
    ORG_NOUNS,
    ORG_PREPS,
    ORG_SUFFIXES,
    ORGS,
    PERSON_PREPS,
    PLACE_PREPS,
    TITLES,
    WORD_NAMES,
    WORD_PLACES,
)

_APOSTROPHES = "'\u2019"  # ' and the typographic one
_CAP = "[A-ZÀ-ÖØ-Þ]"
_REST = rf"(?:[\w{_APOSTROPHES}-]*[^\W_])?"
_CONN = "|".join(sorted(CONNECTORS))
# Capitalised words in a row, with "of", "van", "&"... between them.
_RUN = re.compile(
    rf"{_CAP}(?<![\w{_APOSTROPHES}]{_CAP}){_REST}(?:(?:[ \t]+(?:{_CONN}|&))?[ \t]+{_CAP}{_REST})*"
)
_PIECE = re.compile(rf"[^\W_]{_REST}|&")
# "Caroline: ..." opening a line, or a turn after the end of another: "... it? Nate: Fine."
_SPEAKER = re.compile(
    r"(?m)(?:^[ \t>*•-]*(?:\[[^\]\n]{1,40}\][ \t]*)?|(?<=[.!?])[ \t]+)"
    rf"(?P<name>[A-Z]{_REST}(?: [A-Z]{_REST}){{0,2}})[ \t]*:(?!//)(?=\s|$)"
)
# How a chat turn starts: an unknown word before a colon is a speaker when what follows
# reads like speech ("Sergei: I moved the cron job") rather than a list.
_TURN_OPENING = re.compile(
    r"[ \t]*(?i:i|i'm|i've|i'll|i'd|we|we're|you|you're|my|our|yes|no|yeah|yep|nope|ok|okay"
    r"|hey|hi|hello|thanks|thank|so|oh|lol|haha|omg|can|could|would|did|do|does|is|are|was"
    r"|what|how|why|when|where|who|that|that's|this|it|it's|just|sure|sorry|great|wow|cool"
    r"|please|well|honestly|really|totally|agreed|same|nice|good|awesome|congrats|let's)\b"
)
_PREV_WORD = re.compile(rf"([A-Za-z]{_REST})[ \t]+$")
_NEXT_WORD = re.compile(rf"[ \t]+([A-Za-z]{_REST})")
_SAINT_BEFORE = re.compile(r"(?<![\w.])(?:St\.?|Saint)[ \t]+$")
_TITLE_BEFORE = re.compile(r"(?<![\w.])(?P<title>[A-Z][a-z]{1,9})(?:\.[ \t]*|[ \t]+)$")
_OPENERS = frozenset("\"'\u201c\u2018([{*\u2022>-\u2013\u2014 \t")
_ENDS = frozenset(".!?:;\n…")


class _Piece(NamedTuple):
    start: int
    end: int  # without a possessive 's
    text: str  # without a possessive 's
    kind: str  # "cap", "acro" (all capitals), "conn" ("of", "&"), "x" (not a name word)
    possessive: bool


def _pieces(text: str, start: int, end: int) -> list[_Piece]:
    out = []
    for m in _PIECE.finditer(text, start, end):
        s, e = m.span()
        word = m.group()
        possessive = len(word) > 3 and word.endswith(("'s", "\u2019s"))
        if possessive:
            word, e = word[:-2], e - 2
        if word == "&" or word in CONNECTORS:
            kind = "conn"
        elif len(word) < 2 or not word[0].isupper() or has_digit(word):
            kind = "x"
        else:
            kind = "acro" if word.isupper() else "cap"
        out.append(_Piece(s, e, word, kind, possessive))
    return out


class _Reader:
    """The name rules over one text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.out: list[Candidate] = []

    # --- the words around a span ------------------------------------------------------------

    def prev_word(self, start: int, skip_the: bool = False) -> str | None:
        m = _PREV_WORD.search(self.text, max(0, start - 30), start)
        if m is None:
            return None
        if skip_the and m.group(1) == "the":
            return self.prev_word(m.start(), False)
        return m.group(1)

    def next_word(self, end: int) -> str | None:
        m = _NEXT_WORD.match(self.text, end)
        return m.group(1) if m else None

    def agent_follows(self, piece: _Piece) -> bool:
        """The next word is a verb with this name as subject: "Jordan said", "Rose watered"."""
        if piece.possessive:
            return False
        word = self.next_word(piece.end)
        return word is not None and (
            word in AGENT_VERBS or (len(word) > 4 and word.endswith("ed") and word.islower())
        )

    def is_initial(self, start: int) -> bool:
        """Whether a word at `start` opens a sentence or a line."""
        j = start - 1
        text = self.text
        while j >= 0 and text[j] in _OPENERS:
            j -= 1
        return j < 0 or text[j] in _ENDS

    def emit(self, kind: str, first: _Piece, last: _Piece, score: float) -> None:
        value = self.text[first.start : last.end]
        key = fold(value)
        if kind == "org":
            key = key.removeprefix("the ")
        self.out.append(Candidate(kind, value, key, first.start, last.end, score, 5))

    # --- rules ------------------------------------------------------------------------------

    def speakers(self) -> list[tuple[int, int]]:
        """ "Caroline: I went ..." at the start of a line: the spans it took."""
        taken = []
        for m in _SPEAKER.finditer(self.text):
            words = m.group("name").split()
            if any((w in COMMON and w not in FIRST_NAMES) or w.isupper() for w in words):
                continue
            pieces = _pieces(self.text, *m.span("name"))
            if len(pieces) != len(words) or any(p.kind != "cap" for p in pieces):
                continue
            known = words[0] in FIRST_NAMES
            if not known and (
                words[0] in ORGS
                or words[0] in LOCATIONS
                or not _TURN_OPENING.match(self.text, m.end())
            ):
                continue  # "Dates: 2023-05-07, ...": a label, not someone speaking
            self.emit("person", pieces[0], pieces[-1], 0.95 if known else 0.8)
            taken.append(m.span("name"))
        return taken

    def run(self, pieces: list[_Piece]) -> None:
        """One run of capitalised words, split where a name cannot go on."""
        part: list[_Piece] = []
        for piece in pieces:
            if piece.kind == "x":
                self._part(part)
                part = []
                continue
            part.append(piece)
            if piece.possessive:
                self._part(part)
                part = []
        self._part(part)

    def _part(self, part: list[_Piece]) -> None:
        while part and part[-1].kind == "conn":
            part = part[:-1]
        if not part:
            return
        first = part[0]
        title = _TITLE_BEFORE.search(self.text, max(0, first.start - 12), first.start)
        if title is not None and title["title"] in TITLES and first.kind == "cap":
            self._titled(part)
            return
        if first.text in TITLES and len(part) > 1 and self._gap_is_space(first, part[1]):
            self._titled(part[1:])
            return
        if _SAINT_BEFORE.search(self.text, max(0, first.start - 8), first.start):
            return  # "St. Louis", "St. Mary's Hospital": a place or an institution, not a person
        self.classify(part, self.is_initial(first.start))

    def _gap_is_space(self, a: _Piece, b: _Piece) -> bool:
        return not self.text[a.end : b.start].strip()

    def _titled(self, part: list[_Piece]) -> None:
        """The name after "Dr.", "Mrs.", "Aunt": up to three capitalised words."""
        n = 1
        while n < len(part) and n < 3 and self._surname(part, n):
            n += 1
        if part[0].kind == "cap" and part[0].text not in COMMON:
            self.emit("person", part[0], part[n - 1], 0.9)
        if n < len(part):
            self.classify(part[n:], False)

    def classify(self, part: list[_Piece], initial: bool) -> None:
        # Drop what opens a sentence without being a name ("Meet Julia", "The University
        # of Tokyo"), and a leading connector.
        while part and (part[0].kind == "conn" or (initial and part[0].text in COMMON)):
            if self._lookup(part) is not None:  # "The Guardian" opening a sentence
                break
            if part[0].text in FIRST_NAMES and (
                (len(part) > 1 and self._surname(part, 1)) or self.agent_follows(part[0])
            ):
                break  # "Will Harper booked", "May said"
            part = part[1:]
            initial = False
        if not part:
            return
        first, last = part[0], part[-1]
        found = self._lookup(part)
        if found is not None:
            self._gazetteer(part, found, initial)
            return
        words = [p.text for p in part]
        if len(part) > 1:
            if words[-1] in ORG_SUFFIXES or self._org_of(words):
                self.emit("org", first, last, 0.8)
                return
            if words[-1] in LOC_SUFFIXES or words[0] in LOC_HEADS:
                self.emit("location", first, last, 0.75)
                return
        if first.kind == "cap" and first.text in FIRST_NAMES:
            n = 1
            while n < len(part) and n < 3 and self._surname(part, n):
                n += 1
            if n > 1:
                self.emit("person", first, part[n - 1], 0.85)
            else:
                self._single_name(first, initial)
            if n < len(part):
                self.classify(part[n:], False)
            return
        if len(part) == 1:
            return
        if words[0] in ORGS or words[0] in LOCATIONS:
            return  # "Google Docs", "Berlin Marathon": something named after it
        if any(p.kind == "conn" for p in part):
            # "Mayor of London": the parts on either side of the connector
            piece: list[_Piece] = []
            for p in [*part, None]:
                if p is None or p.kind == "conn":
                    if piece:
                        self.classify(piece, initial and piece[0] is first)
                    piece = []
                else:
                    piece.append(p)
            return
        if words[0] == "The":
            self.classify(part[1:], False)
            return
        # "CC Jane Doe": a full name after an acronym or a common word
        for k in range(1, len(part) - 1):
            if part[k - 1].kind != "acro" and part[k - 1].text not in COMMON:
                break
            if part[k].text in FIRST_NAMES and self._surname(part, k + 1):
                self.classify(part[k:], False)
                break

    @staticmethod
    def _org_of(words: list[str]) -> bool:
        """ "University of Edinburgh", "Royal Bank of Canada": an institution's head word just
        before an "of" that has a name after it."""
        for k in range(1, len(words) - 1):
            if words[k] == "of":
                head = words[k - 1]
                return head in ORG_HEADS or (k > 1 and head in ORG_SUFFIXES)
        return False

    def _lookup(self, part: list[_Piece]) -> str | None:
        """ "org" or "location" when the whole part is a gazetteer entry."""
        value = self.text[part[0].start : part[-1].end]
        if value in ORGS:
            return "org"
        if value in LOCATIONS:
            return "location"
        return None

    def _gazetteer(self, part: list[_Piece], kind: str, initial: bool) -> None:
        first, last = part[0], part[-1]
        word = self.text[first.start : last.end]
        prev = self.prev_word(first.start)
        if LOCATIONS.get(word):  # a place only after "the": "the Amazon"
            if prev == "the":
                self.emit("location", first, last, 0.8)
                return
            if word not in ORGS:
                return
        if kind == "org":
            if not ORGS[word]:
                self.emit("org", first, last, 0.9)
            elif self._org_cue(first, last):
                self.emit("org", first, last, 0.75)
            return
        if word in NAME_PLACES:
            self._name_or_place(first)
            return
        if word in WORD_PLACES and (initial or first.kind == "acro"):
            if prev in PLACE_PREPS:
                self.emit("location", first, last, 0.7)
            return
        self.emit("location", first, last, 0.85)

    def _org_cue(self, first: _Piece, last: _Piece) -> bool:
        nxt = self.next_word(last.end)
        return (
            last.possessive
            or self.agent_follows(last)
            or (nxt is not None and nxt in ORG_NOUNS)
            or self.prev_word(first.start, skip_the=True) in ORG_PREPS
        )

    def _surname(self, part: list[_Piece], i: int) -> bool:
        """part[i] can continue the name that part[i - 1] belongs to."""
        piece, before = part[i], part[i - 1]
        word = piece.text
        return (
            piece.kind == "cap"
            and before.kind == "cap"
            and not before.possessive
            and self._gap_is_space(before, piece)
            and word not in COMMON
            and word not in ORG_SUFFIXES
            and word not in LOC_SUFFIXES
            and (word not in LOCATIONS or word in FIRST_NAMES)
            and ORGS.get(word, True)
        )

    def _single_name(self, piece: _Piece, initial: bool) -> None:
        word = piece.text
        if word in NAME_PLACES:
            self._name_or_place(piece)
        elif word in MONTH_NAMES:
            if self.agent_follows(piece):
                self.emit("person", piece, piece, 0.6)
        elif word in WORD_NAMES:
            if self.agent_follows(piece) or not initial:
                self.emit("person", piece, piece, 0.6)
        else:
            self.emit("person", piece, piece, 0.75)

    def _name_or_place(self, piece: _Piece) -> None:
        """Georgia, Jordan, Paris: a place after "in"/"to", a person before "said"."""
        prev = self.prev_word(piece.start)
        if prev in PLACE_PREPS:
            self.emit("location", piece, piece, 0.75)
        elif self.agent_follows(piece) or prev in PERSON_PREPS:
            self.emit("person", piece, piece, 0.65)
        else:
            self.emit("location", piece, piece, 0.6)


def find(text: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    """Person, org and location candidates outside the `taken` spans."""
    if text.lower() == text:
        return []  # no capitals, no names
    reader = _Reader(text)
    taken = taken + reader.speakers()
    for m in _RUN.finditer(text):
        start, end = m.span()
        pieces = _pieces(text, start, end)
        for s, e in taken:
            if s < end and start < e:  # a date or an id inside the run: not name words
                pieces = [
                    p._replace(kind="x") if s < p.end and p.start < e else p for p in pieces
                ]
        reader.run(pieces)
    return reader.out
