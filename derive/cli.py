"""The ``derive`` command: parse arguments, call, render, exit.

Exit codes: 0 everything proven; 1 something refuted or unproven (a time or size limit
included: "not checked" is never a refutation); 2 bad input or usage; 3 an internal
error (a bug in derive: please report it).  Every error is one line on stderr; results
already computed are printed before it.

Startup is cheap: ``--help`` and ``--version`` import neither SymPy nor rich (the heavy
imports are inside the commands), so the defaults shown in the help are written here and
a test keeps them equal to the modules that own them.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from derive import __version__

if TYPE_CHECKING:
    from rich.console import Console

    from derive.records import Report

OK, FAILED, BAD_INPUT, INTERNAL = 0, 1, 2, 3
BROKEN_PIPE = 128 + 13  # what a program killed by SIGPIPE returns: the reader stopped reading
TERMINATED = 128 + 15

# the defaults, written here so that --help needs no heavy import (tests/test_cli_safety.py
# keeps each equal to its owner: derive.check.runner, derive.spec.model.Limits, derive.lang.formula)
DEFAULT_TIMEOUT = 120.0
DEFAULT_TIMEOUT_RUN = 600.0
CORES = ("symengine", "sympy")  # derive.prove.zero.CORES
MAX_SECONDS = 1e6  # a budget above this (11 days) is a typo, and overflows the alarm timer
LIMITS = {"max_parameters": 10_000, "max_batch": 1_000, "max_symbols": 100_000, "max_digits": 100,
          "max_file_bytes": 1_000_000}
FORMULA_LIMITS = {"max_formula_length": 2000, "max_exponent": 64, "max_nesting": 60}
DEFAULT_MEMORY_MB = 4096
FORMATS = ("html", "json", "latex", "markdown", "terminal", "text")  # derive.render.formats.names()
STRATEGIES = ("auto", "global", "local")  # derive.check.session.STRATEGIES
REPORT_GRACE = 1.0  # seconds the report may take after checks that used the whole run budget
MAX_CHECK_SIZES = 5  # derive identities --check-sizes: 6 takes over half a minute
COMMANDS = ("check", "latex", "report", "watch", "identities")


class UsageError(Exception):
    """A bad option value: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # usage errors: one line, exit 2
        self.exit(BAD_INPUT, f"derive: error: {_printable(message)}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds, got {text}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    if value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be at most {MAX_SECONDS:.0f} seconds, got {text}")
    return value


def _jobs(text: str) -> int:
    value = _positive_int(text)
    cores = _cores()
    if value > cores:
        raise argparse.ArgumentTypeError(f"at most {cores} (the cores this process may use), got {value}")
    return value


def _cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Verify backpropagation derivations exactly.",
                epilog="Run 'derive COMMAND --help' for a command's options.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    c = sub.add_parser("check", help="prove every layer's backprop rules and check the claims")
    c.add_argument("files", nargs="+", metavar="FILE", help="network specs (YAML)")
    c.add_argument("--format", dest="format", default="terminal", metavar="NAME",
                   help=f"output format: {', '.join(FORMATS)} (default terminal)")
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
    c.add_argument("--latex", metavar="FILE.tex", help="also write the derivation as a LaTeX document (one FILE)")
    c.add_argument("--pdf", action="store_true", help="with --latex: also run pdflatex")
    c.add_argument("--html", metavar="FILE.html",
                   help="also write the derivation as a self-contained HTML report (math typeset by embedded KaTeX)")
    c.add_argument("--notation", choices=("default", "course"), default=None,
                   help="W_l (default) or W^{[l]} (course) in the LaTeX document and the HTML report")
    c.add_argument("--core", choices=CORES, default=None,
                   help="what decides the exact zero tests: symengine (fast; the default when installed) "
                        "or sympy (SymPy alone, the reference); both give the same verdicts")
    c.add_argument("--jobs", type=_jobs, default=None, metavar="N",
                   help="worker processes, at most one per core: one file's items shared among them, the "
                        "longest first (default: 2 for networks of 1000+ parameters, else 1); several files: "
                        "one file per worker, printed in order (default: one per core)")
    _budget_options(c)
    c.add_argument("--max-parameters", type=_positive_int, default=LIMITS["max_parameters"], metavar="N",
                   help=f"refuse larger networks (default {LIMITS['max_parameters']})")
    c.add_argument("--max-batch", type=_positive_int, default=LIMITS["max_batch"], metavar="N",
                   help=f"refuse larger batches (default {LIMITS['max_batch']})")
    c.add_argument("--max-symbols", type=_positive_int, default=LIMITS["max_symbols"], metavar="N",
                   help=f"refuse networks whose inputs, targets and parameters have more entries "
                        f"(default {LIMITS['max_symbols']})")
    c.add_argument("--max-formula-length", type=_positive_int, default=FORMULA_LIMITS["max_formula_length"],
                   metavar="N", help=f"refuse longer formulas (default {FORMULA_LIMITS['max_formula_length']} "
                                     "characters)")
    c.add_argument("--max-exponent", type=_positive_int, default=FORMULA_LIMITS["max_exponent"], metavar="N",
                   help=f"refuse larger literal exponents (default {FORMULA_LIMITS['max_exponent']})")
    c.add_argument("--max-nesting", type=_positive_int, default=FORMULA_LIMITS["max_nesting"], metavar="N",
                   help=f"refuse formulas nested deeper (default {FORMULA_LIMITS['max_nesting']} levels)")
    t = _document_command(sub, "latex", "write the derivation as a standalone LaTeX document", "FILE.tex")
    t.add_argument("--pdf", action="store_true", help="also run pdflatex (when it is on PATH)")
    _document_command(sub, "report", "write the derivation as a self-contained HTML report", "FILE.html")
    w = sub.add_parser("watch", help="re-check a spec file whenever it changes (Ctrl-C to stop)")
    w.add_argument("files", nargs=1, metavar="FILE", help="a network spec (YAML)")
    w.add_argument("--interval", type=_seconds, default=0.2, metavar="S",
                   help="seconds between looks at the file (default 0.2)")
    w.add_argument("--strategy", choices=STRATEGIES, default="auto", help="truth engine")
    w.add_argument("--no-rules", action="store_true", help="check only the claims")
    w.add_argument("--once", action="store_true", help=argparse.SUPPRESS)  # tests: one check, no loop
    w.add_argument("--max-memory", type=_positive_int, default=DEFAULT_MEMORY_MB, metavar="MB",
                   help=f"address space of the process, in MiB (default {DEFAULT_MEMORY_MB})")
    i = sub.add_parser("identities", help="prove the vec/Kronecker identities for all sizes")
    i.add_argument("--json", action="store_true", help="one JSON object on stdout")
    i.add_argument("--check-sizes", type=_nonnegative_int, default=0, metavar="N",
                   help=f"also check each identity at every size up to N, at most {MAX_CHECK_SIZES} "
                        "(evidence, not proof)")
    i.add_argument("--timeout-run", type=_seconds, default=DEFAULT_TIMEOUT_RUN, metavar="S",
                   help=f"seconds for the whole command (default {DEFAULT_TIMEOUT_RUN:.0f})")
    i.add_argument("--max-memory", type=_positive_int, default=DEFAULT_MEMORY_MB, metavar="MB",
                   help=f"address space of the process, in MiB (default {DEFAULT_MEMORY_MB})")
    return p


def _document_command(sub: Any, name: str, help: str, output: str) -> argparse.ArgumentParser:
    """``derive latex`` and ``derive report``: one spec in, one document out."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    p.add_argument("files", nargs=1, metavar="FILE", help="a network spec (YAML)")
    p.add_argument("-o", "--output", required=True, metavar=output, help="where to write the document")
    p.add_argument("--notation", choices=("default", "course"), default=None,
                   help="W_l (default) or W^{[l]} (course)")
    p.add_argument("--strategy", choices=STRATEGIES, default="auto", help="truth engine")
    _budget_options(p)
    return p


def _budget_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S",
                   help=f"seconds per rule or claim before it is unproven (timeout) (default {DEFAULT_TIMEOUT:.0f})")
    p.add_argument("--timeout-run", type=_seconds, default=DEFAULT_TIMEOUT_RUN, metavar="S",
                   help="seconds for each file's whole run: loading, checks and report; what is not "
                        f"checked by then is unproven (timeout) (default {DEFAULT_TIMEOUT_RUN:.0f})")
    p.add_argument("--max-file-size", type=_positive_int, default=LIMITS["max_file_bytes"], metavar="BYTES",
                   help=f"refuse larger spec files, before reading them (default {LIMITS['max_file_bytes']})")
    p.add_argument("--max-digits", type=_positive_int, default=LIMITS["max_digits"], metavar="N",
                   help=f"refuse integers of more digits in a spec (default {LIMITS['max_digits']})")
    p.add_argument("--max-memory", type=_positive_int, default=DEFAULT_MEMORY_MB, metavar="MB",
                   help="address space of the process, in MiB; an item that needs more is unproven "
                        f"(limit) (default {DEFAULT_MEMORY_MB})")


def _printable(text: str) -> str:
    from derive.util.text import printable

    return printable(text)


def _say(message: str) -> None:
    """One line on stderr, control characters escaped (a file name is untrusted text)."""
    try:
        sys.stderr.write(_printable(" ".join(message.split("\n"))) + "\n")
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass


def _usage(p: argparse.ArgumentParser, argv: Sequence[str]) -> int | None:
    """Bare ``derive`` and ``derive FILE``: usage with the commands, and a hint (exit 2)."""
    if not argv:
        p.print_help(sys.stderr)
        return BAD_INPUT
    first = argv[0]
    if first.startswith("-") or first in COMMANDS:
        return None
    if first.endswith((".yaml", ".yml")) or os.path.isfile(first):
        _say(f"derive: error: '{first}' is not a command; to check it: derive check {' '.join(argv)}")
    else:
        _say(f"derive: error: unknown command '{first}' (expected one of: {', '.join(COMMANDS)}; "
             "derive --help lists them)")
    return BAD_INPUT


def main(argv: Sequence[str] | None = None) -> int:
    global _STARTED
    _STARTED = _now()  # the first file's budget counts from here: imports are part of its run
    argv = list(sys.argv[1:] if argv is None else argv)
    p = parser()
    early = _usage(p, argv)
    if early is not None:
        return early
    try:
        args = p.parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) and usage errors (2, one line already printed)
        return exc.code if isinstance(exc.code, int) else BAD_INPUT
    previous = _on_sigterm()
    memory = _limit_memory(args.max_memory)
    try:
        try:
            if args.command == "identities":
                return _identities(args)
            if args.command == "latex":
                return _latex(args)
            if args.command == "report":
                return _report(args)
            if args.command == "watch":
                return _watch(args)
            return _check(args)
        except UsageError as exc:
            _say(f"derive: error: {exc}")
            return BAD_INPUT
        except KeyboardInterrupt:
            _say("derive: interrupted")
            return 130
        except BrokenPipeError:
            return _closed_pipe()
        finally:
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                _closed_pipe()
            except ValueError:
                pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if memory is not None:  # main() called in a process that goes on (tests, a notebook)
            _restore_memory(memory)


def _closed_pipe() -> int:
    """The reader closed our stdout (``derive check ... | head``): stop quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the flush at exit does not complain again
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return BROKEN_PIPE


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(TERMINATED)  # unwinds: temporary files are removed, nothing half-written stays


def _on_sigterm() -> Any:
    """SIGTERM (what ``timeout`` and CI send) ends the run like Ctrl-C: cleanly."""
    try:
        return signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        return None


def _limit_memory(megabytes: int) -> tuple[int, int] | None:
    """Cap the address space (``RLIMIT_AS``), never raising a cap already set; an item that
    needs more is then unproven (limit) instead of swapping the machine to a halt.
    Returns the limits to restore (None: unchanged)."""
    try:
        import resource
    except ImportError:
        return None
    wanted = megabytes * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft == resource.RLIM_INFINITY or wanted < soft:
        try:
            resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
            return soft, hard
        except (ValueError, OSError):
            pass
    return None


def _restore_memory(limits: tuple[int, int]) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, limits)
    except (ValueError, OSError):
        pass


def _limits(args: argparse.Namespace) -> Any:
    from derive.spec import Limits

    return Limits(max_parameters=getattr(args, "max_parameters", LIMITS["max_parameters"]),
                  max_batch=getattr(args, "max_batch", LIMITS["max_batch"]),
                  max_symbols=getattr(args, "max_symbols", LIMITS["max_symbols"]),
                  max_digits=args.max_digits, max_file_bytes=args.max_file_size)


def _outputs(args: argparse.Namespace) -> None:
    """Checked before the run: an output is never an input, never shared by two inputs,
    and its folder exists (so a long run does not end in 'cannot write')."""
    from derive.util.files import problem

    outputs = [("-o", args.output), ("--latex", getattr(args, "latex", None)), ("--html", getattr(args, "html", None))]
    if args.command in ("latex", "report"):
        outputs = [("-o", args.output)]
    named = [(flag, path) for flag, path in outputs if path]
    for k, (flag, path) in enumerate(named):
        for other, path2 in named[k + 1:]:
            if _same_path(path, path2):
                raise UsageError(f"{flag} and {other} name the same file")
    for flag, path in named:
        why = problem(path, args.files)
        if why is not None:
            raise UsageError(f"{flag} {path}: {why}")
    for flag in ("latex", "html"):
        if args.command == "check" and getattr(args, flag, None) and len(args.files) > 1:
            raise UsageError(f"--{flag} writes one document: give it one FILE, not {len(args.files)} "
                             "(one run per file)")


def _same_path(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _check(args: argparse.Namespace) -> int:
    import gc

    # a check builds hundreds of thousands of long-lived SymPy objects and few cycles:
    # Python's default collector thresholds then rescan the whole heap again and again
    # (a third of the run time of a large network, measured)
    gc.set_threshold(100_000, 50, 100)
    if args.core is not None:
        from derive.prove.zero import use_core

        try:
            use_core(args.core)
        except ValueError as exc:
            raise UsageError(f"--core: {exc}") from None
    if args.pdf and not args.latex:
        raise UsageError("--pdf goes with --latex FILE.tex")
    if args.output and args.format == "terminal":
        raise UsageError("-o/--output goes with --json or --format")
    if args.format not in FORMATS:
        raise UsageError(f"argument --format: invalid choice: '{args.format}' (choose from "
                         f"{', '.join(FORMATS)})")
    import importlib

    from derive.render import base

    # only the chosen format's module (each shipped format is the module of its name, and
    # registers itself when imported): the others' imports are not paid for at start-up
    importlib.import_module(f"derive.render.{args.format}")
    if args.output and len(args.files) > 1 and args.format == "latex":
        raise UsageError("-o with --format latex writes one document: give it one FILE")
    _outputs(args)
    from derive.lang import formula as F

    saved = dict(F.LIMITS)  # (restored after the run: main() may be called again in the same process)
    try:
        F.configure(max_length=args.max_formula_length, max_exponent=args.max_exponent, max_depth=args.max_nesting)
        return _check_files(args, base.get(args.format))
    finally:
        F.LIMITS.update(saved)


def _check_files(args: argparse.Namespace, renderer: Any) -> int:
    limits = _limits(args)
    out = _console(stderr=False)
    err = _console(stderr=True)
    parts: list[str] = []
    status = OK
    jobs = _file_jobs(args)
    if jobs > 1:
        results: Iterator[tuple[int, Any]] = _files_in_parallel(args, limits, renderer, out, jobs)
    else:
        results = (_one_file(file, args, limits, renderer, out, err) for file in args.files)
    for code, shown in results:
        status = max(status, code)
        if shown is None:
            continue
        if isinstance(shown, _Drawn):  # the terminal format, drawn within the budget
            sys.stdout.write(shown)
            sys.stdout.flush()
        else:
            text = _safe_output(shown, args.format)
            parts.append(text)
            if not args.output:
                sys.stdout.write(text + "\n")
                sys.stdout.flush()
    if args.output:
        from derive.util.files import write_atomic

        try:
            write_atomic(args.output, "".join(part + "\n" for part in parts))
        except OSError as exc:
            _say(f"derive: error: {exc.strerror or exc}")
            return max(status, BAD_INPUT)
    return status


def _file_jobs(args: argparse.Namespace) -> int:
    """Worker processes for several files, one file each (1: one file after the other).
    ``--jobs N`` gives N; by default one per core, up to the number of files."""
    if len(args.files) < 2 or args.jobs == 1:
        return 1
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(args.jobs or _cores(), len(args.files))


def _files_in_parallel(args: argparse.Namespace, limits: Any, renderer: Any, out: Console,
                       jobs: int) -> Iterator[tuple[int, Any]]:
    """Each file checked in a forked worker (its items one after the other there), the
    results given back in the files' order, each file's error lines printed with it: the
    output is the serial run's.  Each file has its own run budget, counted from when its
    worker starts it (the first file's from the start of the command, as in a serial run)."""
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    from derive.check import document, session  # noqa: F401 (imported once here: the workers inherit them)
    from derive.check.runner import one_line

    global _FILES
    _FILES = (args, limits, renderer, out, _STARTED)
    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_file_worker_signals) as pool, _ended_on_error(pool):
            futures: list[Future[tuple[int, Any, str]]] = [
                pool.submit(_file_worker, k, file) for k, file in enumerate(args.files)]
            for file, future in zip(args.files, futures, strict=True):
                try:
                    code, shown, said = future.result()
                except Exception as exc:  # a worker that died (killed, out of memory in C): that file only
                    _say(f"derive: internal error on {file}: its worker process ended: "
                         f"{type(exc).__name__}: {one_line(exc)} (please report this)")
                    yield INTERNAL, None
                    continue
                if said:
                    try:
                        sys.stderr.write(said)
                        sys.stderr.flush()
                    except (BrokenPipeError, ValueError):
                        pass
                yield code, shown
    finally:
        _FILES = None


_FILES: tuple[argparse.Namespace, Any, Any, Console, float | None] | None = None  # what file workers inherit


@contextmanager
def _ended_on_error(pool: Any) -> Iterator[None]:
    """SIGTERM, Ctrl-C or a closed pipe in the parent: the workers end now, not after their
    files (the pool would otherwise wait for them)."""
    try:
        yield
    except BaseException:
        processes = list((getattr(pool, "_processes", None) or {}).values())  # (shutdown forgets them)
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        raise


def _file_worker_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # (the parent's handler unwinds the parent's run)


def _file_worker(index: int, file: str) -> tuple[int, Any, str]:
    """One file in a worker: (exit status, rendered output, its lines for stderr)."""
    import io

    global _STARTED
    assert _FILES is not None
    args, limits, renderer, out, started = _FILES
    _STARTED = started if index == 0 else None  # the first file's budget counts from the command's start
    args = argparse.Namespace(**{**vars(args), "jobs": 1})  # (one process per file: its items in turn)
    err = _console(stderr=True, quiet=True)
    saved, sys.stderr = sys.stderr, io.StringIO()
    try:
        code, shown = _one_file(file, args, limits, renderer, out, err)
        return code, shown, sys.stderr.getvalue()
    finally:
        sys.stderr = saved


def _safe_output(text: str, format: str) -> str:
    """Text output with the spec's control characters escaped (JSON: as JSON escapes)."""
    from derive.util.text import printable

    if format == "json":  # json.dumps escapes C0 already; DEL, C1 and bidi controls too, as \\u escapes
        if text.isprintable():
            return text
        return "".join(ch if ch == "\n" or printable(ch) == ch else f"\\u{ord(ch):04x}" for ch in text)
    if format == "latex":  # an escape such as \x1b would be a TeX command: a visible mark instead
        if text.isprintable():
            return text
        return "".join(ch if ch in "\n\t" or printable(ch) == ch else "?" for ch in text)
    return printable(text, keep_newlines=True)


def _console(stderr: bool, quiet: bool = False) -> Console:
    """rich's console for stdout or stderr; ``quiet``: not a terminal (no progress bar)."""
    from rich.console import Console

    width = None if (sys.stderr if stderr else sys.stdout).isatty() else 120
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width if not stderr else None,
                   force_terminal=False if quiet else None)


class _Drawn(str):
    """The terminal format's output, already drawn by rich (styles included)."""


def _one_file(file: str, args: argparse.Namespace, limits: Any, renderer: Any, out: Console,
              err: Console) -> tuple[int, Any]:
    """Load, check and render one file within its run budget: (exit status, rendered output or None)."""
    from derive.check import document
    from derive.check.runner import BAD_INPUT as ITEM_BAD_INPUT
    from derive.check.runner import INTERNAL_ERROR
    from derive.util import budget

    phase = "loading"
    start = _started()

    def left() -> float:
        return max(0.0, args.timeout_run - (_now() - start))

    try:
        with budget.limit(max(left(), 1e-3)):
            from derive.check.session import load

            d = load(file, strategy=args.strategy, limits=limits)
            phase = "checking"
        with budget.limit(left() + 0.25):  # (each item stops at the run's deadline; this is for the rest)
            report = _run(d, not args.no_rules, err, args, left())
        phase = "reporting"
        with budget.limit(max(left(), REPORT_GRACE)), _own_text():  # (even when the checks used it all)
            doc = document.build(d, report, sections=args.explain or renderer.needs_sections,
                                 notation=args.notation)
            shown = renderer.render(doc)
            if not isinstance(shown, str):  # drawing a large table costs too: within the budget
                with out.capture() as drawn:
                    out.print(shown)
                    out.print()
                shown = _Drawn(drawn.get())
    except BaseException as exc:  # noqa: B036 (every error ends in one line; SIGTERM and Ctrl-C go on up)
        if isinstance(exc, (KeyboardInterrupt, SystemExit, BrokenPipeError)):
            raise
        return _file_error(file, phase, exc, args), None
    status = OK if report.ok else FAILED
    for c in [*report.rules, *report.claims]:  # items that failed, after the results of the others
        if c.detail and c.detail.startswith(ITEM_BAD_INPUT):
            message = c.detail[len(ITEM_BAD_INPUT):]
            where = "" if message.startswith(f"{file}:") else f"{file}: {c.place or c.target}: "
            _say(f"derive: error: {where}{message}")
            status = max(status, BAD_INPUT)
        elif c.detail and c.detail.startswith(INTERNAL_ERROR):
            _say(f"derive: internal error on {file}: {c.statement[:200]}: {c.detail[len(INTERNAL_ERROR):]} "
                 "(please report this)")
            status = max(status, INTERNAL)
    if args.latex:
        status = max(status, _write_latex(d, report, args.latex, args.pdf, args.notation))
    if args.html:
        status = max(status, _write_html(d, report, args.html, args.notation))
    return status, shown


def _file_error(file: str, phase: str, exc: BaseException, args: argparse.Namespace) -> int:
    from derive.check.runner import one_line
    from derive.errors import DeriveError
    from derive.util.budget import Timeout

    if isinstance(exc, DeriveError) and phase != "reporting":
        _say(f"derive: error: {one_line(exc)}")
        return BAD_INPUT
    if isinstance(exc, Timeout):
        what = "not written" if phase.startswith("writing") else "not checked"
        _say(f"derive: {file}: {what}: {phase} ran out of the run's time budget "
             f"({args.timeout_run:g} s; raise it with --timeout-run)")
        return FAILED
    if isinstance(exc, MemoryError):
        _say(f"derive: {file}: not checked (limit): {phase} ran out of memory "
             f"({args.max_memory} MiB; raise it with --max-memory)")
        return FAILED
    if isinstance(exc, RecursionError):
        _say(f"derive: {file}: not checked (limit): {phase} nested too deeply for derive's recursion limit")
        return FAILED
    _say(f"derive: internal error on {file} while {phase}: {type(exc).__name__}: {one_line(exc)} "
         "(please report this)")
    return INTERNAL


def _now() -> float:
    import time

    return time.monotonic()


_STARTED: float | None = None  # when main() began


def _started() -> float:
    """When this file's run began: main()'s start for the first file, now for the next ones."""
    global _STARTED
    start = _now() if _STARTED is None else _STARTED
    _STARTED = None
    return start


def _write_latex(d: Any, report: Report, path: str, pdf: bool, notation: str | None) -> int:
    from derive.render.latex import LatexFailed, PdfError, write

    try:
        with _own_text():
            produced = write(d, report, path, pdf=pdf, notation=notation or d.spec.notation)
    except PdfError as exc:  # pdflatex rejecting derive's own document is a bug in derive
        if isinstance(exc, LatexFailed):
            _say(f"derive: internal error: {exc}")
            return INTERNAL
        _say(f"derive: error: {exc}")
        return BAD_INPUT
    except OSError as exc:
        _say(f"derive: error: {exc.strerror or exc}" if "cannot write" in str(exc.strerror)
             else f"derive: error: cannot write {path}: {exc.strerror or exc}")
        return BAD_INPUT
    except Exception as exc:  # a bug in derive's LaTeX (an error in its own text included): one line
        from derive.check.runner import one_line
        from derive.util.budget import Timeout

        if isinstance(exc, Timeout):
            raise

        _say(f"derive: internal error writing {path}: {type(exc).__name__}: {one_line(exc)} (please report this)")
        return INTERNAL
    _say(f"wrote {path}" + (f" and {produced}" if produced else ""))
    return OK


@contextmanager
def _own_text() -> Iterator[None]:
    """Printing re-reads derive's own statements (a derived rule can be longer than any
    formula a user may write): the length limit on formulas is for the user's text only.
    An error in that text is then derive's (exit 3), never the user's."""
    from derive.lang import formula as F

    saved = dict(F.LIMITS)
    F.LIMITS["max_length"] = max(saved["max_length"], 10_000_000)
    try:
        yield
    finally:
        F.LIMITS.update(saved)


def _write_html(d: Any, report: Report, path: str, notation: str | None) -> int:
    from derive.render import html

    try:
        with _own_text():
            html.write(d, report, path, notation)
    except OSError as exc:
        _say(f"derive: error: cannot write {path}: {exc.strerror or exc}")
        return BAD_INPUT
    _say(f"wrote {path}")
    return OK


def _report(args: argparse.Namespace) -> int:
    """``derive report FILE -o FILE.html``: check, then write the HTML report."""
    return _latex(args, html=True)


def _watch(args: argparse.Namespace) -> int:
    from derive import watch

    return watch.run(args.files[0], _console(stderr=False), _console(stderr=True), interval=args.interval,
                     strategy=args.strategy, rules=not args.no_rules, once=args.once)


def _latex(args: argparse.Namespace, html: bool = False) -> int:
    _outputs(args)
    file = args.files[0]
    from derive.check.session import load
    from derive.util import budget

    phase = "loading"
    start = _started()
    try:
        with budget.limit(max(args.timeout_run - (_now() - start), 1e-3)):
            d = load(file, strategy=args.strategy, limits=_limits(args))
            phase = "checking"
            report = d.report(timeout=args.timeout, timeout_run=max(1e-3, args.timeout_run - (_now() - start)))
    except BaseException as exc:  # noqa: B036 (one line; SIGTERM and Ctrl-C go on up)
        if isinstance(exc, (KeyboardInterrupt, SystemExit, BrokenPipeError)):
            raise
        return _file_error(file, phase, exc, args)
    try:  # the document is written even when the checks used the whole budget, within a few seconds more
        with budget.limit(max(args.timeout_run - (_now() - start), REPORT_GRACE)):
            if html:
                return max(_write_html(d, report, args.output, args.notation), OK if report.ok else FAILED)
            return _write_latex(d, report, args.output, args.pdf, args.notation)
    except budget.Timeout:
        return _file_error(file, "writing the document", budget.Timeout(), args)


def _identities(args: argparse.Namespace) -> int:
    if args.check_sizes > MAX_CHECK_SIZES:
        raise UsageError(f"--check-sizes: at most {MAX_CHECK_SIZES}, got {args.check_sizes}")
    import json

    from derive.records import REFUTED
    from derive.render import terminal as render
    from derive.rules.identities import ALL_SIZES, check_sizes, identities
    from derive.util import budget

    try:
        with budget.limit(max(args.timeout_run - (_now() - _started()), 1e-3)):
            results = identities()
            sizes = check_sizes(args.check_sizes) if args.check_sizes > 0 else {}
    except budget.Timeout:
        _say(f"derive: identities not checked: the run's time budget ran out ({args.timeout_run:g} s; "
             "raise it with --timeout-run)")
        return FAILED
    if args.json:
        sys.stdout.write(json.dumps({"identities": [
            {"name": r.name, "statement": r.statement, "verdict": r.verdict, "steps": r.steps,
             "counterexample": r.counterexample, "sizes_checked": sizes.get(r.name)} for r in results]},
            ensure_ascii=False) + "\n")
    else:
        _console(stderr=False).print(render.identities(results, sizes, args.check_sizes))
    # general identities must be proven, the wrong variants refuted
    ok = all(r.verdict == ALL_SIZES for r in results[:3]) and all(r.verdict == REFUTED for r in results[3:])
    return OK if ok else FAILED


def _run(d: Any, rules: bool, err: Console, args: argparse.Namespace, left: float) -> Report:
    options = dict(jobs=args.jobs, timeout=args.timeout, timeout_run=max(left, 1e-3))
    if not err.is_terminal:  # no progress bar in a pipe
        return d.report(rules, **options)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    total = d.count_checks(rules)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(_printable(d.spec.name), total=total)
        progress: Callable[[Any], None] = lambda _c: bar.advance(task)  # noqa: E731
        return d.report(rules, progress=progress, **options)


if __name__ == "__main__":
    sys.exit(main())
