"""A resource limit is never a verdict against a correct network (issue 19).

The vec(Z_l) and vec(dW_l) rules whose Kronecker factor is over the evaluator's size
limit are proven as instances of the all-sizes identities, resting on the matrix
statement checked entry by entry.  With a weight decay λ that statement is
dW_l = dZ_l A_{l-1}ᵀ + λ W_l (before: without λ W_l, so vec(dW_l) was "unproven (limit)"
and ``derive check`` exited 1 on a correct network).  Small networks with a lowered limit
stand for the large ones.
"""

from __future__ import annotations

import pytest

import derive
from derive.model import evaluate
from derive.records import Method


@pytest.mark.parametrize("layout", ["columns", "rows"])
@pytest.mark.parametrize("decay", [0, 0.1])
def test_vec_rules_over_the_limit_are_proven_with_and_without_weight_decay(
        layout: str, decay: float, monkeypatch: pytest.MonkeyPatch) -> None:
    d = derive.from_dict({"name": "limits", "network": {
        "inputs": 3, "layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "sigmoid"}],
        "loss": "mse", "batch": 2, "batch_layout": layout, "weight_decay": decay}})
    monkeypatch.setattr(evaluate, "MAX_ENTRIES", 20)  # every Kronecker factor is larger
    report = d.report(jobs=1)
    assert report.ok, [(c.statement, c.verdict, c.method, c.detail) for c in report.rules if c.verdict != "proven"]
    for c in report.rules:
        if c.rule in ("vec(Z)", "vec(dW)"):
            assert c.method == Method.INSTANCE and "more than the limit of 20" in (c.detail or "")


def test_a_limit_is_never_a_refutation(monkeypatch: pytest.MonkeyPatch) -> None:
    d = derive.from_dict({"name": "limits", "network": {
        "inputs": 2, "layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
        "loss": "mse", "batch": 2, "weight_decay": 0.5}})
    monkeypatch.setattr(evaluate, "MAX_ENTRIES", 5)
    checks = d.check_rules()
    assert not [c.statement for c in checks if c.verdict == "refuted"]
    assert all(c.verdict == "proven" or c.method == Method.LIMIT for c in checks)
    claim = d.check_claim("vec(dW1)", "kron(X, eye(n1)) @ vec(dZ1) + 0.5 * vec(W1)")
    assert claim.verdict == "unproven" and claim.method == Method.LIMIT
