"""The error of input the user can fix, and how a message echoes what the user gave."""

from __future__ import annotations

import re

ECHO_CHARS = 40
"""How much of a value a message echoes (a 5,000-digit number or a 10,000-character name stays a
short line): the first 40 characters, then its length."""

MAX_LINE_CHARS = 480
"""The longest error line ``wanmeter`` prints, its ``wanmeter: error: `` prefix included (an unknown
model's line names all 16 presets: 410 characters with a long name cut to 40)."""

LONG_WORD_CHARS = 120
"""A run of more non-blank characters than this in a message is an echoed value nobody cut: a path
of 120 characters and a list of names separated by ", " pass whole."""

_LONG_WORD = re.compile(rf"\S{{{LONG_WORD_CHARS + 1},}}")


class InputError(ValueError):
    """Input the user can fix: a flag, a name, a file. Its message is one line that names the
    input, says what is wrong with it and, where a list is short, what is valid; ``wanmeter``
    prints it and exits 2. Any other exception is a bug and ends in a traceback.

    A ``ValueError`` still, so that callers that catch one keep working."""


def escape(text: str) -> str:
    """``text`` with every character that is not printable (control characters, terminal escape
    codes, newlines, other invisible code points) written as Python writes it in a ``repr``:
    ``\\x1b``, ``\\n``, ``\\u200b``. Nothing a user gave can move the cursor or break the line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _cut(text: str, limit: int) -> tuple[str, str]:
    return (text, "") if len(text) <= limit else (text[:limit], f"... ({len(text):,} characters)")


def echo(value: object, limit: int = ECHO_CHARS) -> str:
    """``value`` as a message quotes it: a string in quotes with its control characters escaped
    (``repr``), anything else as ``str`` writes it, cut to ``limit`` characters followed by its
    length (``'xxxx'... (10,000 characters)``)."""
    if isinstance(value, str):
        head, tail = _cut(value, limit)
        return repr(head) + tail
    head, tail = _cut(escape(str(value)), limit)
    return head + tail


def _cut_word(word: str) -> str:
    # both ends: a number's leading digits, a path's file name
    return f"{word[:ECHO_CHARS]}...{word[-ECHO_CHARS:]} ({len(word):,} characters)"


def one_line(message: str, limit: int = MAX_LINE_CHARS) -> str:
    """``message`` as one printable line of at most ``limit`` characters: control characters
    escaped, every run of more than :data:`LONG_WORD_CHARS` non-blank characters (an echoed value
    that no message cut) cut to its first and last :data:`ECHO_CHARS`, and the line cut at
    ``limit`` last of all."""
    text = _LONG_WORD.sub(lambda m: _cut_word(m.group(0)), escape(message))
    return text if len(text) <= limit else text[: limit - 3] + "..."
