"""Numbers as a speech recognizer writes them ("seven", "fifty six", "12", "3.5", "1,000") and as a
speech synthesizer should read them ("fifty-six", "negative three", "three point one four").
"""

from __future__ import annotations

import re
from fractions import Fraction

_UNITS = {"zero": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
          "eight": 8, "nine": 9}
_TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}
_SMALL_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", *_TEENS]
_TENS_WORDS = [*_TENS]
_DIGITS = re.compile(r"^\d+(?:,\d{3})*(?:\.\d+)?$|^\.\d+$")
_ORDINALS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
             "nine": "ninth", "twelve": "twelfth"}

_DIGIT_KINDS = ("unit", "teen", "tens")
_EXACT_DECIMALS = 6
_WORDS_LIMIT = 10**15


def is_number_word(token: str) -> bool:
    return token in _UNITS or token in _TEENS or token in _TENS or _DIGITS.match(token) is not None


def parse_number(tokens: list[str], start: int) -> tuple[Fraction, int] | None:
    """The number that begins at `tokens[start]` and the index just past it, or None."""
    token = _at(tokens, start)
    if _DIGITS.match(token):
        value = Fraction(token.replace(",", ""))
        end = start + 1
        if _at(tokens, end) in _SCALES:
            value, end = value * _SCALES[tokens[end]], end + 1
        return value, end
    if token == "a" and (_at(tokens, start + 1) == "hundred" or _at(tokens, start + 1) in _SCALES):
        tokens = [*tokens[:start], "one", *tokens[start + 1:]]
    return _parse_words(tokens, start)


def _parse_words(tokens: list[str], start: int) -> tuple[Fraction, int] | None:
    total, current, last, i = 0, 0, "", start
    while i < len(tokens):
        word = tokens[i]
        kind = _kind(word)
        if kind is None or not _may_follow(last, kind):
            if word == "and" and last in ("hundred", "scale") and _kind(_at(tokens, i + 1)) in _DIGIT_KINDS:
                i += 1
                continue
            break
        if kind == "hundred":
            current *= 100
        elif kind == "scale":
            total, current = total + current * _SCALES[word], 0
        else:
            current += _UNITS.get(word) or _TEENS.get(word) or _TENS.get(word, 0)
        last, i = kind, i + 1
    value = Fraction(total + current)
    if _at(tokens, i) == "point" and _at(tokens, i + 1) in _UNITS:
        digits = ""
        i += 1
        while _at(tokens, i) in _UNITS:
            digits, i = digits + str(_UNITS[tokens[i]]), i + 1
        value += Fraction(int(digits), 10 ** len(digits))
    return (value, i) if i > start else None


def _at(tokens: list[str], index: int) -> str:
    return tokens[index] if index < len(tokens) else ""


def _kind(word: str) -> str | None:
    if word in _UNITS:
        return "unit"
    if word in _TEENS:
        return "teen"
    if word in _TENS:
        return "tens"
    if word == "hundred":
        return "hundred"
    if word in _SCALES:
        return "scale"
    return None


def _may_follow(last: str, kind: str) -> bool:
    if kind in ("hundred", "scale"):
        return last in ("unit", "teen", "tens") or (kind == "scale" and last == "hundred")
    if kind == "unit":
        return last in ("", "tens", "hundred", "scale")
    return last in ("", "hundred", "scale")


def integer_words(n: int) -> str:
    """English words for an integer: 56 -> "fifty-six", -3 -> "negative three"."""
    if n < 0:
        return "negative " + integer_words(-n)
    if n < 20:
        return _SMALL_WORDS[n]
    if n < 100:
        tens, unit = divmod(n, 10)
        return _TENS_WORDS[tens - 2] + (f"-{_SMALL_WORDS[unit]}" if unit else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_SMALL_WORDS[hundreds]} hundred" + (f" {integer_words(rest)}" if rest else "")
    for name, scale in reversed(_SCALES.items()):
        if n >= scale:
            high, rest = divmod(n, scale)
            return f"{integer_words(high)} {name}" + (f" {integer_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal_words(n: int) -> str:
    """1 -> "first", 22 -> "twenty-second", 30 -> "thirtieth"."""
    words = integer_words(n)
    head, sep, last = words.rpartition("-") if "-" in words else words.rpartition(" ")
    if last in _ORDINALS:
        last = _ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def number_words(value: Fraction) -> tuple[str, bool]:
    """Words for a value and whether they are exact (False: rounded, say "about")."""
    if value.denominator == 1 and abs(value) < _WORDS_LIMIT:
        return integer_words(int(value)), True
    if abs(value) >= _WORDS_LIMIT:
        return _scientific_words(value), False
    exact = _is_short_decimal(value)
    places = _EXACT_DECIMALS if exact else _rounding_places(value)
    scaled = round(value * 10**places)
    if scaled == 0:
        return "almost zero", False
    whole, fraction = divmod(abs(scaled), 10**places)
    digits = str(fraction).zfill(places).rstrip("0")
    words = integer_words(whole) + " point " + " ".join(_SMALL_WORDS[int(digit)] for digit in digits)
    return ("negative " + words) if scaled < 0 else words, exact


def _is_short_decimal(value: Fraction) -> bool:
    return bool((value * 10**_EXACT_DECIMALS).denominator == 1)


def _rounding_places(value: Fraction) -> int:
    if abs(value) >= 1:
        return 2
    places = 2
    while places < _EXACT_DECIMALS and abs(value) < Fraction(1, 10 ** (places - 1)):
        places += 1
    return places


def _scientific_words(value: Fraction) -> str:
    mantissa, exponent = f"{float(value):.2e}".split("e")  # approximate anyway; float normalizes 9.999 -> 1.00
    mantissa_words, _ = number_words(Fraction(mantissa))
    return f"{mantissa_words} times ten to the power of {integer_words(int(exponent))}"
