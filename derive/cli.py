"""The ``derive`` command: parse arguments, call, render, exit.

Exit codes: 0 everything proven; 1 something refuted or unproven; 2 bad input or usage;
3 an internal error (a bug in derive: please report it).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import derive
from derive.check import document
from derive.check.runner import DEFAULT_TIMEOUT
from derive.check.session import STRATEGIES, load
from derive.errors import DeriveError
from derive.lang import formula as F
from derive.prove.zero import CORES, use_core
from derive.records import REFUTED
from derive.render import formats
from derive.render import terminal as render
from derive.render.latex import PdfError, write
from derive.rules.identities import ALL_SIZES, check_sizes, identities
from derive.spec import Limits
from derive.util.files import write_atomic

OK, FAILED, BAD_INPUT, INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors: one line, exit 2
        self.exit(BAD_INPUT, f"derive: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Verify backpropagation derivations exactly.")
    p.add_argument("--version", action="version", version=f"derive {derive.__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="prove every layer's backprop rules and check the claims")
    c.add_argument("files", nargs="+", metavar="FILE", help="network specs (YAML)")
    c.add_argument("--format", dest="format", choices=formats.names(), default="terminal",
                   help="output format: " + "; ".join(f"{n}: {formats.REGISTRY[n].description}"
                                                       for n in formats.names()))
    c.add_argument("--json", dest="format", action="store_const", const="json",
                   help="same as --format json: one JSON object per file on stdout")
    c.add_argument("-o", "--output", metavar="FILE",
                   help="with --json or --format: write the output to FILE (atomically) instead of stdout")
    c.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="truth engine: global (sympy.diff of the whole cost), local (chain rule "
                        "over the atom graph), auto (global for small networks; default)")
    c.add_argument("--global", dest="strategy", action="store_const", const="global",
                   help="same as --strategy global")
    c.add_argument("--local", dest="strategy", action="store_const", const="local",
                   help="same as --strategy local")
    c.add_argument("--no-rules", action="store_true", help="check only the claims")
    c.add_argument("--explain", action="store_true", help="print the derivation step by step")
    c.add_argument("--latex", metavar="FILE.tex", help="also write the derivation as a LaTeX document")
    c.add_argument("--pdf", action="store_true", help="with --latex: also run pdflatex")
    c.add_argument("--notation", choices=("default", "course"), default=None,
                   help="W_l (default) or W^{[l]} (course) in the LaTeX document")
    c.add_argument("--core", choices=CORES, default=None,
                   help="what decides the exact zero tests: symengine (fast; the default when installed) "
                        "or sympy (SymPy alone, the reference); both give the same verdicts")
    c.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes (default: 2 for networks of 1000+ parameters, else 1)")
    c.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"seconds per rule or claim before it is unproven (timeout) (default {DEFAULT_TIMEOUT:.0f})")
    c.add_argument("--timeout-run", type=float, default=None, metavar="S",
                   help="seconds for each file's whole run (default: no limit)")
    c.add_argument("--max-parameters", type=int, default=Limits.max_parameters, metavar="N",
                   help=f"refuse larger networks (default {Limits.max_parameters})")
    c.add_argument("--max-batch", type=int, default=Limits.max_batch, metavar="N",
                   help=f"refuse larger batches (default {Limits.max_batch})")
    c.add_argument("--max-formula-length", type=int, default=F.MAX_LENGTH, metavar="N",
                   help=f"refuse longer formulas (default {F.MAX_LENGTH} characters)")
    c.add_argument("--max-exponent", type=int, default=F.MAX_EXPONENT, metavar="N",
                   help=f"refuse larger literal exponents (default {F.MAX_EXPONENT})")
    c.add_argument("--max-nesting", type=int, default=F.MAX_DEPTH, metavar="N",
                   help=f"refuse formulas nested deeper (default {F.MAX_DEPTH} levels)")
    t = sub.add_parser("latex", help="write the derivation as a standalone LaTeX document")
    t.add_argument("files", nargs=1, metavar="FILE", help="a network spec (YAML)")
    t.add_argument("-o", "--output", required=True, metavar="FILE.tex", help="where to write the document")
    t.add_argument("--pdf", action="store_true", help="also run pdflatex (when it is on PATH)")
    t.add_argument("--notation", choices=("default", "course"), default=None,
                   help="W_l (default) or W^{[l]} (course)")
    t.add_argument("--strategy", choices=STRATEGIES, default="auto", help="truth engine")
    i = sub.add_parser("identities", help="prove the vec/Kronecker identities for all sizes")
    i.add_argument("--json", action="store_true", help="one JSON object on stdout")
    i.add_argument("--check-sizes", type=int, default=0, metavar="N",
                   help="also check each identity at every size up to N (evidence, not proof)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, highlight=False)
    try:
        if args.command == "identities":
            return _identities(args, out)
        if args.command == "latex":
            return _latex(args, err)
        return _check(args, out, err)
    except KeyboardInterrupt:
        err.print("derive: interrupted")
        return 130


def _check(args: argparse.Namespace, out: Console, err: Console) -> int:
    # a check builds hundreds of thousands of long-lived SymPy objects and few cycles:
    # Python's default collector thresholds then rescan the whole heap again and again
    # (a third of the run time of a large network, measured)
    gc.set_threshold(100_000, 50, 100)
    for flag in ("timeout", "timeout_run", "max_parameters", "max_batch", "max_formula_length", "max_exponent",
                 "max_nesting"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            err.print(f"derive: error: --{flag.replace('_', '-')} must be positive, got {value}")
            return BAD_INPUT
    if args.output and args.format == "terminal":
        err.print("derive: error: -o/--output goes with --json or --format")
        return BAD_INPUT
    if args.core is not None:
        try:
            use_core(args.core)
        except ValueError as exc:
            err.print(f"derive: error: --core: {exc}")
            return BAD_INPUT
    renderer = formats.get(args.format)
    limits = Limits(max_parameters=args.max_parameters, max_batch=args.max_batch)
    lines: list[str] = []
    F.configure(max_length=args.max_formula_length, max_exponent=args.max_exponent, max_depth=args.max_nesting)
    status = OK
    for file in args.files:
        try:
            d = load(file, strategy=args.strategy, limits=limits)
            report = _run(d, not args.no_rules, err, args)
        except DeriveError as exc:
            err.print(f"derive: error: {exc}", markup=False, soft_wrap=True)
            status = max(status, BAD_INPUT)
            continue
        except RecursionError:
            err.print(f"derive: error: {file}: input nested too deeply", markup=False)
            status = max(status, BAD_INPUT)
            continue
        except Exception as exc:  # a bug in derive: say so in one line
            err.print(f"derive: internal error on {file}: {type(exc).__name__}: {exc} "
                      "(please report this)", markup=False, soft_wrap=True)
            status = max(status, INTERNAL)
            continue
        doc = document.build(d, report, sections=args.explain or renderer.needs_sections, notation=args.notation)
        shown = renderer.render(doc)
        if isinstance(shown, str):
            lines.append(shown)
            if not args.output:
                print(shown)
        else:
            out.print(shown)
            out.print()
        if args.latex:
            code = _write_latex(d, report, args.latex, args.pdf, args.notation, err)
            status = max(status, code)
        if not report.ok:
            status = max(status, FAILED)
    if args.output:
        try:
            write_atomic(args.output, "".join(line + "\n" for line in lines))
        except OSError as exc:
            err.print(f"derive: error: cannot write {args.output}: {exc}", markup=False)
            return BAD_INPUT
    return status


def _write_latex(d: derive.Derivation, report: derive.Report, path: str, pdf: bool,
                 notation: str | None, err: Console) -> int:
    try:
        produced = write(d, report, path, pdf=pdf, notation=notation or d.spec.notation)
    except PdfError as exc:
        err.print(f"derive: error: {exc}", markup=False, soft_wrap=True)
        return BAD_INPUT
    except OSError as exc:
        err.print(f"derive: error: cannot write {path}: {exc}", markup=False)
        return BAD_INPUT
    err.print(f"wrote {path}" + (f" and {produced}" if produced else ""), markup=False)
    return OK


def _latex(args: argparse.Namespace, err: Console) -> int:
    file = args.files[0]
    try:
        d = load(file, strategy=args.strategy)
        report = d.report()
    except DeriveError as exc:
        err.print(f"derive: error: {exc}", markup=False, soft_wrap=True)
        return BAD_INPUT
    return _write_latex(d, report, args.output, args.pdf, args.notation, err)


def _identities(args: argparse.Namespace, out: Console) -> int:
    results = identities()
    sizes = check_sizes(args.check_sizes) if args.check_sizes > 0 else {}
    if args.json:
        print(json.dumps({"identities": [
            {"name": r.name, "statement": r.statement, "verdict": r.verdict, "steps": r.steps,
             "counterexample": r.counterexample, "sizes_checked": sizes.get(r.name)} for r in results]},
            ensure_ascii=False))
    else:
        out.print(render.identities(results, sizes, args.check_sizes))
    # general identities must be proven, the wrong variants refuted
    ok = all(r.verdict == ALL_SIZES for r in results[:3]) and all(r.verdict == REFUTED for r in results[3:])
    return OK if ok else FAILED


def _run(d: derive.Derivation, rules: bool, err: Console, args: argparse.Namespace) -> derive.Report:
    total = d.count_checks(rules)
    options = dict(jobs=args.jobs, timeout=args.timeout, timeout_run=args.timeout_run)
    if not err.is_terminal:  # no progress bar in a pipe
        return d.report(rules, **options)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(d.spec.name, total=total)
        return d.report(rules, progress=lambda _c: bar.advance(task), **options)


if __name__ == "__main__":
    sys.exit(main())
