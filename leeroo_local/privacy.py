"""Does a prompt hold private content that must stay on this machine?

A handful of precise rules, each cheap: e-mail addresses, phone numbers written as people write
them (with a + or the separators of a national format), payment card numbers that pass the Luhn
check, IBANs that pass ISO 13616's mod-97 check, API keys and tokens of the common formats,
private key blocks, and paths under a user's home folder. Precision matters as much as recall:
version numbers, dates, hashes and numbers in code must not keep a prompt local, so numbers
count only with their checksum or their layout. A finding names the rule, never the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """Which rule fired and where (offsets only: the matched text is never kept)."""

    rule: str
    start: int
    end: int


_EMAIL = re.compile(
    r"(?<![\w.+-])(?!git@)[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"\.)+[A-Za-z]{2,24}(?![\w-])")

# International (+CC ...) or North American / European layouts with separators; a bare run of
# digits is never a phone number here (it could be anything).
_PHONE = re.compile(
    r"(?<![\w+.-])(?<!\d[ .-])(?:"
    r"\+[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,5}(?:[ .-]\d{2,8}){1,4}"  # +44 20 7946 0958
    r"|\+[1-9]\d{7,14}"  # +442079460958
    r"|\([2-9]\d{2}\)[ ]?[2-9]\d{2}[ .-]\d{4}"  # (415) 555-2671: NANP's area and exchange
    r"|[2-9]\d{2}[ .-][2-9]\d{2}[ .-]\d{4}"  # 415-555-2671
    r"|0\d{1,4}[ /-]\d{3,8}(?:[ -]\d{2,6})?"  # 030 1234567, 020-7946-0958
    r")(?![\w .-]?\d)")

_CARD = re.compile(r"(?<![\w.-])(?:\d[ -]?){12,18}\d(?![\w.-]?\d)")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?"
                   r"(?![A-Za-z0-9])")
_IBAN_LENGTH = {  # ISO 13616 lengths of the countries most often seen
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31,
    "NL": 18, "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SA": 24, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "TR": 26, "AE": 23, "BR": 29, "QA": 29, "UA": 29,
}

# (rule, pattern, literal signs: the pattern runs only when the text holds one of them; a sign
# in lower case is looked for in the lowered text). The signs make a clean prompt cost a few
# substring scans instead of a regex pass per rule.
_SECRETS = [(name, re.compile(pattern), signs) for name, pattern, signs in (
    ("private-key", r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----", ("PRIVATE KEY",)),
    ("api-key:anthropic", r"\bsk-ant-[A-Za-z0-9_-]{20,}", ("sk-ant-",)),
    ("api-key:openai", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", ("sk-",)),
    ("api-key:aws", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", ("AKIA", "ASIA")),
    ("api-key:github", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})",
     ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_")),
    ("api-key:gitlab", r"\bglpat-[A-Za-z0-9_-]{20,}", ("glpat-",)),
    ("api-key:slack", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", ("xox",)),
    ("api-key:google", r"\bAIza[0-9A-Za-z_-]{35}", ("AIza",)),
    ("api-key:stripe", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}", ("_live_", "_test_")),
    ("api-key:huggingface", r"\bhf_[A-Za-z0-9]{30,}", ("hf_",)),
    ("api-key:jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}", (".eyJ",)),
    ("api-key:bearer", r"(?i)\bauthorization:\s*bearer\s+[A-Za-z0-9._~+/=-]{16,}", ("bearer",)),
    ("api-key:assigned", r"(?i)\b(?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token"
                         r"|client[_-]?secret|password|passwd)\b[\"']?\s*[:=]\s*[\"']"
                         r"[^\s\"']{8,}[\"']", ("key", "token", "secret", "passw")),
    ("home-path", r"(?<![\w/])(?:/home/[a-z_][a-z0-9_.-]{0,31}|/Users/[A-Za-z0-9_][\w.-]{0,63}"
                  r"|[A-Za-z]:\\Users\\[^\\/:*?\"<>|\r\n]{1,64})[/\\][^\s\"'`]+",
     ("/home/", "/Users/", "\\Users\\")),
    ("home-path", r"(?<![\w/~])~/[\w.-]+(?:/[^\s\"'`]+)?", ("~/",)),
)]

# Where an IBAN, a card or a phone number could be: two capitals and two digits, or a run of 7 or
# more characters of digits and separators (7 digits at least, counted after). Each starts with a character class, which lets the regex engine
# skip ahead fast; only those spans are read by the precise patterns, the card's only when the
# span holds enough digits for one.
_IBAN_START = re.compile(r"[A-Z]{2}\d{2}")
_DIGITS = re.compile(r"\d[\d ().\-/]{5,}\d")
_NOT_DIGIT = str.maketrans("", "", " ().-/+")


def _luhn(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


# How card numbers are grouped when they are: 4-4-4-4(-3), and Amex's and Diners' 4-6-5 / 4-6-4.
_CARD_GROUPS = {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 6, 5), (4, 6, 4)}


def _card(match: str) -> bool:
    digits = match.replace(" ", "").replace("-", "")
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or len(set(digits)) < 2:
        return False  # the card networks' first digits
    seps = [sep for sep in " -" if sep in match]
    if len(seps) > 1:
        return False
    if seps and tuple(len(g) for g in match.split(seps[0])) not in _CARD_GROUPS:
        return False
    return _luhn(digits)


def _iban(match: str) -> bool:
    code = match.replace(" ", "")
    if _IBAN_LENGTH.get(code[:2]) != len(code):
        return False
    moved = code[4:] + code[:4]
    number = "".join(str(int(ch, 36)) for ch in moved)
    return int(number) % 97 == 1


def _phone(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 7 <= len(digits) <= 15 and len(set(digits.lstrip("0"))) > 1


# North America's 3-3-4 groups anywhere in a span (exactly three, three and four digits).
_NANP_GROUPS = re.compile(r"(?<!\d)\d{3}[ ().\-/]+\d{3}[ ().\-/]+\d{4}(?!\d)")


def _may_be_phone(text: str, start: int, group: str) -> bool:
    """The layouts _PHONE knows, told cheaply: after "+" or "(", a national number starting with 0,
    or North America's 3-3-4 groups somewhere in the span."""
    if text[start - 1:start] in ("+", "(") or group[0] == "0":
        return True
    return _NANP_GROUPS.search(group) is not None


def detect(text: str) -> Finding | None:
    """The first rule that fires on `text` (in the order above), or None."""
    lowered = None
    for name, pattern, signs in _SECRETS:
        hay = text
        if pattern.flags & re.IGNORECASE:
            hay = lowered = text.lower() if lowered is None else lowered
        for sign in signs:
            if sign in hay:
                found = pattern.search(text)
                if found:
                    return Finding(name, found.start(), found.end())
                break
    if "@" in text:
        found = _EMAIL.search(text)
        if found:
            return Finding("email", found.start(), found.end())
    # an IBAN starts with two capitals: text without any skips the scan (one lowering, in C)
    capitals = text != (lowered if lowered is not None else text.lower())
    for start in _IBAN_START.finditer(text) if capitals else ():
        for found in _IBAN.finditer(text, max(0, start.start() - 1), start.start() + 48):
            if _iban(found.group()):  # 48: the longest IBAN, 34 characters in groups of 4
                return Finding("iban", found.start(), found.end())
    for span in _DIGITS.finditer(text):
        lo, hi = max(0, span.start() - 2), span.end() + 1  # 2: a leading "+" or "("
        group = span.group()
        if len(group) < 12 and group[0] != "0" and text[span.start() - 1:span.start()] not in "+(":
            continue  # too short for a card or 3-3-4 groups, and no phone's start: skip it cheaply
        digits = len(group.translate(_NOT_DIGIT))
        if digits < 7:
            continue
        checks = []
        if digits >= 13:
            checks.append(("payment-card", _CARD, _card))
        if _may_be_phone(text, span.start(), group):
            checks.append(("phone", _PHONE, _phone))
        for rule, pattern, valid in checks:
            for found in pattern.finditer(text, lo, hi):
                if valid(found.group()):
                    return Finding(rule, found.start(), found.end())
    return None
