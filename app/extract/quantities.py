"""Quantities: a number with a unit of measure, a currency or a percent sign.

"600 requests per minute", "5 km", "$1,200", "3.5 GB", "20%", "two hours", "€1,450 a month",
"3 hours 41 minutes". Counts of things ("3 tickets", "1.2 million rows") are not quantities.
The key is the number without separators and the unit's canonical name: "$1,200" ->
"1200 usd", "two hours" -> "2 h", "€1,450 a month" -> "1450 eur/month".
"""

from __future__ import annotations

import re

from app.extract.candidate import Candidate, has_digit

# canonical unit -> the ways it is written. Abbreviations are matched as written (MB is not
# mb is not Mb); spelled-out units also capitalised.
_UNITS: dict[str, tuple[str, ...]] = {
    "%": ("%", "percent", "per cent", "pct", "percentage points"),
    "ns": ("ns", "nanosecond", "nanoseconds"),
    "µs": ("µs", "μs", "microsecond", "microseconds"),
    "ms": ("ms", "msec", "millisecond", "milliseconds"),
    "s": ("s", "sec", "secs", "second", "seconds"),
    "min": ("min", "mins", "minute", "minutes"),
    "h": ("h", "hr", "hrs", "hour", "hours"),
    "day": ("day", "days", "business days", "working days", "calendar days"),
    "week": ("week", "weeks", "wk", "wks"),
    "month": ("month", "months"),
    "year": ("year", "years", "yr", "yrs"),
    "night": ("night", "nights"),
    "decade": ("decade", "decades"),
    "byte": ("byte", "bytes"),
    "kb": ("KB", "kB", "kb", "kilobyte", "kilobytes"),
    "mb": ("MB", "mb", "megabyte", "megabytes"),
    "gb": ("GB", "gb", "gig", "gigs", "gigabyte", "gigabytes"),
    "tb": ("TB", "tb", "terabyte", "terabytes"),
    "pb": ("PB", "petabyte", "petabytes"),
    "kib": ("KiB",),
    "mib": ("MiB",),
    "gib": ("GiB",),
    "tib": ("TiB",),
    "kbit/s": ("kbps", "Kbps", "kbit/s"),
    "mbit/s": ("Mbps", "mbps", "Mbit/s"),
    "gbit/s": ("Gbps", "gbps", "Gbit/s"),
    "kb/s": ("KB/s", "kB/s"),
    "mb/s": ("MB/s",),
    "gb/s": ("GB/s",),
    "mm": ("mm", "millimetre", "millimetres", "millimeter", "millimeters"),
    "cm": ("cm", "centimetre", "centimetres", "centimeter", "centimeters"),
    "m": ("m", "metre", "metres", "meter", "meters"),
    "km": ("km", "kms", "kilometre", "kilometres", "kilometer", "kilometers"),
    "mi": ("mi", "mile", "miles"),
    "ft": ("ft", "foot", "feet"),
    "in": ("inch", "inches"),
    "yd": ("yd", "yard", "yards"),
    "mg": ("mg", "milligram", "milligrams"),
    "g": ("g", "gram", "grams"),
    "kg": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"),
    "t": ("t", "tonne", "tonnes", "ton", "tons"),
    "lb": ("lb", "lbs"),
    "oz": ("oz", "ounce", "ounces"),
    "pound": ("pound", "pounds"),  # sterling or weight: either way a quantity
    "ml": ("ml", "mL", "millilitre", "millilitres", "milliliter", "milliliters"),
    "l": ("l", "L", "litre", "litres", "liter", "liters"),
    "gal": ("gal", "gallon", "gallons"),
    "cup": ("cup", "cups"),
    "tbsp": ("tbsp", "tablespoon", "tablespoons"),
    "tsp": ("tsp", "teaspoon", "teaspoons"),
    "°c": ("°C", "° C", "ºC", "degrees Celsius", "degrees C", "degrees celsius"),
    "°f": ("°F", "° F", "ºF", "degrees Fahrenheit", "degrees F", "degrees fahrenheit"),
    "°": ("°", "degrees", "degree"),
    "mph": ("mph",),
    "km/h": ("km/h", "kmh", "kph", "kmph"),
    "m/s": ("m/s",),
    "knot": ("knots",),
    "w": ("W", "watt", "watts"),
    "kw": ("kW", "kilowatt", "kilowatts"),
    "mw": ("MW", "megawatt", "megawatts"),
    "kwh": ("kWh",),
    "wh": ("Wh",),
    "mah": ("mAh",),
    "v": ("V", "volt", "volts"),
    "hz": ("Hz",),
    "khz": ("kHz",),
    "mhz": ("MHz",),
    "ghz": ("GHz",),
    "rpm": ("rpm", "RPM"),
    "fps": ("fps", "FPS"),
    "dpi": ("dpi", "DPI"),
    "px": ("px",),
    "req/s": ("rps", "qps", "req/s", "requests/s", "ops/s"),
    "sq ft": ("sq ft", "sqft", "square feet", "square foot"),
    "m²": ("m²", "m2", "sq m", "square metres", "square meters"),
    "acre": ("acre", "acres"),
    "ha": ("ha", "hectare", "hectares"),
    "kcal": ("kcal", "calories"),
    "usd": ("USD", "dollar", "dollars", "buck", "bucks"),
    "eur": ("EUR", "euro", "euros"),
    "gbp": ("GBP", "quid"),
    "cent": ("cent", "cents"),
    "pence": ("pence",),
    "jpy": ("JPY", "yen"),
    "chf": ("CHF", "francs"),
    "cad": ("CAD",),
    "aud": ("AUD",),
    "inr": ("INR", "rupees"),
    "cny": ("CNY", "RMB", "yuan"),
    "sek": ("SEK", "kronor"),
    "btc": ("BTC", "bitcoin"),
    "eth": ("ETH",),
}
_TIME_UNITS = frozenset({"ns", "µs", "ms", "s", "min", "h", "day", "week", "month", "year"})
# written right after the digits only: "30s", "2t" (with a space they are too often words)
_ATTACHED_ONLY = frozenset({"s", "t", "ha", "V", "W", "l", "in"})
_SYMBOLS = {"$": "usd", "US$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr", "₩": "krw",
            "A$": "aud", "C$": "cad", "NZ$": "nzd", "HK$": "hkd", "R$": "brl"}  # fmt: skip

_CANON: dict[str, str] = {}
for _canon, _forms in _UNITS.items():
    for _form in _forms:
        _CANON[_form] = _canon
        if _form.islower() and _form.isalpha() and len(_form) > 3:
            _CANON[_form.capitalize()] = _canon


def _alternation(forms: list[str]) -> str:
    return "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))


_SPACED = _alternation([f for f in _CANON if f not in _ATTACHED_ONLY])
_ALL = _alternation(list(_CANON))
_WORDY = _alternation([f for f in _CANON if f.replace(" ", "").isalpha() and len(f) > 3])

_WORDNUMS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20,
    "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100,
}  # fmt: skip
_MULTS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "k": 1e3,
          "K": 1e3, "m": 1e6, "M": 1e6, "mn": 1e6, "bn": 1e9, "B": 1e9}  # fmt: skip
_TIME_WORDS = {"second": "s", "sec": "s", "minute": "min", "min": "min", "hour": "h", "hr": "h",
               "h": "h", "s": "s", "day": "day", "week": "week", "month": "month", "mo": "month",
               "year": "year", "yr": "year", "night": "night"}  # fmt: skip

# A number: its first digit first, so that `re` can skip to digits; the lookbehind after it
# keeps the match from starting inside an id, a time or a decimal ("v1.2", "02:00").
_NUM = r"(?P<num>\d(?<![\w.,:/#+]\d)(?<!\w-\d)(?:\d{0,2}(?:,\d{3})+|\d*)(?:\.\d+)?)"
_BIG = r"(?:\s(?P<big>thousand|million|billion|trillion))?"
_TIME = r"second|sec|minute|min|hour|hr|day|week|month|year|yr|night"
_RATE = rf"(?:\s?/\s?(?P<slash>{_TIME}|s|h|mo)|\s(?:per|a|an)\s(?P<per>{_TIME}))(?![\w])"

# 3.5 GB, 20%, 30s, 2.3 million dollars, 40 km a week
_UNIT_QUANTITY = re.compile(
    _NUM + _BIG
    + rf"(?:(?P<unit>{_ALL})(?![\w°/])|\s(?P<sunit>{_SPACED})(?![\w°/]|\.\d))"
    + rf"(?:{_RATE})?"
)  # fmt: skip
# $1,200, €1,450 a month, US$5m, USD 500
_MONEY = re.compile(
    r"(?P<sym>[$€£¥₹₩](?<![\w$€£¥₹₩][$€£¥₹₩])|(?<![\w$])(?:US|A|C|NZ|HK|R)\$"
    r"|(?<!\w)(?:USD|EUR|GBP|CHF|JPY|CAD|AUD)\s)"
    r"\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:\s?(?P<big>thousand|million|billion|trillion)|(?P<mult>k|K|m|M|mn|bn|B))?(?!\w)"
    rf"(?:{_RATE})?"
)
# 600 requests per minute: a count over time is a rate
_COUNT_RATE = re.compile(
    _NUM + r"\s(?P<counted>[a-z]+(?:\s[a-z]+)?)\s?(?:per\s|/)(?P<per>" + _TIME + r")s?\b"
)
# two hours, three days: spelled-out numbers with spelled-out units
_WORD_QUANTITY = re.compile(
    r"\b(?P<wnum>(?i:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen"
    r"|twenty|thirty|forty|fifty|sixty|ninety|hundred))"
    + rf"\s(?P<unit>{_WORDY})(?![\w°/])(?:{_RATE})?"
)
_WORD_HINTS = tuple(f"{w} " for w in _WORDNUMS)
_MONEY_HINTS = ("$", "€", "£", "¥", "₹", "₩", "USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD")
# "3 hours 41 minutes", "7 hours and 50 minutes": one duration
_JOIN = re.compile(r",?\s(?:and\s)?")


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _show(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.6f}".rstrip("0")


def _rate(m: re.Match[str]) -> str:
    word = m["slash"] or m["per"]
    return "/" + _TIME_WORDS[word] if word else ""


def _quantity(m: re.Match[str], amount: float, unit: str) -> tuple[int, int, str, bool]:
    big = m.groupdict().get("big")
    if big:
        amount *= _MULTS[big]
    rate = _rate(m)
    is_span = unit in _TIME_UNITS and not rate
    return m.start(), m.end(), f"{_show(amount)} {unit}{rate}", is_span


def find_quantities(text: str) -> list[Candidate]:
    found: list[tuple[int, int, str, bool]] = []  # start, end, key, is a time span
    if has_digit(text):
        for m in _UNIT_QUANTITY.finditer(text):
            found.append(_quantity(m, _number(m["num"]), _CANON[m["unit"] or m["sunit"]]))
        if any(hint in text for hint in _MONEY_HINTS):
            for m in _MONEY.finditer(text):
                amount = _number(m["num"]) * (_MULTS[m["mult"]] if m["mult"] else 1)
                code = m["sym"].strip()
                found.append(_quantity(m, amount, _SYMBOLS.get(code, code.lower())))
        if " per " in text or "/" in text:
            for m in _COUNT_RATE.finditer(text):
                if m["counted"].split()[-1] not in _CANON:  # "5 MB per minute" is above
                    key = f"{_show(_number(m['num']))} {m['counted']}/{_TIME_WORDS[m['per']]}"
                    found.append((m.start(), m.end(), key, False))
    lowered = text.lower()
    if any(hint in lowered for hint in _WORD_HINTS):
        for m in _WORD_QUANTITY.finditer(text):
            found.append(_quantity(m, _WORDNUMS[m["wnum"].lower()], _CANON[m["unit"]]))
    if not found:
        return []
    found.sort()
    out: list[Candidate] = []
    last_span: tuple[int, int, str, bool] | None = None
    for start, end, key, is_span in found:
        # a negative temperature: "-5°C" (not the "2-1" of a score)
        minus = start >= 1 and text[start - 1] in "-\u2212"
        if minus and (start == 1 or text[start - 2].isspace()):
            start -= 1
            key = "-" + key
        if (
            last_span is not None
            and is_span
            and last_span[3]
            and _JOIN.fullmatch(text, last_span[1], start) is not None
        ):
            previous = out.pop()
            start, key = previous.start, previous.normalized + " " + key
        candidate = Candidate("number_with_unit", text[start:end], key, start, end, 0.9, 4)
        out.append(candidate)
        last_span = (start, end, key, is_span)
    return out
