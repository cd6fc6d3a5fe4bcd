"""The report document: what every renderer (:mod:`derive.render.base`) works from.

A :class:`Document` is the :class:`~derive.records.Report` plus, when asked for, the
derivation written out in sections (what the LaTeX document and ``--explain`` show), the
shapes of the network's values and the true forms of failed targets.  One source of
truth for every format.  Items carry formula-language text (matrix statements) or SymPy
expressions of atoms (entries); renderers decide how they look.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sympy
from sympy import Expr, Matrix, Symbol

from derive.check.claims import as_matrix
from derive.check.session import Derivation
from derive.lang import formula as F
from derive.model.truth import LocalTruth
from derive.ops.layer_types import LAYER_TYPES
from derive.records import PROVEN, REFUTED, Check, Report, RuleKind
from derive.rules.identities import IdentityResult, identities
from derive.util import budget


@dataclass(frozen=True)
class Entry:
    """An entry-level equation ``lhs = rhs`` (SymPy), with why it holds."""

    lhs: sympy.Expr
    rhs: sympy.Expr
    why: str


@dataclass(frozen=True)
class Statement:
    """A matrix-level statement in the formula language, with its check."""

    target: str
    formula: str
    check: Check | None = None
    why: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    items: list[Entry | Statement] = field(default_factory=list)
    identities: list[IdentityResult] = field(default_factory=list)
    claims: list[Check] = field(default_factory=list)
    code: list[str] = field(default_factory=list)  # lines of the user's own code, shown as written


def conventions(d: Derivation, report: Report) -> Section:
    spec = d.spec
    text = []
    if spec.equations is not None:
        text.append(f"A network given by {len(spec.equations.equations)} equations; the loss is "
                    f"{spec.equations.loss}; the parameters are {', '.join(spec.equations.parameters)}.")
    else:
        sizes = "-".join(str(n) for n in spec.sizes)
        acts = ", ".join(layer.activation for layer in spec.layers)
        batch = ("one example (m = 1)" if spec.batch == 1
                 else f"a batch of m = {spec.batch} examples as {spec.batch_layout}")
        text.append(f"Layer sizes {sizes}; activations {acts}; {batch}.")
        cost = "J = (1/m) Σ ℓ (averaged)" if spec.average else "J = Σ ℓ (summed over the batch)"
        loss = spec.loss.kind + (f" with scale {spec.loss.scale}" if spec.loss.kind == "mse" else "")
        text.append(f"Loss {loss}; cost {cost}. dV denotes ∂J/∂V, of V's shape.")
    text.append(f"Jacobians in {spec.layout} layout. Ground truth: {report.strategy}.")
    text += [f"Assumption: {a}." for a in report.assumptions]
    text.append(f"{report.parameters} parameters; every weight, bias, input and target entry is its own symbol.")
    return Section("Network and conventions", text)


def forward(d: Derivation) -> Section:
    net, spec = d.net, d.spec
    items: list[Entry | Statement] = []
    if spec.equations is not None:
        for e in spec.equations.equations:
            items.append(Statement(e.name, e.formula))
    else:
        rows = spec.batch_layout == "rows"
        for layer, layer_spec in zip(net.layers, spec.layers, strict=True):
            l = layer.index
            a = "X" if l == 1 else f"A{l - 1}"
            items.append(Statement(f"Z{l}", LAYER_TYPES[layer_spec.type].statement(l, a, rows)))
            items.append(Statement(f"A{l}", f"{layer.activation.name}(Z{l})"))
    first = next(iter(net.definitions))
    items.append(Entry(first, net.definitions[first], "one representative entry, written out"))
    return Section("Forward pass", [], items)


def _entered(z: Matrix, w: Symbol, definitions: dict[Symbol, Expr], rows: bool) -> str:
    """Which entries of Z a weight enters: "row 0" (W A: one example per column), "column 0"
    (A Wᵀ, A W: one example per row); a single entry is named by the batch layout."""
    hit = [(i, j) for i in range(z.rows) for j in range(z.cols) if definitions[z[i, j]].has(w)]
    one_row, one_column = len({i for i, _ in hit}) == 1, len({j for _, j in hit}) == 1
    if hit and one_row and not (one_column and rows):
        return f"row {hit[0][0]}"
    if hit and one_column:
        return f"column {hit[0][1]}"
    return ", ".join(f"[{i},{j}]" for i, j in hit) or "none"


def backward(d: Derivation, report: Report) -> list[Section]:
    """Per layer: the scalar chain rule for a representative weight, ending in the rule."""
    net = d.net
    local = d.truth if isinstance(d.truth, LocalTruth) else LocalTruth(net)
    by_target = {c.target: c for c in report.rules}
    sections = []
    if d.spec.equations is not None:
        items: list[Entry | Statement] = [Statement(c.target, c.formula, c) for c in report.rules]
        return [Section("Backward pass: the chain rule through each equation",
                        ["Each rule pushes dV back through one equation; each was proven entry by entry "
                         "against the ground truth."], items)]
    rows = d.spec.batch_layout == "rows"
    for layer in reversed(net.layers):
        l = layer.index
        items = []
        w = net.matrices[f"W{l}"][0, 0]
        dw = local.adjoint.get(w)
        if dw is not None and dw in local.adjoint_definitions:
            items.append(Entry(dw, local.adjoint_definitions[dw],
                               f"chain rule: W{l}[0,0] enters Z{l} only through the entries of "
                               f"{_entered(net.matrices[f'Z{l}'], w, net.definitions, rows)}"))
        z = net.matrices[f"Z{l}"][0, 0]
        dz = local.adjoint.get(z)
        if dz is not None and dz in local.adjoint_definitions:
            items.append(Entry(dz, local.adjoint_definitions[dz],
                               f"chain rule through A{l} = {layer.activation.name}(Z{l})"
                               if layer.activation.name != "identity" else "A = Z for the identity"))
        for rule in (f"dZ{l}", f"dW{l}", f"db{l}", f"dA{l - 1}"):
            c = by_target.get(rule)
            if c is not None:
                items.append(Statement(c.target, c.formula, c))
        sections.append(Section(f"Backward pass, layer {l}", [
            "The entry-level chain rule for a representative weight, then the matrix rules it "
            "generalises, each proven for all of its entries."], items))
    last = len(net.layers)
    top = [c for c in report.rules if c.rule == RuleKind.DA and c.layer == last and c.target == f"dA{last}"]
    if top:
        sections[0].items.insert(0, Statement(top[0].target, top[0].formula, top[0], "from the loss"))
    return sections


def kronecker(report: Report) -> Section:
    items: list[Entry | Statement] = [Statement(c.target, c.formula, c) for c in report.rules
                                      if c.rule is not None and RuleKind(c.rule).is_vec]
    return Section("vec and Kronecker forms", [
        "vec stacks columns. Per layer, at this network's sizes; and in general, proven for all sizes "
        "by index calculus."], items, identities())


@dataclass(frozen=True)
class Document:
    """Everything a renderer may show about one spec file, as plain data."""

    report: Report
    sections: list[Section] | None = None  # the derivation step by step (--explain, LaTeX)
    shapes: dict[str, tuple[int, int]] = field(default_factory=dict)  # of the network's values
    true_forms: dict[str, str] = field(default_factory=dict)  # target → its true form, for failures
    notation: str = "default"  # W_l (default) or W^{[l]} (course), for LaTeX
    loss: str = "J"  # what dV differentiates: the cost J, or an equation network's own loss (L)
    constants: frozenset[str] = frozenset()  # the network's free constants (alpha, ...)

    @property
    def scalar(self) -> bool:
        """Every value of the network is a single number: it reads as scalar mathematics."""
        return bool(self.shapes) and all(s == (1, 1) for s in self.shapes.values())


#: seconds the true form of a failure may take (it must never outlast the check it explains)
EXPLAIN_SECONDS = 10.0


def true_form(d: Any, target: str, checked: list[Check] | None = None) -> str:
    """The proven closed-form rule for ``target`` if derive has one, else its first entry
    written out (for a derivation written as NumPy code: the true gradient's first entry);
    within :data:`EXPLAIN_SECONDS`, past them only the target's meaning.  ``checked``: rules
    a report has already checked (one proven there is not proven again)."""
    try:
        with budget.limit(EXPLAIN_SECONDS):
            return _true_form(d, target, checked or [])
    except (budget.Timeout, MemoryError):
        return f"{target} (∂J/∂{target[1:]})"


def _true_form(d: Any, target: str, checked: list[Check]) -> str:
    if getattr(d, "net", None) is None:
        try:
            return str(d.true_form(target))
        except Exception:  # the explanation must never hide the failure it explains
            return f"{target} (∂L/∂{target[1:]})"
    for c in checked:
        if c.kind == "rule" and c.target == target and c.verdict == PROVEN:
            return f"{c.target} = {c.formula}   (proven rule)"
    for rule in d.rules():
        if rule.target == target:
            check = d.check_rule(rule)
            if check.verdict == PROVEN:
                return f"{rule.target} = {rule.formula}   (proven rule)"
    try:
        value = as_matrix(d.evaluator.evaluate(F.parse(target), target))
        text = str(d.truth.unfold(value[0]))
        if len(text) > 300:
            text = text[:300] + " …"
        return f"{target}[0,0] = {text}"
    except Exception:  # the explanation must never hide the failure it explains
        return f"{target} (∂J/∂{target[1:]})"


def true_forms_of(d: Any, report: Report) -> dict[str, str]:
    """The true form of every refuted statement's target (a block spec's are kept by its run)."""
    if getattr(d, "net", None) is None:
        return dict(getattr(d, "last_true_forms", {}))
    out: dict[str, str] = {}
    for c in report.rules + report.claims:
        if c.verdict == REFUTED and c.target not in out and c.kind == "claim":
            out[c.target] = true_form(d, c.target, report.rules)
    return out


def build(d: Any, report: Report, *, sections: bool = False, notation: str | None = None,
          true_forms: dict[str, str] | None = None) -> Document:
    """The document of ``report`` (checked on ``d``); ``sections`` writes the derivation out.
    ``true_forms`` (target → the right statement) default to :func:`true_forms`."""
    if true_forms is None:
        true_forms = true_forms_of(d, report)
    if d.net is None:  # a derivation written as NumPy code: its blocks are the document
        return Document(report, blocks(d, report) if sections else None, {}, dict(true_forms or {}),
                        notation or d.spec.notation)
    shapes = {name: (int(m.shape[0]), int(m.shape[1])) for name, m in d.net.matrices.items()}
    constants = frozenset(str(c) for c in d.net.free_constants)
    loss = d.spec.equations.loss if d.spec.equations is not None else "J"
    return Document(report, explain(d, report) if sections else None, shapes, dict(true_forms or {}),
                    notation or d.spec.notation, loss, constants)



def blocks(d: Any, report: Report) -> list[Section]:
    """The sections of a derivation written as NumPy code: its inputs, its blocks, its checks."""
    spec = d.spec
    inputs = ", ".join(f"{n} {'×'.join(map(str, s)) or 'scalar'}" for n, s in spec.shapes.items())
    text = [f"Inputs: {inputs}; parameters: {', '.join(spec.parameters) or 'none'}.",
            *(f"Assumption: {a}." for a in report.assumptions)]
    forward = [f"{s.line}: {s.text}" for s in spec.forward]
    backward = [f"{s.line}: {s.text}" for s in spec.backward]
    return [Section("Inputs and conventions", text), Section("Forward block", code=forward),
            Section("Backward block", code=backward), Section("Your gradients", [], [], [], list(report.claims))]


def explain(d: Derivation, report: Report) -> list[Section]:
    sections = [conventions(d, report), forward(d), *backward(d, report)]
    if d.spec.equations is None:
        sections.append(kronecker(report))
    if report.claims:
        sections.append(Section("Your claims", [], [], [], list(report.claims)))
    return sections
