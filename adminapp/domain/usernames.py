"""The username rule, in one place: the users admin, the command line and sign-in all use it.

A username is NFKC-normalised (fullwidth ``ａｄｍｉｎ`` is ``admin``), made of letters, digits
and ``. _ -``, and its letters come from one script (or one of the script mixes Japanese,
Chinese and Korean names use): ``аdmin`` with a Cyrillic ``а`` is refused beside Latin
letters, a name all in Cyrillic is not. Two names are the same user when their keys (NFKC and
case folded) are equal, so ``ADMIN1`` cannot exist beside ``admin1``.

Pure text functions: no database, no models (the users model keeps its key with them).
"""

import unicodedata

from flask_babel import gettext

MAX_USERNAME_LENGTH = 64
PUNCTUATION = frozenset("._-")
ASCII_DIGITS = frozenset("0123456789")
# Letters, by Unicode general category: upper, lower, title case and "other" (CJK, Arabic,
# Hebrew ...). Modifier letters (Lm: ʰ, ʼ ...) are left out: they pass for punctuation.
LETTER_CATEGORIES = frozenset({"Lu", "Ll", "Lt", "Lo"})
# The mixes of scripts Unicode's "highly restrictive" profile (UTS #39) allows: names in
# Japanese, Chinese and Korean mix their scripts, and Latin, as a matter of course.
ALLOWED_SCRIPT_MIXES = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


def normalize_username(name: str) -> str:
    """The name as it is stored and shown: NFKC-normalised, spaces around it removed."""
    return unicodedata.normalize("NFKC", name or "").strip()


def username_key(name: str) -> str:
    """What makes two names the same user: NFKC, case folded, NFKC again (Unicode's
    NFKC_Casefold, near enough), so ``Admin``, ``ADMIN`` and ``ａｄｍｉｎ`` share one key."""
    folded = normalize_username(name).casefold()
    return unicodedata.normalize("NFKC", folded)


def script_of(letter: str) -> str:
    """The script of a letter, from its Unicode name (``CYRILLIC SMALL LETTER A``): Python's
    unicodedata has no Script property. A name without a known script counts as its own."""
    name = unicodedata.name(letter, "")
    first = name.split(" ", 1)[0]
    return "CJK" if first in ("CJK", "IDEOGRAPHIC") else first or f"U+{ord(letter):04X}"


def scripts_mixed(name: str) -> bool:
    """True when the letters come from scripts that a real name does not mix."""
    scripts = {script_of(c) for c in name if unicodedata.category(c) in LETTER_CATEGORIES}
    return len(scripts) > 1 and not any(scripts <= mix for mix in ALLOWED_SCRIPT_MIXES)


def could_be_a_username(name: str) -> bool:
    """False for a text no stored username can match (control characters, lone surrogates,
    far too long): looking it up is pointless, and PostgreSQL refuses NUL even in a query.
    Names from before this rule (with @ or +) still could, and still sign in."""
    return len(name) <= 4 * MAX_USERNAME_LENGTH and not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)


def username_problems(name: str) -> list[str]:
    """What is wrong with a (normalised) new username, in words a user can act on; empty: fine."""
    if not name:
        return [gettext("A username is required.")]
    problems = []
    if len(name) > MAX_USERNAME_LENGTH:
        problems.append(gettext("Use at most %(max)s characters.", max=MAX_USERNAME_LENGTH))
    if any(not _allowed(c) for c in name):
        problems.append(gettext("Use only letters, digits and . _ - (no spaces or other signs)."))
    elif scripts_mixed(name):
        problems.append(
            gettext(
                "Use the letters of one alphabet: this name mixes alphabets (such as "
                "Latin and Cyrillic), as look-alike names do."
            )
        )
    return problems


def _allowed(c: str) -> bool:
    return c in ASCII_DIGITS or c in PUNCTUATION or unicodedata.category(c) in LETTER_CATEGORIES
