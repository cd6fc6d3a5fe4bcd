"""Function names ↔ LaTeX: the one table the LaTeX reader and the LaTeX printer share.

Each row is a function of the formula language: the LaTeX head the printer writes
(``relu`` → ``\\operatorname{relu}``) and the spellings the reader accepts for it (the
printed head always among them, so whatever derive prints it reads back).  The reader
(:mod:`derive.lang.latex_reader`) sits below the op registry (:mod:`derive.ops`), so
the table lives here and every activation of the registry must have its row: a missing
one is a named error when the activation is registered.

A spelling is what the reader sees: a macro (``\\sigma``, ``\\tanh``) or the text inside
``\\operatorname{…}`` / ``\\mathrm{…}`` (``relu``; ``\\_`` reads as ``_``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FunctionSymbol:
    name: str  # the formula-language name
    latex: str  # the head the printer writes
    reads: tuple[str, ...] = ()  # further spellings the reader accepts


def reader_key(latex: str) -> str:
    r"""What the reader sees of a printed head: ``\operatorname{relu6}`` → ``relu6``,
    ``\operatorname{gelu\_erf}`` → ``gelu_erf``, ``\sigma`` → ``\sigma``."""
    for macro in (r"\operatorname{", r"\mathrm{"):
        if latex.startswith(macro) and latex.endswith("}"):
            return latex[len(macro):-1].replace(r"\_", "_")
    return latex


FUNCTIONS: dict[str, FunctionSymbol] = {
    s.name: s
    for s in (
        # activations (each has an entry in derive.ops.activations)
        FunctionSymbol("sigmoid", r"\sigma", ("sigmoid",)),
        FunctionSymbol("tanh", r"\tanh", ("tanh",)),
        FunctionSymbol("relu", r"\operatorname{relu}", ("ReLU",)),
        FunctionSymbol("leaky_relu", r"\operatorname{lrelu}", ("leaky_relu",)),
        FunctionSymbol("softplus", r"\operatorname{softplus}"),
        FunctionSymbol("identity", r"\operatorname{id}"),
        FunctionSymbol("softmax", r"\operatorname{softmax}"),
        FunctionSymbol("gelu", r"\operatorname{GELU}", ("gelu",)),
        FunctionSymbol("gelu_erf", r"\operatorname{GELU\_erf}", ("gelu_erf",)),
        FunctionSymbol("silu", r"\operatorname{SiLU}", ("silu",)),
        FunctionSymbol("elu", r"\operatorname{ELU}", ("elu",)),
        FunctionSymbol("relu6", r"\operatorname{ReLU6}", ("relu6",)),
        FunctionSymbol("hardtanh", r"\operatorname{hardtanh}"),
        # other functions of the formula language
        FunctionSymbol("exp", r"\exp", ("exp",)),
        FunctionSymbol("log", r"\log", (r"\ln", "log")),
        FunctionSymbol("vec", r"\operatorname{vec}"),
        FunctionSymbol("diag", r"\operatorname{diag}"),
    )
}


def _reader_table() -> dict[str, str]:
    out: dict[str, str] = {}
    for s in FUNCTIONS.values():
        for key in (reader_key(s.latex), *s.reads):
            if out.setdefault(key, s.name) != s.name:
                raise ValueError(f"the LaTeX spelling {key!r} is claimed by {out[key]} and {s.name}")
    return out


#: spelling the reader sees → formula-language name
READER: dict[str, str] = _reader_table()

#: formula-language name → the LaTeX head the printer writes
PRINTER: dict[str, str] = {s.name: s.latex for s in FUNCTIONS.values()}
