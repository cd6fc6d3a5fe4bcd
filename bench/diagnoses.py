"""How many refuted claims get a specific diagnosis: a fixed corpus of the mistakes the
tests use (a layer stack, the notes' scalar 2-2-1 network, the shipped derivations'
expected refutations, and the layer mistakes of issue 15 as mutated backward blocks).
Prints a table; run it against two source trees to compare:

    PYTHONPATH=<tree> python bench/diagnoses.py
"""

from __future__ import annotations

import glob
import sys
import tempfile
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


#: the layer mistakes of issue 15, as mutated backward blocks: (derivation, its line, the mistake, the gradient)
LAYER_MISTAKES = [
    ("batchnorm_staged", "dx = dx1 + dx2", "dx = dx1", "dx"),
    ("lstm_step", "dc = dnext_c + dnext_h * o * (1 - np.tanh(next_c) ** 2)", "dc = dnext_c", "dprev_c"),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T)", "dx"),
    ("residual_block", "dx = da.dot(W1.T) + dout", "dx = da.dot(W1.T) + dout + dout", "dx"),
    ("rnn_bptt", "da = (dh[:, t, :] + dh_next) * (1 - hs[:, t + 1, :] ** 2)",
     "da = dh[:, t, :] * (1 - hs[:, t + 1, :] ** 2)", "dWh"),
    ("lstm_bptt", "dh_t = dh[:, t, :] + dh_next", "dh_t = dh[:, t, :]", "dWh"),
    ("lstm_bptt", "dc_t = dc_next + dh_t * oo[:, t, :] * (1 - tc ** 2)", "dc_t = dh_t * oo[:, t, :] * (1 - tc ** 2)",
     "dWx"),
    ("conv2d_naive", "+= w[f] * dout[n, f, i, j]", "+= np.flip(w[f], axis=(1, 2)) * dout[n, f, i, j]", "dx"),
    ("maxpool_naive", "+= mask * dout[n, c, i, j]", "+= dout[n, c, i, j]", "dx"),
    ("maxpool_naive", "+= mask * dout[n, c, i, j]", "+= dout[n, c, i, j] / 4", "dx"),
    ("attention", "dK = dS.T.dot(Q) / np.sqrt(d)", "dK = dS.T.dot(K) / np.sqrt(d)", "dK"),
]
#: blocks of our own (not derivations): a shared weight, a gated unit, a staged softmax
OWN = {
    "shared weight": ("""
network:
  equations: |
    h = np.tanh(x.dot(W))
    out = h.dot(W)
  parameters: [W]
  shapes: {x: [2, 2], W: [2, 2]}
upstream: {out: dout}
backward: |
  dpre = dout.dot(W.T) * (1 - h ** 2)
  dW = x.T.dot(dpre) + h.T.dot(dout)
""", "dW = x.T.dot(dpre) + h.T.dot(dout)", "dW = h.T.dot(dout)", "dW"),
    "gated x*sigmoid(x)": ("""
network:
  equations: |
    y = x * sigmoid(x)
  parameters: []
  shapes: {x: [2, 3]}
upstream: {y: dy}
backward: |
  s = sigmoid(x)
  dx = dy * (s + x * s * (1 - s))
""", "dx = dy * (s + x * s * (1 - s))", "dx = dy * s", "dx"),
    "softmax, diagonal dropped": ("""
network:
  equations: |
    e = np.exp(z)
    p = e / np.sum(e, axis=1, keepdims=True)
  parameters: []
  shapes: {z: [2, 3]}
upstream: {p: dp}
backward: |
  dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))
""", "dz = p * (dp - np.sum(dp * p, axis=1, keepdims=True))", "dz = -p * np.sum(dp * p, axis=1, keepdims=True)", "dz"),
}


def _layer_rows(root: Path) -> list[tuple[str, str, str, str, float]]:
    rows = []
    cases = [(stem, (root / "derivations" / f"{stem}.yaml").read_text().split("\nclaims:")[0] + "\n", line, wrong,
              target) for stem, line, wrong, target in LAYER_MISTAKES if line is not None]
    cases += [(f"own: {name}", f"name: {name}\n" + text.lstrip(), line, wrong, target)
              for name, (text, line, wrong, target) in OWN.items()]
    with tempfile.TemporaryDirectory() as tmp:
        for label, text, line, wrong, target in cases:
            assert line in text, (label, line)
            path = Path(tmp) / "block.yaml"
            path.write_text(text.replace(line, wrong, 1))
            t0 = time.perf_counter()
            try:
                report = derive.load(path).report()
            except Exception as exc:  # noqa: BLE001 - an older tree may not read a newer spec
                print(f"# skipped {label}: {type(exc).__name__}", file=sys.stderr)
                continue
            c = next(c for c in report.claims if c.target == target)
            rows.append((f"layer {label}"[:24], f"{target}: {wrong.strip()}", c.verdict, c.diagnosis or "",
                         time.perf_counter() - t0))
    return rows


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
    layer = _layer_rows(root)
    rows += layer
    refuted = [r for r in rows if r[2] == "refuted"]
    named = [r for r in refuted if r[3]]
    print(f"{'source':<24} {'claim':<70} {'verdict':<9} diagnosis")
    for r in rows:
        print(f"{r[0]:<24} {r[1][:70]:<70} {r[2]:<9} {r[3][:90]}")
    share = 100 * len(named) / max(1, len(refuted))
    print(f"\nrefuted: {len(refuted)}; with a specific diagnosis: {len(named)} ({share:.0f}%)")
    lr = [r for r in layer if r[2] == "refuted"]
    print(f"layer mistakes (mutated blocks): refuted {len(lr)}; named {sum(1 for r in lr if r[3])}")


if __name__ == "__main__":
    main()
