"""Benchmark: derive's full check against the naive SymPy approach.

    python bench/run.py [--cap SECONDS] [--only NAME]

For each configuration (sigmoid layers, ½ squared error, averaged), it runs in a fresh
process (so peak memory is that run's own):
- derive: a full ``derive check`` of every rule of every layer (default strategy);
- naive: per parameter, ``simplify(diff(J, θ) − rule) == 0`` with J composed from
  SymPy's exp, stopped at the time cap (then shown as "> cap").
It prints a Markdown table and the least-squares exponent of derive's time against the
parameter count P (time ∝ P^k).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
import time

CONFIGS = [
    ("2-2-1", [2, 2, 1], 1),
    ("3-4-2", [3, 4, 2], 2),
    ("4-8-8-3", [4, 8, 8, 3], 4),
    ("8-16-16-8", [8, 16, 16, 8], 4),
    ("16-32-32-16", [16, 32, 32, 16], 8),
    ("10 layers of width 8", [8] * 11, 4),
]

DERIVE = r"""
import json, resource, sys, time
import derive
sizes, m = json.loads(sys.argv[1]), int(sys.argv[2])
spec = {"name": "bench", "network": {"inputs": sizes[0],
        "layers": [{"units": u, "activation": "sigmoid"} for u in sizes[1:]],
        "loss": "mse", "batch": m}}
t = time.perf_counter()
d = derive.from_dict(spec)
r = d.report()
seconds = time.perf_counter() - t
assert r.ok, r.summary()
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,      # this process, and the
           resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)  # largest worker, if any
print(json.dumps({"seconds": seconds, "rss_mb": peak / 1024,
                  "parameters": d.net.parameter_count, "rules": len(r.rules), "strategy": r.strategy}))
"""

NAIVE = r"""
import json, sys, time
import sympy as sp
sizes, m = json.loads(sys.argv[1]), int(sys.argv[2])
sig = lambda z: 1 / (1 + sp.exp(-z))
X = sp.Matrix(sizes[0], m, lambda i, j: sp.Symbol(f"x{i}_{j}"))
Y = sp.Matrix(sizes[-1], m, lambda i, j: sp.Symbol(f"y{i}_{j}"))
Ws = [sp.Matrix(sizes[l], sizes[l-1], lambda i, j: sp.Symbol(f"w{l}_{i}_{j}")) for l in range(1, len(sizes))]
bs = [sp.Matrix(sizes[l], 1, lambda i, j: sp.Symbol(f"b{l}_{i}")) for l in range(1, len(sizes))]
A, As, Zs = X, [X], []
for W, b in zip(Ws, bs):
    Z = W * A + b * sp.ones(1, m)
    A = Z.applyfunc(sig)
    Zs.append(Z); As.append(A)
J = sum(((A - Y).applyfunc(lambda e: e**2 / 2)), sp.Integer(0)) / m
# the rules, composed: dZ_L = (A_L − Y)/m ⊙ σ′(Z_L), dW = dZ A_prevᵀ, dA_prev = Wᵀ dZ
dZ = ((A - Y) / m).multiply_elementwise(Zs[-1].applyfunc(lambda z: sig(z) * (1 - sig(z))))
rules = {}
for l in range(len(Ws), 0, -1):
    rules[l] = (dZ * As[l-1].T, dZ * sp.ones(m, 1))
    if l > 1:
        dZ = (Ws[l-1].T * dZ).multiply_elementwise(Zs[l-2].applyfunc(lambda z: sig(z) * (1 - sig(z))))
t = time.perf_counter()
done = 0
for l in range(len(Ws), 0, -1):
    for M, R in ((Ws[l-1], rules[l][0]), (bs[l-1], rules[l][1])):
        for k in range(len(M)):
            assert sp.simplify(sp.diff(J, M[k]) - R[k]) == 0
            done += 1
            print(json.dumps({"done": done, "seconds": time.perf_counter() - t}), flush=True)
"""


def run_derive(sizes: list[int], m: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", DERIVE, json.dumps(sizes), str(m)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def run_naive(sizes: list[int], m: int, cap: float) -> tuple[float | None, int]:
    """Seconds for every parameter, or None when the cap stopped it; parameters done."""
    proc = subprocess.Popen([sys.executable, "-c", NAIVE, json.dumps(sizes), str(m)],
                            stdout=subprocess.PIPE, text=True)
    start, done, last = time.perf_counter(), 0, 0.0
    total = sum(sizes[i] * sizes[i - 1] + sizes[i] for i in range(1, len(sizes)))
    assert proc.stdout is not None
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    while time.perf_counter() - start < cap:
        if not sel.select(timeout=max(0.0, cap - (time.perf_counter() - start))):
            break
        line = proc.stdout.readline()
        if not line:
            break
        rec = json.loads(line)
        done, last = rec["done"], rec["seconds"]
    proc.kill()
    proc.wait()
    return (last if done == total else None), done


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cap", type=float, default=120.0, help="time cap for the naive approach (s)")
    ap.add_argument("--only", help="run only the configuration with this name")
    args = ap.parse_args()
    rows, fit = [], []
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
          f"naive cap {args.cap:.0f} s\n")
    print("| configuration | parameters P | batch | derive (s) | peak memory of one process (MB) | naive (s) | ratio |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, sizes, m in CONFIGS:
        if args.only and args.only != name:
            continue
        d = run_derive(sizes, m)
        naive, done = run_naive(sizes, m, args.cap)
        p = int(d["parameters"])
        if naive is None:
            naive_text = f"> {args.cap:.0f} ({done}/{p} done)"
            r = args.cap / d["seconds"]
            ratio = f"> {r:.0f}×" if r >= 10 else f"> {r:.1f}×"
        else:
            naive_text = f"{naive:.1f}"
            r = naive / d["seconds"]
            ratio = f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"
        print(f"| {name} | {p} | {m} | {d['seconds']:.2f} | {d['rss_mb']:.0f} | {naive_text} | {ratio} |",
              flush=True)
        rows.append((name, p, d["seconds"]))
        fit.append((math.log(p), math.log(d["seconds"])))
    if len(fit) >= 2:
        n = len(fit)
        mx = sum(x for x, _ in fit) / n
        my = sum(y for _, y in fit) / n
        k = sum((x - mx) * (y - my) for x, y in fit) / sum((x - mx) ** 2 for x, _ in fit)
        print(f"\nleast-squares fit over the configurations: derive's time ∝ P^{k:.2f}")


if __name__ == "__main__":
    main()
