"""np.einsum in the NumPy dialect: the subscripts string is data (a strict pattern,
checked by the parser, never evaluated), the contraction is computed exactly by index
loops and equals NumPy's float einsum; einsum-based backward rules are proven when right
and refuted when the subscripts are in the wrong order.  Also vec of a tensor of rank 3
and 4: column-major, as for matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_tensor_layers import _values  # a dialect expression on exact rationals, as floats

import derive
from derive.errors import FormulaError
from derive.lang import formula as F
from derive.records import Verdict

RNG = np.random.default_rng(0)
A, B, C = RNG.integers(-3, 4, (2, 3)) / 2, RNG.integers(-3, 4, (3, 4)) / 2, RNG.integers(-3, 4, (3, 3)) / 4
T3, T4 = RNG.integers(-3, 4, (2, 3, 2)) / 2, RNG.integers(-3, 4, (2, 1, 3, 2)) / 2


@pytest.mark.parametrize("subscripts, names", [
    ("ij,jk->ik", "A, B"),       # a matrix product
    ("ij,jk", "A, B"),           # the implicit output: the letters seen once, in order
    ("ij->ji", "A"),             # a transpose
    ("ii->i", "C"),              # a diagonal
    ("ii", "C"),                 # a trace
    ("ij->", "A"),               # a sum
    ("ij,ij->i", "A, A"),        # row-wise dot products
    ("i,j->ij", "D, D"),         # an outer product
    ("nti,ij->ntj", "T3, E"),    # a batched projection
    ("nti,ntj->ij", "T3, T3"),   # a weight gradient summed over batch and time
    ("ncij,ck->nkij", "T4, G"),  # a 1×1 convolution
])
def test_einsum_equals_numpy(subscripts: str, names: str) -> None:
    arrays = {"A": A, "B": B, "C": C, "D": A[0], "E": B[:2, :2], "T3": T3, "T4": T4, "G": A[:1]}
    args = [arrays[n.strip()] for n in names.split(",")]
    ours = _values(f"np.einsum('{subscripts}', {names})", **{n.strip(): arrays[n.strip()] for n in names.split(",")})
    assert np.allclose(ours, np.einsum(subscripts, *args))


@pytest.mark.parametrize("text, message", [
    ("np.einsum('i j,jk->ik', A, B)", "not letters separated by commas"),
    ("np.einsum('...j,jk->ik', A, B)", "not letters separated by commas"),
    ("np.einsum('ij;jk->ik', A, B)", "not letters separated by commas"),
    ("np.einsum('ij,jk->i->k', A, B)", "not letters separated by commas"),
    ("np.einsum('ij,jk->ik', A)", "name 2 array(s), given 1"),
    ("np.einsum('ij,jk->iz', A, B)", "each letter once, and from the inputs"),
    ("np.einsum('ij,jk->ii', A, B)", "each letter once, and from the inputs"),
    ("np.einsum(s, A)", "takes its subscripts first, as a string literal"),
    ("np.einsum(A, B)", "takes its subscripts first"),
    ("np.sum('ij')", "only numbers are allowed as constants"),      # a string anywhere else
    ("np.einsum('ij->ji', 'A')", "only numbers are allowed as constants"),
    ("np.einsum('ij,jk->ik', A, B, optimize=True)", "keyword argument 'optimize' is not supported"),
])
def test_bad_einsum_is_a_parse_error(text: str, message: str) -> None:
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        F.parse(text)


def test_einsum_shape_errors_are_named() -> None:
    with pytest.raises(Exception, match="the letter 'j' has sizes 3 and 4"):
        _values("np.einsum('ij,jk->ik', A, A2)", A=A, A2=B.T)
    with pytest.raises(Exception, match="has 2 letters for an array of shape"):
        _values("np.einsum('ij->i', T)", T=T3)


def test_subscripts_are_kept_as_data_and_printed_back() -> None:
    node = F.parse("np.einsum('ni,nj->ij', X, dZ)")
    assert isinstance(node, F.Call) and isinstance(node.args[0], F.Subscripts)
    assert node.args[0].text == "ni,nj->ij"
    assert F.unparse(node) == "einsum('ni,nj->ij', X, dZ)"
    assert F.names(node) == {"X", "dZ"}


SPEC = """
name: a dense layer with einsum
network:
  equations: |
    Z = np.einsum('ni,ij->nj', X, W) + b
    out = np.tanh(Z)
  parameters: [W, b]
  shapes: {X: [2, 3], W: [3, 3], b: [3]}
upstream: {out: dout}
backward: |
  dZ = dout * (1 - out ** 2)
  dW = np.einsum('ni,nj->ij', X, dZ)
  db = np.einsum('nj->j', dZ)
  dX = np.einsum('nj,ij->ni', dZ, W)
claims:
  - dW: np.einsum('ni,nj', X, dZ)
  - dX: np.einsum('nj,ji->ni', dZ, W.T)
  - target: dW                        # the subscripts of the output in the wrong order: dWᵀ
    formula: np.einsum('ni,nj->ji', X, dZ)
    expect: refuted
  - target: dX                        # W where Wᵀ belongs
    formula: np.einsum('nj,ji->ni', dZ, W)
    expect: refuted
"""


def test_einsum_backward_rules_proven_and_wrong_order_refuted(tmp_path: Path) -> None:
    path = tmp_path / "einsum.yaml"
    path.write_text(SPEC)
    report = derive.load(path).report()
    assert report.ok, [(c.target, c.verdict, c.detail) for c in report.claims if not c.ok]
    verdicts = [(c.target, c.verdict) for c in report.claims]
    assert verdicts == [("dZ", Verdict.PROVEN), ("dW", Verdict.PROVEN), ("db", Verdict.PROVEN),
                        ("dX", Verdict.PROVEN), ("dW", Verdict.PROVEN), ("dX", Verdict.PROVEN),
                        ("dW", Verdict.REFUTED), ("dX", Verdict.REFUTED)]
    assert all(c.counterexample is not None for c in report.claims if c.verdict == Verdict.REFUTED)


@pytest.mark.parametrize("array", [T3, T4])
def test_vec_of_a_tensor_is_column_major(array: np.ndarray) -> None:
    assert np.allclose(_values("vec(T)", T=array), array.reshape(-1, 1, order="F"))
