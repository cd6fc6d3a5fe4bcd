"""Time budgets: a check that runs out of time is *unproven (timeout)*, never a hang.

A budget arms ``SIGALRM`` (``setitimer``) around one piece of work and turns its expiry
into :class:`Timeout`.  SymPy is pure Python, so the alarm interrupts it between
bytecodes; nothing half-computed is kept.  Where signals are unavailable (not the main
thread, or not POSIX) the work runs without a limit, which is said in ``available``.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class Timeout(Exception):
    """The budget ran out (deliberately not a DeriveError: it is a verdict, not bad input)."""


def available() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


REFIRE_SECONDS = 0.05
MAX_FRAMES = 200  # frames looked through for a gc callback around the interrupted code
#: the files whose code leaves a limit (contextlib's __exit__, this module's clean-up): an
#: alarm that lands there is deferred, not raised (the block is being left already)
_CLEAN_UP = frozenset({contextlib.__file__, __file__})
MAX_SECONDS = 1e7  # about four months: longer budgets are cut to it (the timer's range)
_ends: list[float] = []  # the deadlines of the enclosing limits (monotonic clock)


@contextmanager
def limit(seconds: float | None) -> Iterator[None]:
    """Raise :class:`Timeout` inside the block once ``seconds`` have passed.

    Limits nest: an inner limit never extends an outer one (the alarm is set to the
    earlier of the two), and leaving the inner block re-arms the outer alarm, so a
    diagnosis given its own few seconds inside a check leaves the check's budget intact.
    """
    if seconds is None or not available():
        yield
        return
    if seconds != seconds:  # NaN: no budget at all is an error, not "no limit"
        raise ValueError("a time budget must be a number of seconds, got nan")
    if seconds <= 0:
        raise Timeout
    seconds = min(seconds, MAX_SECONDS)  # (1e308 overflows the timer: it means "no practical limit")
    end = time.monotonic() + seconds
    if _ends:
        end = min(end, _ends[-1])

    def expire(signum: int, frame: object) -> None:
        left = end - time.monotonic()
        if left > 0:  # a stale alarm: an inner limit's, pending when it was left and run by this handler
            signal.setitimer(signal.ITIMER_REAL, left)  # (raising here would end this block early)
            return
        # fire again soon: an exception raised where Python ignores it (a gc callback, a
        # __del__) is lost, and the block would run on without a limit; leaving the block
        # disarms the timer
        signal.setitimer(signal.ITIMER_REAL, REFIRE_SECONDS)
        code = getattr(frame, "f_code", None)
        if code is not None and code.co_filename in _CLEAN_UP:
            return  # leaving a with block: raised there, contextlib's __exit__ would skip this limit's
            # clean-up (its spent deadline left on _ends: outer_expired() true ever after); again soon
        if _in_finalizer(frame):
            return  # raised there, it would be swallowed and cut the callback short: again soon
        raise Timeout

    depth = len(_ends)
    previous = signal.signal(signal.SIGALRM, expire)
    try:  # armed inside the try: an alarm that fires at once still cleans up below
        _ends.append(end)
        signal.setitimer(signal.ITIMER_REAL, max(end - time.monotonic(), 1e-6))
        yield
    finally:
        try:  # (this block's re-fired alarm may still raise here, when its unwinding took a while:
            signal.setitimer(signal.ITIMER_REAL, 0)  # the inner finally still forgets this limit,
        finally:  # else its spent deadline stayed on _ends and outer_expired() said so ever after)
            del _ends[depth:]
            signal.signal(signal.SIGALRM, previous)
            if _ends and _ends[-1] > time.monotonic():  # re-arm the enclosing limit for its time left
                signal.setitimer(signal.ITIMER_REAL, _ends[-1] - time.monotonic())
        # (an enclosing limit that ran out during the inner block is not re-fired: the
        # inner block already stopped, and what follows it is only the wrapping-up)


def _in_finalizer(frame: object) -> bool:
    """Whether the interrupted code runs inside a garbage-collector callback (``gc.callbacks``:
    hypothesis registers some) or a ``__del__``: Python ignores an exception raised there
    (an "unraisable" one), so the Timeout would be lost and the callback left half done."""
    codes = set()  # (by identity: a code object is compared, never hashed by value)
    for callback in gc.callbacks:
        function = getattr(callback, "__func__", callback)  # a bound method's function
        code = getattr(function, "__code__", None)
        if code is not None:
            codes.add(id(code))
    depth = 0
    while frame is not None and depth < MAX_FRAMES:
        code = getattr(frame, "f_code", None)
        if code is not None and (id(code) in codes or getattr(code, "co_name", None) == "__del__"):
            return True
        frame = getattr(frame, "f_back", None)
        depth += 1
    return False


def outer_expired() -> bool:
    """Whether the innermost enclosing limit has run out (tells an inner timeout from it)."""
    return bool(_ends) and time.monotonic() >= _ends[-1]


class Deadline:
    """A run-wide budget shared by many checks; each check also has its own cap."""

    def __init__(self, total: float | None, per_item: float | None) -> None:
        self.end = None if total is None else time.monotonic() + total
        self.per_item = per_item

    def remaining(self) -> float | None:
        left = None if self.end is None else self.end - time.monotonic()
        if self.per_item is None:
            return left
        return self.per_item if left is None else min(left, self.per_item)
