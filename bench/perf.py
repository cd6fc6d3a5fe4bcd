"""Side-by-side benchmark of two versions of derive (issue 19's targets).

    python bench/perf.py --old /tmp/v1 [--new .] [--runs 5] [--only NAME]
    python bench/perf.py --scaling [--runs 5]      # --jobs 1 against --jobs 2
    python bench/perf.py --cold [--runs 5]         # where a cold process's CPU goes
    python bench/perf.py --phases [--old /tmp/v1]  # where a run's CPU goes, phase by phase

``--old`` and ``--new`` are source trees (a checkout or ``git archive`` of a commit), each
compiled to bytecode first (as an installed package is); each
command runs in a fresh process with ``PYTHONPATH`` set to its tree, the two versions in
turn (A B A B ...), so a drift of the machine's speed hits both.  Every figure is the
operating system's accounting of the finished child (``os.wait4``): CPU = user + system
seconds (its waited-for worker processes included), wall = a monotonic clock around it,
peak = its largest resident set.  The table gives the median of the runs and the ratio
new/old of the medians; "exit" is the exit status of ``derive check`` (0: every rule and
claim as expected).

Configurations (sigmoid layers, ½ squared error, averaged; all rules checked):
16-32-32-16 m=8, 32-64-64-32 m=8, 64-128-64-10 m=16, 40 layers of width 8 m=4; each
written-out chain claim of a tanh 8-16-16-8 m=4 network on its own (``--no-rules``); the
smallest shipped derivation in a cold process.  ``--growth`` also fits time ∝ P^k over
layer stacks up to 17k parameters.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

STACKS = {
    "16-32-32-16 m=8": ([16, 32, 32, 16], 8, "sigmoid"),
    "32-64-64-32 m=8": ([32, 64, 64, 32], 8, "sigmoid"),
    "64-128-64-10 m=16": ([64, 128, 64, 10], 16, "sigmoid"),
    "40 layers of width 8 m=4": ([8] * 41, 4, "sigmoid"),
}
GROWTH = [([4, 8, 8, 3], 4), ([8, 16, 16, 8], 4), ([16, 32, 32, 16], 8), ([32, 64, 64, 32], 8),
          ([64, 128, 64, 10], 16)]
CHAIN = "((W2.T @ ((W3.T @ ((A3 - Y) / m)) * (1 - A2**2))) * (1 - A1**2))"
CHAIN_CLAIMS = {
    "dW3": "((A3 - Y) / m) @ A2.T",
    "dW2": "((W3.T @ ((A3 - Y) / m)) * (1 - A2**2)) @ A1.T",
    "dW1": f"{CHAIN} @ X.T",
    "db1": f"sum({CHAIN}, axis=1)",
    "dX": f"W1.T @ {CHAIN}",
}
CLI = "import sys; from derive.cli import main; sys.exit(main())"


def stack_yaml(sizes: list[int], m: int, activation: str, claims: dict[str, str] | None = None) -> str:
    lines = ["name: bench", "network:", f"  inputs: {sizes[0]}", "  layers:"]
    lines += [f"    - {{units: {u}, activation: {activation}}}" for u in sizes[1:-1]]
    out = "identity" if claims else activation
    lines += [f"    - {{units: {sizes[-1]}, activation: {out}}}", "  loss: mse", f"  batch: {m}"]
    if claims:
        lines.append("claims:")
        lines += [f"  - {target}: {formula}" for target, formula in claims.items()]
    return "\n".join(lines) + "\n"


def parameters(sizes: list[int]) -> int:
    return sum(sizes[i] * sizes[i - 1] + sizes[i] for i in range(1, len(sizes)))


def compiled(tree: Path) -> None:
    """Write the tree's bytecode (``__pycache__``), as ``pip install`` does: a checkout run
    with PYTHONDONTWRITEBYTECODE set (this machine's default) otherwise compiles derive's
    hundred modules from source in every process, 0.1 s of CPU a cold start."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "derive")], check=True,
                   env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"})


def run(tree: Path, args: list[str]) -> tuple[float, float, float, int]:
    """CPU seconds, wall seconds, peak MB and exit status of one cold ``derive`` process."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    start = time.monotonic()
    # (run from inside the tree: ``python -c`` puts the working directory first on sys.path,
    # ahead of PYTHONPATH, so a run from another checkout would import that one)
    proc = subprocess.Popen([sys.executable, "-c", CLI, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tree)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024, proc.returncode


def paired(old: Path, new: Path, args: list[str], runs: int) -> dict[str, list[tuple[float, float, float, int]]]:
    out: dict[str, list[tuple[float, float, float, int]]] = {"old": [], "new": []}
    for _ in range(runs):
        out["old"].append(run(old, args))
        out["new"].append(run(new, args))
    return out


def med(rows: list[tuple[float, float, float, int]], k: int) -> float:
    return statistics.median(r[k] for r in rows)


def row(name: str, size: str, result: dict[str, list[tuple[float, float, float, int]]]) -> str:
    o, n = result["old"], result["new"]
    exits = "/".join(",".join(sorted({str(r[3]) for r in rs})) for rs in (o, n))
    return (f"| {name} | {size} | {med(o, 0):.2f} | {med(n, 0):.2f} | {med(o, 1):.2f} | {med(n, 1):.2f} | "
            f"{med(o, 2):.0f} | {med(n, 2):.0f} | {med(n, 1) / med(o, 1):.2f} | {exits} |")


def scaling(tree: Path, tmp: Path, runs: int, only: str | None) -> None:
    """``--jobs 1`` against ``--jobs 2`` (in turn), for each layer stack and for every
    shipped derivation given at once (one file per worker)."""
    print("| configuration | jobs | CPU (s) | wall (s) | peak (MB) | exit |")
    print("|---|---:|---:|---:|---:|---|")
    cases: list[tuple[str, list[str]]] = []
    for name, (sizes, m, act) in STACKS.items():
        path = tmp / f"scaling_{name.split()[0]}.yaml"
        path.write_text(stack_yaml(sizes, m, act))
        cases.append((name, ["check", "--max-parameters", "100000", str(path)]))
    files = sorted(str(p) for p in (HERE.parent / "derivations").glob("*.yaml"))
    cases.append((f"the {len(files)} shipped derivations in one command", ["check", *files]))
    for name, cli in cases:
        if only and only not in name:
            continue
        out: dict[int, list[tuple[float, float, float, int]]] = {1: [], 2: []}
        for _ in range(runs):
            for jobs in (1, 2):
                out[jobs].append(run(tree, [*cli, "--jobs", str(jobs)]))
        for jobs, rs in out.items():
            codes = ",".join(sorted({str(r[3]) for r in rs}))
            print(f"| {name} | {jobs} | {med(rs, 0):.2f} | {med(rs, 1):.2f} | {med(rs, 2):.0f} | {codes} |", flush=True)


PHASES = r"""
import gc, resource, sys, time
gc.set_threshold(100_000, 50, 100)  # (the CLI's collector thresholds, set before its heavy imports)
def cpu():
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime
t0 = cpu()
import derive.cli, derive.check.session as S
t1 = cpu()
d = S.load(sys.argv[1])
t2 = cpu()
_ = d.truth
t3 = cpu()
d.prepare_workers()
t4 = cpu()
d.report(jobs=int(sys.argv[2]))
t5 = cpu()
print(t1[0] - t0[0], t2[0] - t1[0], t3[0] - t2[0], t4[0] - t3[0], t5[0] - t4[0], t5[1] - t4[1])
"""


def phases(trees: list[tuple[str, Path]], tmp: Path, runs: int, only: str | None) -> None:
    """Where a run's CPU goes, phase by phase, in one process (``resource.getrusage``):
    import, loading (the network), the truth, the sample points, then the checks (the
    parent's own CPU, and its workers' together).  The last column, serial part + workers
    / jobs, is the wall time an idle machine would show if the workers shared the checks
    evenly: an estimate, not a measurement."""
    print("| configuration | code | jobs | import | load | truth | points | checks, parent | checks, workers (sum) "
          "| serial + workers / jobs |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (sizes, m, act) in STACKS.items():
        if only and only not in name:
            continue
        path = tmp / f"phases_{name.split()[0]}.yaml"
        path.write_text(stack_yaml(sizes, m, act))
        for jobs in (1, 2):
            got: dict[str, list[list[float]]] = {label: [] for label, _ in trees}
            for _ in range(runs):
                for label, tree in trees:
                    out = subprocess.run([sys.executable, "-c", PHASES, str(path), str(jobs)], cwd=tree,
                                         env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True,
                                         text=True, check=True).stdout
                    got[label].append([float(x) for x in out.split()])
            for label, rows in got.items():
                m_ = [statistics.median(r[k] for r in rows) for k in range(6)]
                serial = sum(m_[:5])
                print(f"| {name} | {label} | {jobs} | " + " | ".join(f"{x:.2f}" for x in m_)
                      + f" | {serial + m_[5] / jobs:.2f} |", flush=True)


def cold(tree: Path, runs: int) -> None:
    """Where a cold process's CPU goes: the interpreter, SymPy, derive's modules, the check."""
    smallest = min((HERE.parent / "derivations").glob("*.yaml"), key=lambda p: p.stat().st_size)
    steps = [("python -c pass", ["-c", "pass"]),
             ("import sympy", ["-c", "import sympy"]),
             ("import what a check imports", ["-c", "import sympy, derive.cli, derive.check.session, "
                                              "derive.check.document, derive.render.terminal, rich.console"]),
             (f"derive check {smallest.name}", ["-c", CLI, "check", str(smallest)])]
    print("| step | CPU (s), median | wall (s) | peak (MB) |")
    print("|---|---:|---:|---:|")
    env = dict(os.environ, PYTHONPATH=str(tree))
    for name, argv in steps:
        rows = []
        for _ in range(runs):
            start = time.monotonic()
            proc = subprocess.Popen([sys.executable, *argv], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, cwd=tree)
            _, _, usage = os.wait4(proc.pid, 0)
            rows.append((usage.ru_utime + usage.ru_stime, time.monotonic() - start, usage.ru_maxrss / 1024, 0))
        print(f"| {name} | {med(rows, 0):.3f} | {med(rows, 1):.3f} | {med(rows, 2):.0f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", type=Path, help="source tree of the baseline (e.g. git archive 8f14d31)")
    ap.add_argument("--new", default=HERE.parent, type=Path, help="source tree of the new code (default: this one)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", help="only the configurations whose name contains this")
    ap.add_argument("--growth", action="store_true", help="also fit time ∝ P^k (new code only)")
    ap.add_argument("--scaling", action="store_true", help="only --jobs 1 against --jobs 2 (new code)")
    ap.add_argument("--cold", action="store_true", help="only the cold-start breakdown (new code)")
    ap.add_argument("--phases", action="store_true",
                    help="only where a run's CPU goes, phase by phase (old and new, with --old)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="derive-bench-"))
    for tree in [args.new] + ([args.old] if args.old is not None else []):
        compiled(tree)
    if args.phases:
        trees = ([("old", args.old)] if args.old is not None else []) + [("new", args.new)]
        phases(trees, tmp, args.runs, args.only)
        return
    if args.scaling:
        scaling(args.new, tmp, args.runs, args.only)
        return
    if args.cold:
        cold(args.new, args.runs)
        return
    if args.old is None:
        ap.error("--old is required (or --scaling, --cold)")
    print("| configuration | size | CPU old (s) | CPU new (s) | wall old (s) | wall new (s) | peak old (MB) | "
          "peak new (MB) | wall new/old | exit old/new |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    jobs: list[tuple[str, str, list[str]]] = []
    for name, (sizes, m, act) in STACKS.items():
        path = tmp / f"{name.split()[0]}.yaml"
        path.write_text(stack_yaml(sizes, m, act))
        jobs.append((name, f"P = {parameters(sizes):,}", ["check", "--max-parameters", "100000", str(path)]))
    for target, formula in CHAIN_CLAIMS.items():
        path = tmp / f"chain_{target}.yaml"
        path.write_text(stack_yaml([8, 16, 16, 8], 4, "tanh", {target: formula}))
        jobs.append((f"8-16-16-8 claim {target}", "one claim", ["check", "--no-rules", str(path)]))
    smallest = min((HERE.parent / "derivations").glob("*.yaml"), key=lambda p: p.stat().st_size)
    jobs.append((f"smallest shipped ({smallest.name}), cold", "whole file", ["check", str(smallest)]))
    for name, size, cli in jobs:
        if args.only and args.only not in name:
            continue
        print(row(name, size, paired(args.old, args.new, cli, args.runs)), flush=True)
    if args.growth:
        fit = []
        for sizes, m in GROWTH:
            path = tmp / f"growth_{len(fit)}.yaml"
            path.write_text(stack_yaml(sizes, m, "sigmoid"))
            cli = ["check", "--max-parameters", "100000", str(path)]
            cpu = statistics.median(run(args.new, cli)[0] for _ in range(max(1, args.runs // 2)))
            p = parameters(sizes)
            print(f"growth: P = {p:,}, m = {m}: {cpu:.2f} s CPU", flush=True)
            fit.append((math.log(p), math.log(cpu)))
        mx = sum(x for x, _ in fit) / len(fit)
        my = sum(y for _, y in fit) / len(fit)
        k = sum((x - mx) * (y - my) for x, y in fit) / sum((x - mx) ** 2 for x, _ in fit)
        print(f"least-squares fit: CPU time ∝ P^{k:.2f}")


if __name__ == "__main__":
    main()
