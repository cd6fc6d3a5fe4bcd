"""Every phrase the renderers print around derive's records, written once.

Records carry codes (:mod:`derive.records`); what a code is called in English lives here,
and every output format (terminal, JSON, Markdown, plain text, LaTeX) takes its words
from this module.  Plain strings only: no rich, no LaTeX, no SymPy.
"""

from __future__ import annotations

from derive.records import PROVEN, REFUTED, UNPROVEN, Check, Counterexample, Method, Report

#: the arithmetic a counterexample was checked in, by ``Counterexample.exact``
ARITHMETIC = {True: "exact rational arithmetic", False: "interval arithmetic (200 bits)"}
#: the same, as the JSON ``arithmetic`` value (kept as it always was)
ARITHMETIC_JSON = {True: "exact rational", False: "interval (200 bits)"}
#: the same, as a short qualifier of "is false" / "is undefined"
CERTIFIED = {True: "exact", False: "certified by interval arithmetic"}

COST = {True: "J = (1/m) Σ ℓ (averaged)", False: "J = Σ ℓ (summed)"}
MORE_VALUES = "--json lists all"


def arithmetic(ce: Counterexample) -> str:
    return ARITHMETIC[ce.exact]


def method_text(c: Check) -> str:
    """How the verdict was reached, in words (the JSON ``method`` value)."""
    m = c.method
    if m == Method.EXACT:
        return f"exact: difference expands to 0 ({c.step}; {c.basis})"
    if m == Method.EXACT_ALMOST_EVERYWHERE:
        return "exact almost everywhere: equal off the kinks"
    if m == Method.INSTANCE:
        return f"instance of {c.basis}"
    if m in (Method.COUNTEREXAMPLE_EXACT, Method.COUNTEREXAMPLE_INTERVAL):
        return f"counterexample ({ARITHMETIC[m.exact_arithmetic]})"
    if m.undefined:
        return f"counterexample: undefined on a set of positive measure ({ARITHMETIC[m.exact_arithmetic]})"
    return str(m)


def verdict_label(c: Check) -> str:
    """``proven``, ``refuted``, ``unproven``, or ``unproven (timeout)``."""
    return f"{c.verdict} (timeout)" if c.method == Method.TIMEOUT else str(c.verdict)


def expectation(c: Check) -> str:
    """What a check that expects another verdict than proven adds to its label."""
    if c.expect == PROVEN:
        return ""
    return " (expected)" if c.ok else f" (expected {c.expect})"


def count(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def seconds(s: float) -> str:
    return f"{s:.2f}s" if s >= 0.01 else "<0.01s"


def at_entry(ce: Counterexample, single: bool = False) -> str:
    """``at entry [0,1]: claimed …, true …``; a value with one entry (a scalar) has no entry to name."""
    if single:
        return f"claimed {ce.claimed}, true {ce.true}"
    i, j = ce.entry
    return f"at entry [{i},{j}]: claimed {ce.claimed}, true {ce.true}"


def why(c: Check) -> str:
    """One short explanation: the diagnosis, the counterexample, or what was tried."""
    parts = []
    if c.diagnosis:
        parts.append(c.diagnosis)
    if c.counterexample is not None:
        parts.append(at_entry(c.counterexample, c.entries == 1))
    if c.detail and c.verdict != PROVEN:
        parts.append(c.detail)
    if c.verdict == PROVEN:
        if c.method == Method.EXACT_ALMOST_EVERYWHERE:
            parts.append(f"exact almost everywhere, {count(c.entries, 'entry')}: {c.detail}")
        else:
            parts.append(f"exact, {count(c.entries, 'entry')}")
        if c.method == Method.EXACT and c.basis:  # proven on the declared input domains only
            parts.append(c.basis)
    return "; ".join(parts)


def counterexample_line(c: Check, max_values: int) -> str | None:
    """``statement is false (how) at x = 1, ...`` (or undefined around), or None."""
    ce = c.counterexample
    if ce is None:
        return None
    items = list(ce.values.items())
    shown = ", ".join(f"{k} = {v}" for k, v in items[:max_values])
    more = f", … ({len(items)} values; {MORE_VALUES})" if len(items) > max_values else ""
    how = CERTIFIED[ce.exact]
    if c.method.undefined:
        return f" is undefined on an open set of inputs ({how}) around {shown}{more}"
    return f" is false ({how}) at {shown}{more}"


def summary_line(report: Report) -> str:
    """``15 rules proven. 7 claims: 6 proven, 1 refuted as expected.``"""
    out = []
    for label, items in (("rule", report.rules), ("claim", report.claims)):
        if not items:
            continue
        head = count(len(items), label)
        if all(c.verdict == PROVEN for c in items):
            out.append(f"{head} proven.")
            continue
        words = []
        for v in (PROVEN, REFUTED, UNPROVEN):
            n = sum(1 for c in items if c.verdict == v)
            if not n:
                continue
            expected = sum(1 for c in items if c.verdict == v and c.expect == v)
            if v == PROVEN or not expected:
                words.append(f"{n} {v}")
            elif expected == n:
                words.append(f"{n} {v} as expected")
            else:
                words.append(f"{n} {v} ({expected} as expected)")
        out.append(f"{head}: {', '.join(words)}.")
    return " ".join(out) if out else "nothing to check."


def counts(report: Report) -> str:
    """``17 proven, 1 refuted, 0 unproven``"""
    s = report.summary()
    return f"{s[PROVEN]} proven, {s[REFUTED]} refuted, {s[UNPROVEN]} unproven"


def header(report: Report) -> str:
    shape = "-".join(str(n) for n in report.sizes) or count(report.conventions.get('equations', 0), 'equation')
    inputs = report.conventions.get("input_shapes")
    if inputs:  # a block: its inputs' shapes say the batch (rows or columns, as the code has it)
        sizes = ", ".join(f"{n} {'×'.join(str(k) for k in s) or 'scalar'}" for n, s in inputs.items())
        return f"  {shape}, inputs {sizes}, {report.parameters} parameters  ({report.file})"
    return f"  {shape}, batch {report.batch}, {report.parameters} parameters  ({report.file})"


def conventions(report: Report) -> list[str]:
    """The conventions every verdict of the report rests on, one line each."""
    c = report.conventions
    if "equations" in c:
        return [f"loss {c['loss']}; parameters {', '.join(c['parameter_names']) or 'none'}",
                f"truth: {report.strategy}",
                *c.get("notes", [])]
    loss = c.get("loss", "?")
    if loss == "mse":
        loss = f"mse, ℓ = {c.get('scale')}·‖a − y‖²"
    elif "delta" in c:
        loss = f"{loss}, δ = {c['delta']}"
    lines = [f"examples as {c.get('batch_layout', 'columns')}; {COST[bool(c.get('average', True))]}; loss {loss}",
             f"truth: {report.strategy}"]  # (a weight decay is among the assumptions)
    return lines + [f"assuming {a}" for a in report.assumptions]


def assertion(c: Check, true_form: str | None = None) -> str:
    """A check that failed, written out for an AssertionError: claimed form, true form,
    diagnosis, counterexample, what was tried, and how."""
    lines = [f"{c.kind} {c.statement} is {c.verdict}" + (f" (expected {c.expect})" if c.expect != PROVEN else "")]
    lines.append(f"  claimed: {c.statement}")
    if true_form is not None:
        lines.append(f"  true:    {true_form}")
    if c.diagnosis:
        lines.append(f"  diagnosis: {c.diagnosis}")
    ce = c.counterexample
    if ce is not None:
        i, j = ce.entry
        where = "" if c.entries == 1 else f"entry [{i},{j}] "
        lines.append(f"  counterexample ({arithmetic(ce)}): {where}claimed {ce.claimed}, true {ce.true}")
        lines.append("    at " + ", ".join(f"{k} = {v}" for k, v in ce.values.items()))
    if c.detail:
        lines.append(f"  {c.detail}")
    lines.append(f"  method: {method_text(c)}")
    return "\n".join(lines)
