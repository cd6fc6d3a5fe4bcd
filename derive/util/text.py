"""Untrusted text made safe to show: control characters escaped, values shown in bounded size.

A spec is untrusted: its names, claims and LaTeX reach the terminal and error messages.
:func:`printable` escapes every control character (``ESC[8m`` would hide the rest of a
report), and :func:`shown` writes a value as ``repr`` does but never longer than a
line, whatever its size (an alias bomb expands to millions of items; an integer of
100,000 digits cannot even be converted to text by default).
"""

from __future__ import annotations

import reprlib
import unicodedata
from typing import Any

#: characters a terminal acts on rather than shows: C0, DEL, C1, and the bidirectional
#: overrides and isolates (which reorder what follows them on the line)
_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069, 0x200E, 0x200F}


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(text: str, keep_newlines: bool = False) -> str:
    """``text`` with control characters written as escapes (``\\x1b``); tabs and, when
    ``keep_newlines``, newlines kept."""
    if text.isprintable():  # the common case, in C
        return text
    kept = "\n\t" if keep_newlines else ""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in kept or ch == " ":
            out.append(ch)
        elif code < 0x20 or 0x7F <= code < 0xA0 or code in _BIDI or unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(_escape(ch))
        else:
            out.append(ch)
    return "".join(out)


def integer_text(value: int, max_digits: int = 60) -> str:
    """An integer as text, or ``<an integer of N digits>`` when longer than ``max_digits``
    (counted from its bit length: never converted to text)."""
    digits = max(1, int(abs(value).bit_length() * 0.30103) + 1)
    if digits > max_digits + 1:
        return f"<an integer of about {digits} digits>"
    text = str(value)
    if len(text) > max_digits:
        return f"<an integer of {len(text)} digits>"
    return text


class _Short(reprlib.Repr):
    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 4
        self.maxstring = 60
        self.maxother = 60
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        return integer_text(x, self.maxlong)

    def repr_str(self, x: str, level: int) -> str:
        return printable(super().repr_str(x, level))

    def repr_instance(self, x: Any, level: int) -> str:
        # a foreign object (a SymPy matrix, say): its type, never its whole printout
        try:
            size = f" of {len(x)} items" if hasattr(x, "__len__") and len(x) > 4 else ""
        except Exception:
            size = ""
        if size:
            return f"<{type(x).__name__}{size}>"
        text = reprlib.Repr.repr_instance(self, x, level)
        return printable(text)


_SHORT = _Short()


def shown(value: Any, limit: int = 200) -> str:
    """``repr(value)`` for a message: bounded in length and cost, control characters escaped."""
    try:
        text = _SHORT.repr(value)
    except Exception:  # a value whose repr fails must not hide the message it is in
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 1] + "…"
