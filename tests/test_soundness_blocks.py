"""Soundness of backward blocks against an oracle that shares no code with derive: random
small layers written as NumPy code, random right or mutated backward lines, and every
verdict checked in plain float64 NumPy with central differences.

- proven: the user's lines, run by NumPy, agree with the finite-difference gradient at
  random points (away from relu's kink);
- refuted: at the counterexample's arrays, the user's line and the finite difference
  differ at the named entry.

The block text is this test's own (never a user's), so running it with ``exec`` here is
the oracle's way of computing what the user's code computes.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import derive
from derive.records import Verdict

H = 1e-6


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


ACTS = {  # forward spelling, its derivative (right), a plausible wrong one
    "np.tanh": ("1 - h ** 2", "1 - h"),
    "sigmoid": ("h * (1 - h)", "h"),
    "relu": ("(z > 0)", "(z >= 0) * h"),
}


def make(seed: int) -> tuple[str, dict[str, str]]:
    rng = random.Random(seed)
    act = rng.choice(list(ACTS))
    right, wrong = ACTS[act]
    forward = "z = x @ W + b\n" + ("h = np.maximum(z, 0)\n" if act == "relu" else f"h = {act}(z)\n") + "out = h * s\n"
    lines = {
        "dz": rng.choice([f"dout * s * ({right})", f"dout * s * ({right})", f"dout * ({right})", f"dout * s * ({wrong})"]),
        "dW": rng.choice(["x.T @ dz", "x.T @ dz", "x.T @ dz / 2", "(dz.T @ x).T", "x.T @ (dz * s)"]),
        "db": rng.choice(["dz.sum(axis=0)", "dz.sum(axis=0)", "dz.sum(axis=1)[:2]", "dz.mean(axis=0)"]),
        "dx": rng.choice(["dz @ W.T", "dz @ W.T", "dz @ W.T * s", "(W @ dz.T).T"]),
    }
    return forward, lines


def spec_text(forward: str, lines: dict[str, str]) -> str:
    indent = lambda block: "".join(f"  {line}\n" for line in block.strip().splitlines())  # noqa: E731
    backward = "\n".join(f"{k} = {v}" for k, v in lines.items())
    return ("network:\n  equations: |\n" + indent(forward).replace("  ", "    ", 1).replace("\n  ", "\n    ")
            + "  parameters: [W, b]\n  shapes: {x: [2, 3], W: [3, 2], b: [2]}\n  domains: {s: positive}\n"
            + "upstream: {out: dout}\nbackward: |\n" + indent(backward))


def run_oracle(forward: str, lines: dict[str, str], env: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The user's forward and backward code, run by NumPy in float64."""
    names = {"np": np, "sigmoid": sigmoid}
    local = dict(env)
    exec(forward.replace("relu", "np.maximum"), names, local)  # our own test text
    for k, v in lines.items():
        local[k] = np.asarray(eval(v, names, local), dtype=float)  # our own test text
    return local


def numeric(forward: str, env: dict[str, np.ndarray], name: str) -> np.ndarray:
    """∂(Σ out ⊙ dout)/∂name by central differences (z: a node, downstream recomputed)."""
    names = {"np": np, "sigmoid": sigmoid}

    def loss(e: dict[str, np.ndarray]) -> float:
        local = dict(e)
        code = forward if name != "z" else forward.split("\n", 1)[1]
        exec(code, names, local)  # our own test text
        return float(np.sum(local["out"] * local["dout"]))

    base = dict(env)
    if name == "z":
        base["z"] = env["x"] @ env["W"] + env["b"]
    value = np.asarray(base[name], dtype=float)
    grad = np.zeros_like(value)
    for idx in np.ndindex(*value.shape):
        plus, minus = value.copy(), value.copy()
        plus[idx] += H
        minus[idx] -= H
        grad[idx] = (loss({**base, name: plus}) - loss({**base, name: minus})) / (2 * H)
    return grad


BASES = {"dz": "z", "dW": "W", "db": "b", "dx": "x"}


@pytest.mark.parametrize("seed", range(12))
def test_block_verdicts_agree_with_finite_differences(seed: int, tmp_path: Path) -> None:
    forward, lines = make(seed)
    path = tmp_path / "s.yaml"
    path.write_text(spec_text(forward, lines))
    report = derive.load(path).report()
    rng = np.random.default_rng(seed)
    for c in report.claims:
        name = c.target.split()[0]
        if c.verdict == Verdict.PROVEN and "(as" not in c.target:
            for _ in range(3):
                env = {"x": rng.uniform(-1.5, 1.5, (2, 3)), "W": rng.uniform(-1.5, 1.5, (3, 2)),
                       "b": rng.uniform(-1.5, 1.5, 2), "s": np.float64(rng.uniform(0.2, 2)),
                       "dout": rng.uniform(-1.5, 1.5, (2, 2))}
                if np.min(np.abs(env["x"] @ env["W"] + env["b"])) < 1e-3:
                    continue  # relu's kink: a set of measure zero
                ours = run_oracle(forward, lines, env)[name]
                assert np.allclose(ours, numeric(forward, env, BASES[name]), atol=1e-5), (seed, name, lines[name])
        elif c.verdict == Verdict.REFUTED and c.counterexample is not None:
            names = {"np": np}
            env = {k: np.asarray(eval(v, names), dtype=float) for k, v in c.counterexample.values.items()}
            ours = run_oracle(forward, lines, env)[name]
            true = numeric(forward, env, BASES[name])
            i, j = c.counterexample.entry
            index = (j,) if true.ndim == 1 else (i, j)
            if ours.shape == true.shape:
                assert abs(ours[index] - true[index]) > 1e-6, (seed, name, lines[name])
