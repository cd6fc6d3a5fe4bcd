"""Terminal renderables for reports (rich).  No mathematics here: it only reads records.

Built here, printed by :mod:`derive.cli`.  Tests render at a fixed width with colour off.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from derive.check.document import Entry, Statement
from derive.records import PROVEN, REFUTED, UNPROVEN, Check, Report

STYLE = {PROVEN: "bold green", REFUTED: "bold red", UNPROVEN: "bold yellow"}
MAX_VALUES = 8


def verdict_text(verdict: str, method: str = "") -> Text:
    label = f"{verdict} (timeout)" if method == "timeout" else verdict
    return Text(label, style=STYLE.get(verdict, ""))


def _seconds(s: float) -> str:
    return f"{s:.2f}s" if s >= 0.01 else "<0.01s"


def header(report: Report) -> Text:
    shape = "-".join(str(n) for n in report.sizes) or f"{report.conventions.get('equations')} equations"
    t = Text()
    t.append(report.name, style="bold")
    t.append(f"  {shape}, batch {report.batch}, {report.parameters} parameters  ({report.file})")
    return t


def conventions(report: Report) -> Text:
    c = report.conventions
    if "equations" in c:
        lines = [f"loss {c['loss']}; parameters {', '.join(c['parameter_names'])}", f"truth: {report.strategy}"]
        return Text("\n".join(lines), style="dim")
    cost = "J = (1/m) Σ ℓ (averaged)" if c.get("average", True) else "J = Σ ℓ (summed)"
    loss = c.get("loss", "?")
    if loss == "mse":
        loss = f"mse, ℓ = {c.get('scale')}·‖a − y‖²"
    lines = [
        f"examples as {c.get('batch_layout', 'columns')}; {cost}; loss {loss}",
        f"truth: {report.strategy}",
    ]
    lines += [f"assuming {a}" for a in report.assumptions]
    return Text("\n".join(lines), style="dim")


def rules_table(checks: list[Check]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col, kw in (("layer", {"justify": "right"}), ("rule", {}), ("statement", {}),
                    ("entries", {"justify": "right"}), ("verdict", {}), ("time", {"justify": "right"})):
        t.add_column(col, **kw)  # type: ignore[arg-type]
    for c in checks:
        t.add_row(str(c.layer) if c.layer else "", c.rule or "", c.statement, str(c.entries), verdict_text(c.verdict, c.method),
                  _seconds(c.seconds))
    return t


def claims_table(checks: list[Check]) -> Table:
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for col in ("claim", "verdict", "why"):
        t.add_column(col)
    for c in checks:
        v = verdict_text(c.verdict, c.method)
        if c.expect != PROVEN:
            v.append(" (expected)" if c.ok else f" (expected {c.expect})", style="dim")
        t.add_row(c.statement + (f"\n  from {c.latex}" if c.latex else ""), v, why(c))
    return t


def why(c: Check) -> str:
    """One short explanation: the diagnosis, the counterexample, or what was tried."""
    parts = []
    if c.diagnosis:
        parts.append(c.diagnosis)
    if c.counterexample is not None:
        ce = c.counterexample
        i, j = ce.entry
        parts.append(f"at entry [{i},{j}]: claimed {ce.claimed}, true {ce.true}")
    if c.detail and c.verdict != PROVEN:
        parts.append(c.detail)
    if c.verdict == PROVEN:
        if "almost everywhere" in c.method:
            parts.append(f"exact almost everywhere, {_count(c.entries, 'entry')}: {c.detail}")
        else:
            parts.append(f"exact, {_count(c.entries, 'entry')}")
    return "; ".join(parts)


def counterexamples(checks: list[Check]) -> RenderableType | None:
    lines = Text()
    for c in checks:
        ce = c.counterexample
        if ce is None:
            continue
        items = list(ce.values.items())
        shown = ", ".join(f"{k} = {v}" for k, v in items[:MAX_VALUES])
        more = f", … ({len(items)} values; --json lists all)" if len(items) > MAX_VALUES else ""
        how = "exact" if ce.exact else "certified by interval arithmetic"
        lines.append(f"{c.target} = {c.formula}", style="bold")
        if ce.claimed.startswith("undefined"):
            lines.append(f" is undefined on an open set of inputs ({how}) around {shown}{more}\n")
        else:
            lines.append(f" is false ({how}) at {shown}{more}\n")
    return lines if lines.plain else None


def render(report: Report) -> Group:
    parts: list[RenderableType] = [header(report), conventions(report)]
    if report.rules:
        parts.append(rules_table(report.rules))
    if report.claims:
        parts.append(claims_table(report.claims))
        ce = counterexamples(report.claims)
        if ce is not None:
            parts.append(ce)
    parts.append(Text(summary_line(report)))
    return Group(*parts)


def _count(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1]}ies" if word.endswith("y") else f"{n} {word}s"


def summary_line(report: Report) -> str:
    out = []
    for label, items in (("rule", report.rules), ("claim", report.claims)):
        if not items:
            continue
        head = _count(len(items), label)
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


def identities(results: list, sizes: dict[str, int], limit: int) -> Group:  # type: ignore[type-arg]
    """The vec/Kronecker identities with their verdicts and index-calculus steps."""
    parts: list[RenderableType] = []
    for r in results:
        t = Text()
        style = "bold green" if r.verdict.startswith("proven") else "bold red" if r.verdict == "refuted" else "bold yellow"
        t.append(f"{r.statement}", style="bold")
        t.append("  ")
        t.append(r.verdict, style=style)
        for k, step in enumerate(r.steps, start=1):
            t.append(f"\n  {k}. {step}")
        if r.counterexample:
            t.append(f"\n  counterexample: {r.counterexample}")
        if r.name in sizes:
            t.append(f"\n  also checked with symbolic entries at all {sizes[r.name]} size combinations up to {limit}",
                     style="dim")
        parts.append(t)
        parts.append(Text(""))
    proven = sum(1 for r in results if r.verdict.startswith("proven"))
    refuted = sum(1 for r in results if r.verdict == "refuted")
    parts.append(Text(f"{proven} identities proven for all sizes; {refuted} wrong variants refuted."))
    return Group(*parts)


def explanation(sections: list) -> Group:  # type: ignore[type-arg]
    """``--explain``: the same sections as the LaTeX document, as terminal text."""

    parts: list[RenderableType] = []
    for k, s in enumerate(sections, start=1):
        parts.append(Text(f"\n{k}. {s.title}", style="bold underline"))
        for t in s.text:
            parts.append(Text(t))
        for it in s.items:
            if isinstance(it, Entry):
                parts.append(Text(f"  {it.lhs} = {it.rhs}"))
                parts.append(Text(f"      {it.why}", style="dim"))
            elif isinstance(it, Statement):
                line = Text(f"  {it.target} = {it.formula}")
                if it.check is not None:
                    line.append("   ")
                    line.append_text(verdict_text(it.check.verdict, it.check.method))
                    if it.check.verdict == PROVEN:
                        line.append(f" for {_count(it.check.entries, 'entry')}", style="dim")
                parts.append(line)
                if it.why:
                    parts.append(Text(f"      {it.why}", style="dim"))
        for r in s.identities:
            parts.append(Text(f"  {r.statement}: {r.verdict}"))
        for c in s.claims:
            line = Text(f"  {c.statement}   ")
            line.append_text(verdict_text(c.verdict, c.method))
            parts.append(line)
            detail = why(c)
            if detail and c.verdict != PROVEN:
                parts.append(Text(f"      {detail}", style="dim"))
    return Group(*parts)
