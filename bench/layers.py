"""Benchmark: the tensor-layer derivations (issue 15), each a full ``derive check``.

    python bench/layers.py [--only NAME] [--repeat 3] [--cap SECONDS] [--part all|layers|issue|loop]

Part 1: every worked derivation in ``derivations/`` for a layer family, at its own
size.  Part 2: the issue's sizes (conv2d N=2, C=3, H=W=5, 4 filters 3×3, pad 1;
batch norm N=8, D=6; LSTM T=4, D=3, H=4; attention seq 4, d=4, 2 heads), made from the
same files by changing only their declared shapes.  Each run is a fresh process (so the
peak memory is that run's own); the times are ``report()``'s, wall clock and CPU (medians
of the repeats: on a shared machine the CPU time is the fairer one), the check timeout
is ``--cap``.  Prints a Markdown table.  Not run by the tests.

Part 3 (``--part loop``): recurrent stacks (``network.layers``: lstm, rnn, gru over T = 4 … 8
steps, then a dense layer, mse), each with the proof by induction over the loop
(derive.code.induction) and without it (``before``: the same code with the induction
switched off).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
D = ROOT / "derivations"

LAYERS = [  # (name, file, shapes replaced or None)
    ("conv2d", "conv2d_naive.yaml", None),
    ("maxpool", "maxpool_naive.yaml", None),
    ("avgpool", "avgpool.yaml", None),
    ("batchnorm", "batchnorm_staged.yaml", None),
    ("layernorm", "layernorm.yaml", None),
    ("dropout", "dropout_inverted.yaml", None),
    ("embedding", "embedding.yaml", None),
    ("rnn (T=3)", "rnn_bptt.yaml", None),
    ("lstm step", "lstm_step.yaml", None),
    ("lstm (T=2)", "lstm_bptt.yaml", None),
    ("gru step", "gru_step.yaml", None),
    ("attention (causal)", "attention.yaml", None),
    ("attention (2 heads)", "attention_heads.yaml", None),
    ("residual", "residual_block.yaml", None),
]

ISSUE = [  # (name, file, new shapes line, target seconds)
    ("conv2d N=2 C=3 5×5, 4 filters 3×3, pad 1", "conv2d_naive.yaml",
     "{x: [2, 3, 5, 5], w: [4, 3, 3, 3], b: [4]}", 20),
    ("batchnorm N=8 D=6", "batchnorm_staged.yaml", "{x: [8, 6], gamma: [6], beta: [6]}", 5),
    ("lstm T=4 D=3 H=4", "lstm_bptt.yaml", "{x: [1, 4, 3], h0: [1, 4], Wx: [3, 16], Wh: [4, 16], b: [16]}", 30),
    ("attention seq 4, d=4, 2 heads", "attention_heads.yaml",
     "{X: [4, 4], Wq: [4, 4], Wk: [4, 4], Wv: [4, 4], Wo: [4, 4]}", 30),
]

LOOP = [  # (name, layer, T, D)
    ("lstm T=4 D=3 H=4 (the issue's stack)", "{type: lstm, hidden: 4}", 4, 3),
    ("rnn T=4 D=3 H=4", "{type: rnn, hidden: 4}", 4, 3),
    ("rnn T=8 D=3 H=4", "{type: rnn, hidden: 4}", 8, 3),
    ("gru T=4 D=3 H=4", "{type: gru, hidden: 4}", 4, 3),
    ("gru T=6 D=3 H=4", "{type: gru, hidden: 4}", 6, 3),
    ("lstm T=6 D=3 H=4", "{type: lstm, hidden: 4}", 6, 3),
    ("rnn (all) then lstm, T=4 D=3 H=3", "{type: rnn, hidden: 3, output: all}\n    - {type: lstm, hidden: 3}", 4, 3),
]

RUN = r"""
import json, resource, sys, time
import derive
path, cap = sys.argv[1], float(sys.argv[2])
if len(sys.argv) > 3 and sys.argv[3] == "before":
    import derive.code.induction as induction
    induction.prove = lambda run, found=None: {} if found is None else found
d = derive.load(path)
t = time.perf_counter()
c0 = time.process_time()
r = d.report(timeout=cap)
seconds = time.perf_counter() - t
cpu = time.process_time() - c0
verdicts = {}
for c in r.claims:
    verdicts[c.verdict.value] = verdicts.get(c.verdict.value, 0) + 1
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "ok": r.ok, "verdicts": verdicts}))
"""


def _with_shapes(file: str, shapes: str | None, tmp: Path) -> Path:
    path = D / file
    if shapes is None:
        return path
    lines = path.read_text().splitlines()
    out = [f"  shapes: {shapes}" if line.startswith("  shapes:") else line for line in lines]
    new = tmp / f"big_{file}"
    new.write_text("\n".join(out) + "\n")
    return new


def _loop_stack(layer: str, steps: int, dim: int, tmp: Path, name: str) -> Path:
    path = tmp / f"loop_{abs(hash(name))}.yaml"
    path.write_text(f"name: {name}\nnetwork:\n  inputs: [{steps}, {dim}]\n  layers:\n    - {layer}\n"
                    "    - {type: dense, units: 1}\n  loss: mse\n  batch: 1\n")
    return path


def measure(path: Path, repeat: int, cap: float, before: bool = False) -> dict:
    runs = []
    for _ in range(repeat):
        try:
            out = subprocess.run([sys.executable, "-c", RUN, str(path), str(cap), "before" if before else "after"],
                                 capture_output=True, text=True,
                                 timeout=cap * 3 + 60, check=False)
        except subprocess.TimeoutExpired:
            return {"seconds": float("inf"), "cpu": float("nan"), "peak_mb": float("nan"), "ok": False,
                    "verdicts": {"killed": 1}}
        if out.returncode != 0:
            return {"seconds": float("nan"), "cpu": float("nan"), "peak_mb": float("nan"), "ok": False,
                    "verdicts": {"error": out.stderr.strip().splitlines()[-1][:80]}}
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if runs[-1]["seconds"] > cap:  # one run at the cap is enough
            break
    best = dict(runs[0])
    best["seconds"] = statistics.median(r["seconds"] for r in runs)
    best["cpu"] = statistics.median(r["cpu"] for r in runs)
    best["peak_mb"] = max(r["peak_mb"] for r in runs)
    best["runs"] = len(runs)
    return best


def _verdicts(v: dict) -> str:
    return ", ".join(f"{n} {k}" for k, n in sorted(v.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cap", type=float, default=120.0)
    ap.add_argument("--part", choices=["all", "layers", "issue", "loop"], default="all")
    ap.add_argument("--before", action="store_true", help="part 3: also run without the induction")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        def measured(name: str, file: str, shapes: str | None) -> dict | None:
            """One derivation's measurement (None: left out by --only)."""
            if args.only and args.only not in name:
                return None
            return measure(_with_shapes(file, shapes, Path(tmp)), args.repeat, args.cap)

        if args.part in ("all", "layers"):
            print("| layer | derivation | seconds (median) | CPU s | peak MB | checks | as expected |")
            print("|---|---|---:|---:|---:|---|---|")
            for name, file, shapes in LAYERS:
                m = measured(name, file, shapes)
                if m is None:
                    continue
                print(f"| {name} | {file} | {m['seconds']:.2f} | {m['cpu']:.2f} | {m['peak_mb']:.0f} | "
                      f"{_verdicts(m['verdicts'])} | "
                      f"{'yes' if m['ok'] else 'NO'} |", flush=True)
        if args.part in ("all", "issue"):
            print()
            print("| issue size | seconds (median) | CPU s | target | peak MB | checks | as expected |")
            print("|---|---:|---:|---:|---:|---|---|")
            for name, file, shapes, target in ISSUE:
                m = measured(name, file, shapes)
                if m is None:
                    continue
                print(f"| {name} | {m['seconds']:.2f} | {m['cpu']:.2f} | ≤ {target} | {m['peak_mb']:.0f} | "
                      f"{_verdicts(m['verdicts'])} | {'yes' if m['ok'] else 'NO'} |", flush=True)
        if args.part in ("all", "loop"):
            print()
            print("| recurrent stack | CPU s before | checks before | CPU s | peak MB | checks | as expected |")
            print("|---|---:|---|---:|---:|---|---|")
            for name, layer, steps, dim in LOOP:
                if args.only and args.only not in name:
                    continue
                path = _loop_stack(layer, steps, dim, Path(tmp), name)
                m = measure(path, args.repeat, args.cap)
                b = measure(path, 1, args.cap, before=True) if args.before else None
                was = (f"{b['cpu']:.2f} | {_verdicts(b['verdicts'])}" if b else "– | –")
                print(f"| {name} | {was} | {m['cpu']:.2f} | {m['peak_mb']:.0f} | {_verdicts(m['verdicts'])} | "
                      f"{'yes' if m['ok'] else 'NO'} |", flush=True)


if __name__ == "__main__":
    main()
