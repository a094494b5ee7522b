"""The filter language's $regex (RE2) and $glob (fnmatch's) as PostgreSQL regular
expressions that match the same strings.

A pattern is parsed by Python's own regular-expression parser (for a glob: the regex that
`fnmatch.translate` makes of it) and written out in PostgreSQL's syntax with RE2's meaning:
\\d \\w \\s and \\b are ASCII, `.` stops at a newline unless (?s), ^ and $ are the text's ends
unless (?m). Every character is written as an escape, so nothing in it is read as syntax.
Greediness is dropped: whether a text matches does not depend on it, and PostgreSQL gives a
whole expression one greediness. PostgreSQL's engine, like RE2, runs without backtracking
blow-ups.

What this cannot say the same way raises NotImplementedFeature (501), rather than match
differently: a pattern Python's parser does not read (\\pL, \\Q...\\E, (?U), flags after
the start; RE2's \\z and \\x{hex} are respelled for it), POSIX classes ("[:"), "{,n}" (RE2
reads it as text, Python as a count), a count above 255 (PostgreSQL's limit),
case-insensitivity for part of a pattern, and a negated class (\\D \\W \\S) beside other
members of a [set]. Case-insensitive matching of a whole pattern ((?i) at its start) folds
case as PostgreSQL does (by the database's locale).
"""

from __future__ import annotations

import fnmatch
import re
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre  # type: ignore[attr-defined]
from typing import Any

from app.errors import NotImplementedFeature

MAX_COUNT = 255  # PostgreSQL's largest {m,n}

# RE2's ASCII classes, as members of a PostgreSQL bracket expression
DIGIT = "0-9"
WORD = "0-9A-Za-z_"
SPACE = "\\u0009\\u000a\\u000c\\u000d\\u0020"
CLASSES = {c.CATEGORY_DIGIT: (DIGIT, False), c.CATEGORY_NOT_DIGIT: (DIGIT, True),
           c.CATEGORY_WORD: (WORD, False), c.CATEGORY_NOT_WORD: (WORD, True),
           c.CATEGORY_SPACE: (SPACE, False), c.CATEGORY_NOT_SPACE: (SPACE, True)}
BOUNDARY = f"(?:(?<=[{WORD}])(?![{WORD}])|(?<![{WORD}])(?=[{WORD}]))"
NOT_BOUNDARY = f"(?:(?<=[{WORD}])(?=[{WORD}])|(?<![{WORD}])(?![{WORD}]))"
NEWLINE = "\\u000a"


class Unsupported(Exception):
    pass


def regex_to_pg(pattern: str) -> str:
    """An RE2 pattern (already checked by filter_dsl) as a PostgreSQL regex for `~` (search
    anywhere in the text, as RE2's search does)."""
    if "[:" in pattern or re.search(r"\{,", pattern):  # RE2 reads these unlike Python
        raise _unsupported(f"the $regex pattern {pattern!r}")
    return _translate(_python_spelling(pattern), f"the $regex pattern {pattern!r}")


def _python_spelling(pattern: str) -> str:
    """RE2's \\z and \\x{hex} spelled as Python's parser reads them (\\Z, \\U...)."""
    out, i = [], 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            hexa = re.match(r"x\{([0-9A-Fa-f]{1,8})\}", pattern[i + 1:])
            if nxt == "z":
                out.append("\\Z")
            elif hexa:
                out.append(f"\\U{int(hexa.group(1), 16):08x}")
                i += len(hexa.group(0)) - 1
            else:
                out.append(ch + nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def glob_to_pg(pattern: str) -> str:
    """A glob (fnmatch.fnmatchcase's) as a PostgreSQL regex for `~` (the whole text)."""
    return "^" + _translate(fnmatch.translate(pattern), f"the $glob pattern {pattern!r}")


def _translate(pattern: str, what: str) -> str:
    try:
        parsed = sre.parse(pattern)
        flags = parsed.state.flags
        body = _seq(parsed, flags)
    except (Unsupported, re.error, OverflowError):
        raise _unsupported(what) from None
    return ("(?i)" if flags & c.SRE_FLAG_IGNORECASE else "") + body


def _unsupported(what: str) -> NotImplementedFeature:
    return NotImplementedFeature(
        f"{what} cannot be matched the same way on the PostgreSQL backend (PostgreSQL has no "
        "equivalent for part of it): write it without Unicode or POSIX classes, \\Q..\\E, "
        "counts above 255 or flags after the start")


def _seq(items: Any, flags: int) -> str:
    return "".join(_item(op, av, flags) for op, av in items)


def _char(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _item(op: Any, av: Any, flags: int) -> str:
    if op is c.LITERAL:
        return _char(av)
    if op is c.NOT_LITERAL:
        return f"[^{_char(av)}]"
    if op is c.ANY:
        return "." if flags & c.SRE_FLAG_DOTALL else f"[^{NEWLINE}]"
    if op is c.IN:
        return _set(av)
    if op is c.BRANCH:
        return "(?:" + "|".join(_seq(branch, flags) for branch in av[1]) + ")"
    if op is c.SUBPATTERN:
        _group, add, remove, inner = av
        if (add | remove) & c.SRE_FLAG_IGNORECASE:
            raise Unsupported  # PostgreSQL's case option is for a whole expression
        return "(?:" + _seq(inner, (flags | add) & ~remove) + ")"
    if op is c.ATOMIC_GROUP:  # fnmatch's (?>.*?fixed): the same matches
        return "(?:" + _seq(av, flags) + ")"
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        return _repeat(av, flags)
    if op is c.AT:
        return _at(av, flags)
    if op is c.ASSERT_NOT and not av[1]:  # fnmatch's never-matching (?!)
        return "(?!)"
    raise Unsupported


def _repeat(av: Any, flags: int) -> str:
    low, high, inner = av
    body = "(?:" + _seq(inner, flags) + ")"
    if high == c.MAXREPEAT:
        if low > MAX_COUNT:
            raise Unsupported
        return body + {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    if high > MAX_COUNT:
        raise Unsupported
    return body + ("?" if (low, high) == (0, 1) else f"{{{low},{high}}}")


def _at(code: Any, flags: int) -> str:
    multiline = flags & c.SRE_FLAG_MULTILINE
    if code is c.AT_BEGINNING:
        return f"(?:^|(?<={NEWLINE}))" if multiline else "^"
    if code is c.AT_END:
        return f"(?:$|(?={NEWLINE}))" if multiline else "$"
    if code is c.AT_BEGINNING_STRING:
        return "^"
    if code is c.AT_END_STRING:
        return "$"
    if code is c.AT_BOUNDARY:
        return BOUNDARY
    if code is c.AT_NON_BOUNDARY:
        return NOT_BOUNDARY
    raise Unsupported


def _set(items: Any) -> str:
    negate = False
    members: list[str] = []
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            members.append(_char(av))
        elif op is c.RANGE:
            members.append(f"{_char(av[0])}-{_char(av[1])}")
        elif op is c.CATEGORY:
            cls, negated = CLASSES.get(av, (None, False))
            if cls is None:
                raise Unsupported
            if negated:
                if len(items) != 1:
                    raise Unsupported  # [\Dx]: a union PostgreSQL's brackets cannot say
                negate = not negate
            members.append(cls)
        else:
            raise Unsupported
    if not members:  # cannot come from a parse, but an empty bracket is an error in SQL
        return "(?!)" if not negate else "."
    return "[" + ("^" if negate else "") + "".join(members) + "]"
