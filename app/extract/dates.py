"""Calendar dates that can be pinned down without knowing when the text was written.

Found: "2023-05-07", "2023/05/07", "3/14/2024" (month first unless the first number is above
12), "12.05.2023" (day first), "March 3rd", "3 March 2023", "the 12th of October", "July 14,
2022", "Jan. 9", "May 2023", and a bare year after a word such as "in" or "since". Not found:
anything relative ("yesterday", "last Tuesday", "next week"), weekdays, a month alone,
holidays, times of day, "the 21st".

Normalised to ISO: yyyy-mm-dd, yyyy-mm, yyyy, or --mm-dd when the year is not given.

Every pattern starts with a digit or a capital so that `re` can skip to the places where a
match may start; a lookbehind placed after that first character keeps it from starting
inside a longer number or word.
"""

from __future__ import annotations

import calendar
import re

from app.extract.candidate import Candidate, has_digit

_MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4,
    "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8,
    "september": 9, "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11,
    "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_ABBREVIATIONS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                        "Nov", "Dec")  # fmt: skip
# Month names are matched capitalised only: "may", "march" and "august" are also words.
_MONTH = (
    r"(?P<month>January|February|March|April|May|June|July|August|September|October|November"
    r"|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sept|Sep|Oct|Nov|Dec)(?:\.(?=\s))?"
)
_YEAR = r"(?:1[89]\d\d|2[01]\d\d)"
_END = r"(?![\w%$€£¥°/-])"

# 2023-05-07, 2023/05/07
_ISO = re.compile(
    r"(?P<y>\d(?<![\w/.-]\d)\d{3})(?P<sep>[-/])(?P<m>\d\d)(?P=sep)(?P<d>\d\d)"
    + rf"(?:(?=T\d\d:)|{_END})"  # a timestamp's date too: 2024-06-01T03:22:11Z
)
# 3/14/2024, 14/3/24
_SLASHED = re.compile(r"(?P<a>\d(?<![\w/.-]\d)\d?)/(?P<b>\d{1,2})/(?P<y>\d{4}|\d\d)" + _END)
# 12.05.2023 (day first, as written where dots are used)
_DOTTED = re.compile(r"(?P<d>\d(?<![\w.]\d)\d?)\.(?P<m>\d{1,2})\.(?P<y>\d{4})(?![\w.]\w)")
# 3 March 2023, 3rd of March, 12th of October 2021
_DAY_MONTH = re.compile(
    r"(?P<d>\d(?<![\w,.]\d)\d?)(?:st|nd|rd|th)?(?:\s+of)?\s+" + _MONTH
    + rf"(?:,?\s+(?P<y>{_YEAR}))?\b"
)  # fmt: skip
# March 3rd, July 14, 2022, Jan. 9, May 2023, March of 2021
_MONTH_FIRST = re.compile(
    r"\b" + _MONTH + r"\s+(?:"
    + rf"(?P<d>\d\d?)(?:st|nd|rd|th)?(?![\w:]|[.,]\d)(?:,?\s+(?P<y>{_YEAR})\b)?"
    + rf"|(?:of\s+)?(?P<y2>{_YEAR}){_END})"
)  # fmt: skip
# A bare year, kept only after a word that makes it one (checked on the text before it).
_BARE_YEAR = re.compile(r"(?P<y>\d(?<![\w.,$€£¥#/-]\d)\d{3})(?![\w%°/-]|[.,]\d)")
_YEAR_CUE = re.compile(
    r"\b(?:(?P<strong>[Ii]n|[Ss]ince|[Ff]rom|[Uu]ntil|[Tt]ill|[Bb]efore|[Aa]fter|[Dd]uring"
    r"|[Bb]etween|[Ee]arly|[Ll]ate|[Mm]id|[Cc]irca|[Tt]hrough)|[Bb]y|of|and|to|[Aa]round)\s+$"
)
_COUNTED = re.compile(r"\s*(?:%|[a-z])")  # "of 2000 people": a count, not a year


def _valid(year: int | None, month: int, day: int | None) -> bool:
    if not 1 <= month <= 12:
        return False
    if day is None:
        return True
    last = calendar.monthrange(year if year is not None else 2000, month)[1]
    return 1 <= day <= last


def _iso(year: int | None, month: int | None, day: int | None) -> str:
    if month is None:
        return f"{year:04d}"
    if year is None:
        return f"--{month:02d}-{day:02d}"
    if day is None:
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _add(
    out: list[Candidate],
    text: str,
    span: tuple[int, int],
    ymd: tuple[int | None, int | None, int | None],
    score: float,
) -> None:
    year, month, day = ymd
    if month is not None and not _valid(year, month, day):
        return
    start, end = span
    out.append(Candidate("date", text[start:end], _iso(year, month, day), start, end, score, 1))


def find(text: str) -> list[Candidate]:
    if not has_digit(text):
        return []  # every date has a digit
    out: list[Candidate] = []
    if "-" in text or "/" in text:
        for m in _ISO.finditer(text):
            _add(out, text, m.span(), (int(m["y"]), int(m["m"]), int(m["d"])), 0.95)
    if "/" in text:
        for m in _SLASHED.finditer(text):
            a, b, y = int(m["a"]), int(m["b"]), int(m["y"])
            y += 2000 if len(m["y"]) == 2 else 0
            if a > 12:  # 14/3/2024: day first
                _add(out, text, m.span(), (y, b, a), 0.85)
            else:  # 3/4/2024 could be either: month first, as in the US, scored lower
                _add(out, text, m.span(), (y, a, b), 0.85 if b > 12 else 0.7)
    if "." in text:
        for m in _DOTTED.finditer(text):
            _add(out, text, m.span(), (int(m["y"]), int(m["m"]), int(m["d"])), 0.85)
    if any(abbreviation in text for abbreviation in _MONTH_ABBREVIATIONS):
        for m in _DAY_MONTH.finditer(text):
            year = int(m["y"]) if m["y"] else None
            _add(out, text, m.span(), (year, _MONTHS[m["month"].lower()], int(m["d"])), 0.9)
        for m in _MONTH_FIRST.finditer(text):
            month = _MONTHS[m["month"].lower()]
            if m["y2"]:
                _add(out, text, m.span(), (int(m["y2"]), month, None), 0.9)
                continue
            year = int(m["y"]) if m["y"] else None
            # "May 5" without a year is also "may 5 of us come?"
            score = 0.9 if year or m["month"] != "May" else 0.6
            _add(out, text, m.span(), (year, month, int(m["d"])), score)
    for m in _BARE_YEAR.finditer(text):
        year = int(m["y"])
        if not 1800 <= year <= 2099:
            continue
        start = m.start()
        cue = _YEAR_CUE.search(text, max(0, start - 10), start)
        if cue is None or (not cue["strong"] and _COUNTED.match(text, m.end())):
            continue
        _add(out, text, m.span(), (year, None, None), 0.7)
    return out
