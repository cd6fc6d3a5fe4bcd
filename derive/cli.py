"""The ``derive`` command: parse arguments, call, render, exit.

Exit codes: 0 everything proven; 1 something refuted or unproven; 2 bad input or usage;
3 an internal error (a bug in derive: please report it).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import derive
from derive import report as render
from derive.api import STRATEGIES, load
from derive.errors import DeriveError
from derive.spec import Limits

OK, FAILED, BAD_INPUT, INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        self.exit(BAD_INPUT, f"derive: error: {message}\n")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Verify backpropagation derivations exactly.")
    p.add_argument("--version", action="version", version=f"derive {derive.__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    c = sub.add_parser("check", help="prove every layer's backprop rules and check the claims")
    c.add_argument("files", nargs="+", metavar="FILE", help="network specs (YAML)")
    c.add_argument("--json", action="store_true", help="one JSON object per file on stdout")
    c.add_argument("--strategy", choices=STRATEGIES, default="auto",
                   help="truth engine: global (sympy.diff of the whole cost), local (chain rule "
                        "over the atom graph), auto (global for small networks; default)")
    c.add_argument("--global", dest="strategy", action="store_const", const="global",
                   help="same as --strategy global")
    c.add_argument("--local", dest="strategy", action="store_const", const="local",
                   help="same as --strategy local")
    c.add_argument("--no-rules", action="store_true", help="check only the claims")
    c.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes (default: 2 for networks of 1000+ parameters, else 1)")
    c.add_argument("--max-parameters", type=int, default=Limits.max_parameters, metavar="N",
                   help=f"refuse larger networks (default {Limits.max_parameters})")
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
        return _check(args, out, err)
    except KeyboardInterrupt:
        err.print("derive: interrupted")
        return 130


def _check(args: argparse.Namespace, out: Console, err: Console) -> int:
    limits = Limits(max_parameters=args.max_parameters)
    status = OK
    for file in args.files:
        try:
            d = load(file, strategy=args.strategy, limits=limits)
            report = _run(d, not args.no_rules, err, args.jobs)
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
        if args.json:
            print(json.dumps(report.as_json(), ensure_ascii=False))
        else:
            out.print(render.render(report))
            out.print()
        if not report.ok:
            status = max(status, FAILED)
    return status


def _identities(args: argparse.Namespace, out: Console) -> int:
    from derive.kronecker import ALL_SIZES, check_sizes, identities

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
    ok = all(r.verdict == ALL_SIZES for r in results[:3]) and all(r.verdict == "refuted" for r in results[3:])
    return OK if ok else FAILED


def _run(d: "derive.Derivation", rules: bool, err: Console, jobs: int | None) -> "derive.Report":
    total = d.count_checks(rules)
    if not err.is_terminal:
        return d.report(rules, jobs=jobs)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(d.spec.name, total=total)
        return d.report(rules, progress=lambda _c: bar.advance(task), jobs=jobs)


if __name__ == "__main__":
    sys.exit(main())
