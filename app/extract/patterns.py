"""Entities with a shape of their own: emails, urls, identifiers, quantities.

Each rule is one precompiled regular expression; `find` returns every match of every rule,
overlapping or not (entities.extract settles overlaps). Ranks order equally long overlaps:
an email beats the url inside it, a date ("12.05.2023") beats the version number of the same
shape, an identifier beats a quantity.
"""

from __future__ import annotations

import re

from app.extract.candidate import Candidate, fold, has_digit
from app.extract.quantities import find_quantities

# --- email -----------------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]*@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,24}}\b"
)

# --- url ---------------------------------------------------------------------------------

# Top-level domains for bare domains ("example.com/signup"), without the ones that are also
# English words or file extensions (in, it, me, us, is, to, md, py, sh...).
_TLDS = (
    "com|org|net|io|dev|ai|app|co|edu|gov|info|biz|tv|uk|de|fr|nl|eu|ca|au|ch|se|es|jp|cn"
    "|ru|br|xyz|tech|cloud|online|site|cz|dk|fi|ie|nz|sg|hk|kr|mx|za|pt|gr|tr|il|pl|at|be"
)
_PATH = r"(?:[/?#][^\s<>\"'`]*)?"
_SCHEME_URL = re.compile(r"\b(?:https?|ftp|s3|gs|wss?|file)://[^\s<>\"'`]+")
_WWW_URL = re.compile(rf"\bwww\.{_LABEL}(?:\.{_LABEL})+(?::\d{{2,5}})?{_PATH}")
_BARE_URL = re.compile(
    rf"(?<![\w@./:-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLDS})(?::\d{{2,5}})?"
    rf"(?![\w@-]){_PATH}"
)
# cheap to search for (a literal first): is there a dot before a top-level domain at all?
_TLD_HINT = re.compile(rf"\.(?:{_TLDS})(?![\w-])")
_URL_TRAILING = ".,;:!?'\"\u201d\u2019*"
_OPENING = {")": "(", "]": "[", "}": "{", ">": "<"}
_SCHEME = re.compile(r"^(?:https?://)?(?:www\.)?", re.IGNORECASE)


def _trim_url(url: str) -> str:
    """A url without the punctuation of the sentence around it: "(see x.com/a)." -> x.com/a."""
    while url:
        last = url[-1]
        unbalanced = last in ")]}>" and url.count(_OPENING[last]) < url.count(last)
        if last not in _URL_TRAILING and not unbalanced:
            break
        url = url[:-1]
    return url


def _url_key(url: str) -> str:
    """Scheme (http and https alike) and "www." dropped, host lower-cased, no trailing /."""
    rest = _SCHEME.sub("", url)
    scheme = ""
    if "://" in rest:
        scheme, rest = rest.split("://", 1)
        scheme = scheme.lower() + "://"
    host, sep, path = rest.partition("/")
    return (scheme + host.lower() + sep + path).rstrip("/")


# --- identifiers ---------------------------------------------------------------------------

_HEXC = "[0-9a-fA-F]"
_UUID = re.compile(rf"{_HEXC}(?<![\w-]{_HEXC}){_HEXC}{{7}}-(?:{_HEXC}{{4}}-){{3}}{_HEXC}{{12}}\b")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(
    rf"(?=\d)(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?::\d{{1,5}})?(?![\w]|\.\d)"
)
_PRE = r"(?:-(?:alpha|beta|rc|dev|pre|snapshot)[\w.]*)?"
# v1.2.3, 2.14.0, 3.0.1-beta; two-part versions only after "version"/"release"
_V_VERSION = re.compile(rf"[vV](?<![\w.-][vV])\d+(?:\.\d+){{1,3}}{_PRE}(?!\.?\w)")
_VERSION = re.compile(rf"\d(?<![\w.-]\d)\d*\.\d+\.\d+{_PRE}(?!\.?\w)")
# "section 4.2.1" is a place in a document, not a version
_SECTION_BEFORE = re.compile(
    r"(?:[Ss]ection|[Cc]hapter|[Cc]lause|[Pp]aragraph|[Ff]igure|[Tt]able|[Ss]tep|§)\s*$"
)
_CUED_VERSION = re.compile(
    rf"\b(?:[Vv]ersion|[Rr]elease|[Vv]er\.?)\s+(?P<v>\d+\.\d+{_PRE})(?!\.?\w)"
)
# PROJ-88, OPS-4521, CVE-2024-3094, INV-2023-0042: two or more capitals, then numbers
_TICKET = re.compile(r"[A-Z](?<![\w-][A-Z])[A-Z0-9]{1,9}(?:-[A-Z0-9]+)*-\d{2,}(?![\w-])")
_NOT_TICKET = frozenset({"UTF", "SHA", "ISO", "COVID", "MP", "GPT", "TOP", "WIN", "IPV"})
# #482, #A-77812: a hash and something with a digit (not a hashtag)
_HASH_REF = re.compile(r"#(?<![\w&#]#)(?P<ref>[A-Za-z0-9][\w-]*\d[\w-]*|\d{3,})(?![\w-])")
# db-stage-02, web-03, postgres-stg-1.internal: lower-case words and hyphens, with a digit
_HOST = re.compile(
    r"[a-z](?<![\w.@/:-][a-z])[a-z0-9]+(?:-[a-z0-9]+)+"
    r"(?:\.(?:internal|local|lan|corp|home|intranet|svc|cluster|localdomain))*(?![\w@/-]|\.\w)"
)
_NOT_HOST = frozenset(
    {
        "utf", "sha", "iso", "covid", "top", "x86", "mp", "gpt", "win", "ipv", "mid", "early",
        "late", "pre", "post", "non", "anti", "over", "under", "up", "type", "level", "tier",
        "class", "grade", "size", "round", "day", "week", "year", "phase", "step", "part",
        "page", "chapter", "section", "version", "release", "first", "second", "third", "last",
        "next", "all", "full", "half", "twenty", "thirty", "forty", "fifty", "sixty", "seventy",
        "eighty", "ninety", "ages", "age", "kids", "rfc",
    }
)  # fmt: skip
# git and content hashes: hex with letters and at least two digits, 7 to 64 long
_HEX = re.compile(r"[0-9a-f](?<![\w-][0-9a-f])[0-9a-f]{6,63}(?![\w-])")
# tracking numbers, booking codes: capitals and at least two digits, 6 or more long
_CODE = re.compile(r"[A-Z0-9](?<![\w-][A-Z0-9])[A-Z0-9]{5,39}(?![\w-])")
# a number after a word that says it is one: "case 00412877", "build 8812", "order #A-1"
_CUED_ID = re.compile(r"[A-Z0-9](?<![\w#-][A-Z0-9])[A-Z0-9-]{1,38}[A-Z0-9](?![\w-])")
_ID_CUE = re.compile(
    r"\b(?:[Oo]rder|[Tt]icket|[Cc]ase|[Bb]uild|[Ii]nvoice|[Ii]ssue|PR|[Pp]ull request"
    r"|[Bb]ooking|[Rr]eservation|[Cc]onfirmation|[Tt]racking|[Rr]eference|[Rr]ef|[Aa]ccount"
    r"|[Ii]ncident|[Cc]ustomer|[Cc]laim|[Pp]olicy|[Ss]hipment|[Pp]arcel|[Jj]ob|[Tt]ransaction"
    r"|[Rr]equest|[Pp]atient|[Mm]ember|[Ee]mployee|[Ss]erial|[Mm]odel|[Pp]art)"
    r"(?:\s+(?:[Nn]umber|[Nn]o\.?|[Nn]r\.?|ID|[Ii]d|[Cc]ode))?\s*:?\s*$"
)
_FLIGHT = re.compile(
    r"\b[Ff]light\s+(?:[Nn]umber\s+|[Nn]o\.?\s+)?(?P<f>[A-Z][A-Z0-9]\s?\d{1,4}[A-Z]?)\b"
)


def _identifiers(text: str) -> list[Candidate]:
    out: list[Candidate] = []
    if not has_digit(text):
        return out  # every identifier has a digit

    def add(span: tuple[int, int], score: float) -> None:
        start, end = span
        value = text[start:end]
        out.append(Candidate("identifier", value, fold(value), start, end, score, 3))

    has_dot, has_hyphen = "." in text, "-" in text
    if has_hyphen and text.count("-") >= 4:
        for m in _UUID.finditer(text):
            add(m.span(), 0.95)
    if has_dot:
        for m in _IPV4.finditer(text):
            add(m.span(), 0.9)
        for m in _V_VERSION.finditer(text):
            add(m.span(), 0.9)
        for m in _VERSION.finditer(text):
            if not _SECTION_BEFORE.search(text, max(0, m.start() - 12), m.start()):
                add(m.span(), 0.9)
        if "ersion" in text or "elease" in text or "ver" in text:
            for m in _CUED_VERSION.finditer(text):
                add(m.span("v"), 0.8)
    if has_hyphen:
        for m in _TICKET.finditer(text):
            if m.group().split("-", 1)[0] not in _NOT_TICKET:
                add(m.span(), 0.9)
        for m in _HOST.finditer(text):
            word = m.group()
            if has_digit(word) and word.split("-", 1)[0] not in _NOT_HOST:
                add(m.span(), 0.85)
    if "#" in text:
        for m in _HASH_REF.finditer(text):
            add(m.span("ref"), 0.85)
    for m in _HEX.finditer(text):
        word = m.group()
        if sum(c.isdigit() for c in word) >= 2 and not word.isdigit():
            add(m.span(), 0.75)
    for m in _CODE.finditer(text):
        word = m.group()
        digits = sum(c.isdigit() for c in word)
        if digits >= 2 and digits < len(word) and not word.startswith("COVID"):
            add(m.span(), 0.7)
    for m in _CUED_ID.finditer(text):
        start = m.start()
        if has_digit(m.group()):
            before = start - 1 if start and text[start - 1] == "#" else start
            if _ID_CUE.search(text, max(0, before - 30), before):
                add(m.span(), 0.85)
    if "light" in text:
        for m in _FLIGHT.finditer(text):
            add(m.span("f"), 0.85)
    return out


def find(text: str) -> list[Candidate]:
    """Every email, url, identifier and quantity candidate of `text`, overlaps included."""
    out: list[Candidate] = []
    if "@" in text:
        for m in _EMAIL.finditer(text):
            value = m.group()
            out.append(Candidate("email", value, value.lower(), *m.span(), 0.99, 0))
    urls: list[re.Match[str]] = []
    if "://" in text:
        urls += _SCHEME_URL.finditer(text)
    if "www." in text:
        urls += _WWW_URL.finditer(text)
    if _TLD_HINT.search(text):
        urls += _BARE_URL.finditer(text)
    for m in urls:
        value = _trim_url(m.group())
        start = m.start()
        out.append(Candidate("url", value, _url_key(value), start, start + len(value), 0.95, 0))
    out += _identifiers(text)
    out += find_quantities(text)
    return out
