"""One exception tree for everything derive reports as bad input.

Every class also subclasses a builtin (``ValueError``), so callers that do not know
derive can still catch it.  A *refuted claim is not an exception*: it is a result.
Only bad input (a spec that does not load, a formula that does not parse) raises.

Messages are one line and name the place: ``net.yaml: layers[1].activation: ...``.
"""

from __future__ import annotations

#: characters of a message's own part (its place and file come in addition)
MAX_MESSAGE = 600


class DeriveError(ValueError):
    """Base class: bad input of any kind.  The CLI turns it into exit code 2."""


class SpecError(DeriveError):
    """A YAML spec that is malformed or asks for something unsupported."""

    def __init__(self, file: str, place: str, message: str) -> None:
        if len(message) > MAX_MESSAGE:  # a message names the problem: it never prints a whole structure
            message = message[: MAX_MESSAGE - 1] + "…"
        self.file = file
        self.place = place
        self.message = message
        where = ": ".join(p for p in (file, place) if p)
        super().__init__(f"{where}: {message}" if where else message)


class FormulaError(DeriveError):
    """A formula that does not parse or names something unknown.

    ``column`` is 1-based, pointing into ``text``.
    """

    def __init__(self, text: str, column: int | None, message: str) -> None:
        self.text = text
        self.column = column
        self.message = message
        at = f" at column {column}" if column else ""
        super().__init__(f"{message}{at} in {_excerpt(text, column)!r}")


def _excerpt(text: str, column: int | None, width: int = 60) -> str:
    """The formula, or a window of it around the column when it is long."""
    if len(text) <= width:
        return text
    centre = (column or 1) - 1
    start = max(0, min(centre - width // 2, len(text) - width))
    head = "…" if start > 0 else ""
    tail = "…" if start + width < len(text) else ""
    return f"{head}{text[start:start + width]}{tail}"


class LimitError(DeriveError):
    """A resource limit met while evaluating (a result too large): never a refutation,
    the statement is *unproven (limit)*."""


class ShapeError(DeriveError):
    """Operands whose shapes do not fit (in a formula, a spec or an identity)."""
