"""Run checks within a time budget: one scheduler for the CLI, the Python face and the pytest plugin.

Each rule or claim runs under a per-item cap and a run-wide deadline (:mod:`derive.util.budget`);
one that runs out is *unproven (timeout)* and the run goes on with the rest, so no item
can hang a run.  With ``jobs > 1`` items are shared among forked worker processes (the
workers inherit the derivation, its truth and its sample points); the order of the
results never depends on it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from derive.errors import DeriveError, LimitError
from derive.records import UNPROVEN, Check, Method, Verdict
from derive.rules.layer_rules import Rule
from derive.spec import ClaimSpec
from derive.util import budget
from derive.util.text import printable

DEFAULT_TIMEOUT = 120.0  # seconds per check
DEFAULT_TIMEOUT_RUN = 600.0  # seconds for a whole file: loading, truth, checks, report
#: less time than this left is no time: the item is not started (an alarm set for a few
#: microseconds can fire before budget.limit has armed its cleanup)
MIN_SECONDS = 1e-3
#: how an item that failed says so (``Check.detail``): the CLI exits 2 or 3 after printing the rest
BAD_INPUT = "not checked (bad input): "
INTERNAL_ERROR = "not checked (internal error in derive, please report this): "
PARALLEL_FROM = 1000  # parameters; below this, starting workers costs more than it saves
Task = Rule | ClaimSpec
Progress = Callable[[Check], None]


class Checker(Protocol):
    """What the runner needs of a derivation (:class:`derive.check.session.Derivation`)."""

    def check_rule(self, rule: Rule) -> Check: ...

    def check_spec_claim(self, claim: ClaimSpec) -> Check: ...

    def prepare_workers(self) -> None: ...


def one_line(exc: BaseException, limit: int = 1000) -> str:
    """An exception's message on one bounded line (a message never prints a whole structure)."""
    try:
        text = str(exc)
    except Exception:  # str() itself can fail (a 5,000-digit integer in the message)
        text = type(exc).__name__
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def max_jobs() -> int:
    """Worker processes at most: one per core (more only compete for the same cores)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


def auto_jobs(parameters: int) -> int:
    """Worker processes that pay: two for large networks on a machine with two cores."""
    cores = os.cpu_count() or 1
    return min(2, cores) if parameters >= PARALLEL_FROM else 1


class Runner:
    """A time budget: ``timeout`` seconds per item, ``timeout_run`` for everything run
    from :meth:`start` on (None: no cap).  ``hint`` says how to raise them."""

    def __init__(self, timeout: float | None = DEFAULT_TIMEOUT, timeout_run: float | None = None,
                 hint: str = "raise it with --timeout / --timeout-run") -> None:
        self.timeout = timeout
        self.timeout_run = timeout_run
        self.hint = hint
        self.deadline = budget.Deadline(timeout_run, timeout)

    def start(self) -> Runner:
        """(Re)start the run-wide deadline now."""
        self.deadline = budget.Deadline(self.timeout_run, self.timeout)
        return self

    def remaining(self) -> float | None:
        """Seconds the next item may take (its cap, or what is left of the run)."""
        return self.deadline.remaining()

    def run_remaining(self) -> float | None:
        """Seconds left of the whole run (None: no cap), for the work that is not an item (loading)."""
        return None if self.deadline.end is None else max(0.0, self.deadline.end - time.monotonic())

    def check(self, checker: Checker, task: Task) -> Check:
        """One item within the budget: a timeout is a verdict (unproven), not an error."""
        start = time.perf_counter()
        left = self.remaining()
        if left is not None and left < MIN_SECONDS:
            return self.timed_out(task, 0.0)
        try:
            with budget.limit(left):
                return checker.check_rule(task) if isinstance(task, Rule) else checker.check_spec_claim(task)
        except budget.Timeout:
            return self.timed_out(task, time.perf_counter() - start)
        except MemoryError:  # a resource limit says nothing about the statement
            return self.not_checked(task, time.perf_counter() - start, Method.LIMIT,
                                    "not checked (limit): out of memory (the memory limit, --max-memory)")
        except RecursionError:
            return self.not_checked(task, time.perf_counter() - start, Method.LIMIT,
                                    "not checked (limit): nested too deeply for derive's recursion limit")
        except LimitError as exc:  # a size limit met on the way: says nothing about the statement
            return self.not_checked(task, time.perf_counter() - start, Method.LIMIT,
                                    f"not checked (limit): {one_line(exc)}")
        except DeriveError as exc:  # bad input met only when this item ran: the others still run
            return self.not_checked(task, time.perf_counter() - start, Method.NEITHER, BAD_INPUT + one_line(exc))
        except ValueError as exc:
            if "integer string conversion" in str(exc):  # a number too long to print: a limit, not a bug
                return self.not_checked(task, time.perf_counter() - start, Method.LIMIT,
                                        "not checked (limit): a number of more than 4,300 digits")
            return self.not_checked(task, time.perf_counter() - start, Method.NEITHER,
                                    INTERNAL_ERROR + f"{type(exc).__name__}: {one_line(exc)}")
        except Exception as exc:  # a bug in derive: this item says so, the others still run
            return self.not_checked(task, time.perf_counter() - start, Method.NEITHER,
                                    INTERNAL_ERROR + f"{type(exc).__name__}: {one_line(exc)}")

    def timed_out(self, task: Task, seconds: float) -> Check:
        return self.not_checked(task, seconds, Method.TIMEOUT, f"no verdict within the time budget ({self.hint})")

    def not_checked(self, task: Task, seconds: float, method: Method, detail: str) -> Check:
        """An unproven item: ``method`` says why (timeout, limit, or an error in ``detail``)."""
        if isinstance(task, Rule):
            return Check("rule", task.target, task.formula, UNPROVEN, method, 0, seconds,
                         layer=task.layer, rule=task.rule, detail=detail)
        return Check("claim", task.target, task.formula, UNPROVEN, method, 0, seconds,
                     place=task.place, expect=Verdict(task.expect), detail=detail)

    def run(self, checker: Checker, tasks: Sequence[Task], progress: Progress | None = None,
            jobs: int = 1) -> list[Check]:
        """Every task, in order; ``jobs`` forked workers share them when there are several."""
        jobs = max(1, min(jobs, max_jobs(), len(tasks)))
        if jobs > 1 and len(tasks) > 1 and _can_fork() and self._prepared(checker):
            return self._forked(checker, list(tasks), progress, jobs)
        out: list[Check] = []
        for task in tasks:
            out.append(self.check(checker, task))
            if progress:
                progress(out[-1])
        return out

    def _prepared(self, checker: Checker) -> bool:
        """What the workers inherit, built once within the run's budget; False: no time or
        memory left for it (the items then run here, and run out at once)."""
        try:
            with budget.limit(self.run_remaining()):
                checker.prepare_workers()
        except (budget.Timeout, MemoryError):
            return False
        return True

    def _forked(self, checker: Checker, tasks: list[Task], progress: Progress | None, jobs: int) -> list[Check]:
        """The tasks shared among ``jobs`` forked workers, the longest first (by the
        checker's estimate: a long item started last would keep one worker busy while the
        others idle); the results are put back in the tasks' order."""
        import multiprocessing as mp  # (only here: a serial run never imports it, nor pickle and socket)

        global _FORKED
        out: list[Check | None] = [None] * len(tasks)
        _FORKED = (self, checker, tasks)
        try:
            with mp.get_context("fork").Pool(jobs, initializer=_worker_signals) as pool:
                for index, check in pool.imap_unordered(_forked_check, longest_first(checker, tasks)):
                    out[index] = check
                    if progress:
                        progress(check)
        finally:
            _FORKED = None
        assert all(c is not None for c in out)
        return [c for c in out if c is not None]


def _can_fork() -> bool:
    import multiprocessing as mp

    return "fork" in mp.get_all_start_methods()


def longest_first(checker: Checker, tasks: Sequence[Task]) -> list[int]:
    """The tasks' indices, the longest first by ``checker.cost`` when it has one (ties: in order)."""
    cost = getattr(checker, "cost", None)
    if cost is None:
        return list(range(len(tasks)))
    estimates = [cost(t) for t in tasks]
    return sorted(range(len(tasks)), key=lambda i: (-estimates[i], i))


_FORKED: tuple[Runner, Checker, list[Task]] | None = None  # what forked workers inherit


def _worker_signals() -> None:
    """A worker ends at once on SIGTERM (the pool's way to stop it): the parent's handler,
    which unwinds the run to clean up its files, is not the worker's."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _forked_check(index: int) -> tuple[int, Check]:
    assert _FORKED is not None
    runner, checker, tasks = _FORKED
    return index, runner.check(checker, tasks[index])
