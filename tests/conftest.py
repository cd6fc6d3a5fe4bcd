from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import derive

ROOT = Path(__file__).resolve().parent.parent


def net(layers: list[Any], inputs: int = 2, loss: Any = "mse", batch: int = 2,
        strategy: str = "auto", **network: Any) -> derive.Derivation:
    """A derivation from a compact description: layers as (units, activation) pairs."""
    spec = {
        "name": "test",
        "network": {
            "inputs": inputs,
            "layers": [{"units": u, "activation": a, **({"slope": s} if s is not None else {})}
                       for u, a, s in ((*l, None) if len(l) == 2 else l for l in layers)],
            "loss": loss, "batch": batch, **network,
        },
    }
    return derive.from_dict(spec, strategy=strategy)


@pytest.fixture
def classifier() -> derive.Derivation:
    return derive.load(ROOT / "derivations" / "two_layer_classifier.yaml")


@pytest.fixture(autouse=True)
def _default_formula_limits():  # type: ignore[no-untyped-def]
    """CLI flags change the parser's limits for the process: restore them after each test."""
    from derive.lang import formula

    saved = dict(formula.LIMITS)
    yield
    formula.LIMITS.update(saved)
