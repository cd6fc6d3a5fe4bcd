"""How many refuted claims get a specific diagnosis: a fixed corpus of the mistakes the
tests use (a layer stack, the notes' scalar 2-2-1 network, and the shipped derivations'
expected refutations).  Prints a table; run it against two source trees to compare:

    PYTHONPATH=<tree> python bench/diagnoses.py
"""

from __future__ import annotations

import glob
import sys
import time
from pathlib import Path

import derive

STACK = {"network": {"inputs": 2, "layers": [{"units": 3, "activation": "tanh"},
                                             {"units": 1, "activation": "sigmoid"}], "loss": "bce", "batch": 2}}
STACK_WRONG = [
    ("dZ1", "dA1 / tanh_prime(Z1)"), ("dZ1", "(W2.T @ dZ2) * A1"), ("dZ1", "(W2.T @ dZ2) * (1 - A1)"),
    ("db2", "sum(dZ2, axis=0)"), ("dZ1", "(W2.T @ dZ2) * tanh_prime(Z1) * A1"), ("dW2", "2 * dZ2 @ A1.T"),
    ("dW2", "dZ2 @ A1"), ("dW2", "A1 @ dZ2.T"), ("dZ1", "W2.T @ dZ2"), ("dW1", "dZ1 @ A1.T"),
    ("dW2", "-dZ2 @ A1.T"), ("dZ2", "A2 - Y"), ("dW1", "dZ1 @ X"), ("db1", "sum(dZ1, axis=0)"),
    ("dA1", "W2 @ dZ2"), ("dW2", "dZ2 @ (A1 * A1).T"),
]
NOTES = {"network": {"equations": "\n".join([
    "z0 = w0*x0 + w1*x1 + b0", "a0 = sigmoid(z0)", "z1 = w2*x0 + w3*x1 + b1", "a1 = sigmoid(z1)",
    "z2 = w4*a0 + w5*a1 + b2", "a2 = sigmoid(z2)", "L = (y - a2)**2 / alpha"]),
    "parameters": ["w0", "w1", "w2", "w3", "w4", "w5", "b0", "b1", "b2"], "loss": "L"}}
NOTES_WRONG = [
    ("dw1", "(a2 - y) * sigmoid_prime(z2) * w5 * sigmoid_prime(z1) * a0"),
    ("dw0", "2 / alpha * (a2 - y) * sigmoid_prime(z2) * w4 * sigmoid_prime(z0) * a0"),
    ("dw4", "(a2 - y) * sigmoid_prime(z2) * a1"), ("dw4", "dz2 * a1"),
    ("dw1", "dz2 * w5 * sigmoid_prime(z0) * x1"), ("dz2", "(a2 - y) * a2 * (1 - a2)"),
    ("dw2", "dz2 * w5 * sigmoid_prime(z1) * x1"), ("db0", "dz2 * w4 * sigmoid(z0)"),
    ("dw5", "dz2 * a0"), ("dz0", "dz2 * w4 / sigmoid_prime(z0)"),
]


def main() -> None:
    rows = []
    for label, spec, wrong in (("2-3-1 stack", STACK, STACK_WRONG), ("notes 2-2-1", NOTES, NOTES_WRONG)):
        d = derive.from_dict(spec)
        for target, formula in wrong:
            t0 = time.perf_counter()
            c = d.check_claim(target, formula)
            rows.append((label, f"{target} = {formula}", c.verdict, c.diagnosis or "", time.perf_counter() - t0))
    root = Path(__file__).resolve().parent.parent
    for path in sorted(glob.glob(str(root / "derivations" / "*.yaml"))):
        try:
            report = derive.load(path).report()
        except Exception as exc:  # noqa: BLE001 - an older tree may not read a newer spec
            print(f"# skipped {Path(path).name}: {type(exc).__name__}", file=sys.stderr)
            continue
        for c in report.claims:
            if c.expect == "refuted":
                rows.append((Path(path).stem, f"{c.target} = {c.formula}", c.verdict, c.diagnosis or "", c.seconds))
    refuted = [r for r in rows if r[2] == "refuted"]
    named = [r for r in refuted if r[3]]
    print(f"{'source':<24} {'claim':<70} {'verdict':<9} diagnosis")
    for r in rows:
        print(f"{r[0]:<24} {r[1][:70]:<70} {r[2]:<9} {r[3][:90]}")
    print(f"\nrefuted: {len(refuted)}; with a specific diagnosis: {len(named)} ({100 * len(named) / max(1, len(refuted)):.0f}%)")


if __name__ == "__main__":
    main()
