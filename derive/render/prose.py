"""derive's sentences, split into words and mathematics for the typeset formats (LaTeX, HTML).

Two kinds of text come from derive's own messages:

- prose that names the network's values (``chain rule: W2[0,0] enters Z2 only through
  ...``): :func:`name_segments` finds the names, so a format prints them in its notation
  (``W^{[2]}[0,0]`` in course notation);
- the index-calculus steps of the identities (``RHS = Σ_{b<r} Σ_{a<q} Cᵀ[j,b] A[i,a]
  B[a,b]``, ``x[j]·δ_{ic}``): :func:`index_segments` tells the words from the
  mathematics and writes the mathematics as LaTeX (``\\sum_{b<r}``, ``\\delta_{ic}``).

A segment is ``("text", plain text)`` or ``("math", LaTeX)``; the format escapes text and
typesets math.  Math built here comes from a fixed table of characters: any other
character of the input stays text, so nothing in a message becomes a LaTeX command.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Segment = tuple[str, str]

_NAME_TOKEN = re.compile(r"(?<![A-Za-z0-9_])(d?[A-Za-z][A-Za-z_]*\d*)(\[\d+(?:, ?\d+)?\])?(?![A-Za-z0-9_(])")


def name_segments(text: str, is_name: Callable[[str], bool]) -> list[Segment]:
    """``text`` with each network name (``is_name``), entry or not, as a math segment
    holding the name as written (``W2[0,0]``); the format typesets it."""
    out: list[Segment] = []
    pos = 0
    for m in _NAME_TOKEN.finditer(text):
        base = m.group(1)
        if not is_name(base):
            continue
        if m.start() > pos:
            out.append(("text", text[pos:m.start()]))
        out.append(("math", m.group(0).replace(" ", "")))
        pos = m.end()
    if pos < len(text):
        out.append(("text", text[pos:]))
    return out


#: characters of an index-calculus formula → LaTeX
_MATH_CHARS = {
    "Σ": r"\sum", "δ": r"\delta ", "⊗": r"\otimes ", "ᵀ": r"^{\top}", "·": r"\cdot ", "≤": r"\leq ",
    "×": r"\times ", "−": "-", "<": "<", ">": ">", "=": "=", "+": "+", "-": "-", "[": "[", "]": "]",
    "(": "(", ")": ")", "{": "{", "}": "}", "_": "_", ",": ",", " ": " ", "/": "/", "*": "*",
}
#: words (three letters and more, and these) are prose; shorter letter runs are indices (qr, kn)
_SHORT_WORDS = {"is", "of", "by", "at", "to", "as", "in", "on", "an", "a", "i.e", "ie"}
_MATH_WORDS = {"vec": r"\operatorname{vec}", "vec_row": r"\operatorname{vec}_{\mathrm{row}}"}
_TOKEN = re.compile(r"vec_row|[A-Za-z]+(?:\.[A-Za-z]+\.?)?|\d+|\s+|.", re.S)


def _is_word(token: str, nxt: str, prev: str) -> bool:
    if token in _MATH_WORDS:
        return False
    if prev == "'" or token in ("LHS", "RHS"):  # vec(B)'s
        return True
    if token.isupper():  # ABC, a product of matrices
        return False
    if token in _SHORT_WORDS and token != "a":
        return True
    if token == "a":  # "a bijection" is a word; "A[i,a]" and "(b, a)" are indices
        return nxt == " " or nxt == ""
    return len(token) >= 3 and nxt not in ("[", "_")


def index_segments(text: str) -> list[Segment]:
    """An index-calculus step as words and LaTeX mathematics (see the module)."""
    tokens = _TOKEN.findall(text)
    kinds: list[str] = []
    for k, tok in enumerate(tokens):
        nxt = tokens[k + 1][:1] if k + 1 < len(tokens) else ""
        prev = tokens[k - 1][-1:] if k else ""
        if tok[:1].isalpha():
            kinds.append("text" if _is_word(tok, nxt, prev) else "math")
        elif tok.isdigit() or tok in _MATH_CHARS and not tok.isspace():
            kinds.append("math")
        elif tok.isspace():
            kinds.append("space")
        else:
            kinds.append("text")  # ':' ';' and anything unknown
    for k, kind in enumerate(kinds):  # brackets and dashes that open or close words are prose
        tok = tokens[k]
        if kind != "math" or tok not in ("[", "]", "(", ")", ",", "-"):
            continue
        before, after = _neighbour(kinds, k, -1), _neighbour(kinds, k, 1)
        if (tok in "[(" and after == "text") or (tok in "]),"and before == "text") or \
                (tok == "-" and after == "text"):
            kinds[k] = "text"
    out: list[Segment] = []
    for tok, kind in zip(tokens, kinds, strict=True):
        if kind == "space":
            kind = out[-1][0] if out else "text"
        piece = tok if kind == "text" else _math(tok)
        if out and out[-1][0] == kind:
            out[-1] = (kind, out[-1][1] + piece)
        else:
            out.append((kind, piece))
    merged: list[Segment] = []
    for kind, piece in out:  # trailing spaces of a formula belong to the text after it
        if kind == "math" and piece != piece.rstrip():
            merged.append((kind, piece.rstrip()))
            merged.append(("text", piece[len(piece.rstrip()):]))
        else:
            merged.append((kind, piece))
    # a formula whose braces do not balance was cut in the wrong place: it stays text
    return [("text", _plain(p)) if k == "math" and not _balanced(p) else (k, p) for k, p in merged if p]


def _balanced(latex: str) -> bool:
    depth = 0
    for ch in latex:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _plain(latex: str) -> str:
    return latex.replace("\\", "")


def _neighbour(kinds: list[str], k: int, step: int) -> str:
    k += step
    while 0 <= k < len(kinds) and kinds[k] == "space":
        k += step
    return kinds[k] if 0 <= k < len(kinds) else "text"


def _math(token: str) -> str:
    if token in _MATH_WORDS:
        return _MATH_WORDS[token]
    if token.isalnum() and token.isascii():
        return token
    return "".join(_MATH_CHARS.get(ch, "") for ch in token)
