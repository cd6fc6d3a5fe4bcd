"""``derive watch FILE``: check a spec file, then check it again each time it changes.

The loop of someone writing their notes: save the YAML, see the table redrawn.  The file is
polled (its modification time, size and inode, every ``interval`` seconds: no dependency,
and it works for editors that replace the file on save); the process stays warm, so SymPy,
the op registry and the identities are loaded once and a re-check of a small file costs
only the check itself.  A spec with an error shows the error and the loop goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from derive.check import document
from derive.check.session import load
from derive.errors import DeriveError
from derive.records import Report
from derive.render.terminal import TerminalRenderer

Stamp = tuple[int, int, int] | None


def stamp(path: Path) -> Stamp:
    """What changes when the file is saved (None: it is not there, e.g. mid-save)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def check_once(path: Path, out: Console, err: Console, strategy: str = "auto", rules: bool = True,
               clear: bool = False) -> Report | None:
    """One check of ``path``, its table printed (the screen cleared first when ``clear``)."""
    start = time.perf_counter()
    try:
        d = load(path, strategy=strategy)
        report = d.report(rules)
    except DeriveError as exc:
        if clear:
            out.clear()
        err.print(f"derive: error: {exc}", markup=False, soft_wrap=True)
        err.print(f"watching {path} (Ctrl-C to stop)", style="dim", markup=False)
        return None
    shown = TerminalRenderer().render(document.build(d, report))
    if clear:
        out.clear()
    out.print(shown)
    err.print(f"checked in {time.perf_counter() - start:.2f}s at {time.strftime('%H:%M:%S')}; "
              f"watching {path} (Ctrl-C to stop)", style="dim", markup=False)
    return report


def run(file: str, out: Console, err: Console, interval: float = 0.2, strategy: str = "auto",
        rules: bool = True, once: bool = False, stop: Callable[[], bool] = lambda: False) -> int:
    """Check ``file`` now and whenever it changes, until Ctrl-C (or ``stop()``); ``once``:
    a single check (exit code as ``derive check``)."""
    path = Path(file)
    if stamp(path) is None:
        err.print(f"derive: error: {file}: no such file", markup=False)
        return 2
    clear = out.is_terminal
    last = stamp(path)
    report = check_once(path, out, err, strategy, rules, clear)
    if once:
        return 2 if report is None else 0 if report.ok else 1
    try:
        while not stop():
            time.sleep(interval)
            now = stamp(path)
            if now is None or now == last:
                continue
            last = now
            check_once(path, out, err, strategy, rules, clear)
    except KeyboardInterrupt:
        err.print("derive: stopped watching", markup=False)
    return 0
