"""derive's exact backward check against torch.autograd.gradcheck, side by side.

The same course-style NumPy layers (tests/backward_examples.py), each with a correct and
a buggy backward, checked by

- derive (``derive.code.gradcheck``): proven / refuted / unproven, exactly, with the entry;
- ``torch.autograd.gradcheck`` at its defaults (float64 inputs, eps 1e-6, atol 1e-5,
  rtol 1e-3), the NumPy code wrapped in a ``torch.autograd.Function``: pass / fail, with
  the input its "Jacobian mismatch" names (it names an input, never an entry).

Columns: verdicts, seconds, and whether each tool named the gradient the bug breaks
(derive: the refuted gradient's entry; torch: the input of the first mismatch).

Run from the repository root::

    .venv/bin/python bench/backward_vs_gradcheck.py            # derive, and torch if installed
    .venv/bin/python bench/backward_vs_gradcheck.py --derive-only

torch is optional and not a dependency of derive: install it into the environment that
runs this script with ``pip install torch==2.13.0`` (on the development machine that
resolves to a local wheel).  Without torch the torch columns say "not installed".
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import backward_examples as ex  # noqa: E402

from derive.code import gradcheck  # noqa: E402


# ------------------------------------------------------------------ derive
def run_derive(case: ex.Case, buggy: bool) -> dict[str, Any]:
    t = time.perf_counter()
    if case.loss:
        r = gradcheck(case.loss_buggy if buggy else case.forward, shapes=case.shapes, timeout=120)
    else:
        r = gradcheck(case.forward, case.buggy if buggy else case.correct, case.shapes, timeout=120)
    seconds = time.perf_counter() - t
    named = ""
    hit = None
    refuted = r.refuted
    if refuted:
        first = refuted[0]
        named = first.counterexample.entry if first.counterexample else f"d{first.name} (shape)"
        hit = any(g.name == case.wrong for g in refuted)
    return {"verdict": str(r.verdict), "seconds": seconds, "named": named, "hit": hit,
            "wrong": {g.name for g in refuted}}


# ------------------------------------------------------------------ torch
def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def run_torch(torch: Any, case: ex.Case, buggy: bool, wrong: set[str], seed: int = 0) -> dict[str, Any]:
    """``wrong``: the gradients derive refuted (each wrong for certain): torch's named input is a
    hit when it is one of them."""
    names = list(case.shapes)
    multi = [None]

    class Layer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *tensors):
            arrays = [t.detach().numpy() for t in tensors]
            ctx.arrays = arrays
            if case.loss:
                out, _ = (case.loss_buggy if buggy else case.forward)(*arrays)
                return torch.tensor(float(out), dtype=torch.float64)
            out = case.forward(*arrays)
            if isinstance(out, tuple):
                multi[0] = len(out)
                return tuple(torch.from_numpy(np.array(o, dtype=np.float64)) for o in out)
            return torch.from_numpy(np.array(out, dtype=np.float64))

        @staticmethod
        def backward(ctx, *grad_outputs):
            arrays = ctx.arrays
            if case.loss:
                _, dx = (case.loss_buggy if buggy else case.forward)(*arrays)
                return (grad_outputs[0] * torch.from_numpy(np.array(dx, dtype=np.float64)),)
            ups = [g.detach().numpy() for g in grad_outputs]
            dout = ups[0] if len(ups) == 1 else tuple(ups)
            grads = (case.buggy if buggy else case.correct)(dout, *arrays)
            grads = grads if isinstance(grads, tuple) else (grads,)
            return tuple(torch.from_numpy(np.array(g, dtype=np.float64).reshape(a.shape)) for g, a in
                         zip(grads, arrays, strict=True))

    GradcheckError = importlib.import_module("torch.autograd.gradcheck").GradcheckError  # noqa: N806
    gen = torch.Generator().manual_seed(seed)
    given = case.notes.get("numeric_inputs", {})
    inputs = tuple(torch.tensor(given[n], dtype=torch.float64, requires_grad=True) if n in given else
                   torch.randn(*s, generator=gen, dtype=torch.float64, requires_grad=True)
                   for n, s in case.shapes.items())
    t = time.perf_counter()
    named = ""
    try:
        ok = torch.autograd.gradcheck(lambda *a: Layer.apply(*a), inputs)
        verdict = "pass" if ok else "fail"
    except GradcheckError as e:
        verdict = "fail"
        text = str(e)
        import re

        m = re.search(r"with respect to input (\d+)", text)
        if m:
            named = names[int(m.group(1))]
    except Exception as e:  # noqa: BLE001 — a crash is a result here
        verdict = f"error: {type(e).__name__}"
    seconds = time.perf_counter() - t
    hit = None if verdict == "pass" else (named in wrong if named else False)
    return {"verdict": verdict, "seconds": seconds, "named": f"input {named}" if named else "", "hit": hit}


# ------------------------------------------------------------------ the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--derive-only", action="store_true", help="skip torch even if it is installed")
    parser.add_argument("--case", action="append", help="only these cases (by name)")
    args = parser.parse_args()
    torch = None if args.derive_only else _torch()
    if torch is None and not args.derive_only:
        print("torch is not installed: torch columns skipped (pip install torch==2.13.0 to compare)\n")
    header = (f"{'case':<18}{'backward':<9}{'derive':<10}{'s':>7}  {'derive names':<22}{'hit':<5}"
              f"{'torch':<8}{'s':>7}  {'torch names':<16}{'hit':<5}")
    print(header)
    print("─" * len(header))
    for case in ex.CASES:
        if args.case and case.name not in args.case:
            continue
        for buggy in (False, True):
            d = run_derive(case, buggy)
            if torch is not None:
                tr = run_torch(torch, case, buggy, d["wrong"])
                tcols = f"{tr['verdict']:<8}{tr['seconds']:>7.2f}  {tr['named']:<16}{_hit(tr['hit']):<5}"
            else:
                tcols = f"{'n/a':<8}{'':>7}  {'':<16}{'':<5}"
            print(f"{case.name:<18}{'buggy' if buggy else 'correct':<9}{d['verdict']:<10}{d['seconds']:>7.2f}  "
                  f"{d['named']:<22}{_hit(d['hit']):<5}{tcols}", flush=True)
    print("\nhit: the tool named a gradient that is wrong (derive names the entry and gives the arrays; torch names "
          "only the input).")


def _hit(h: bool | None) -> str:
    return "" if h is None else ("yes" if h else "no")


if __name__ == "__main__":
    main()
