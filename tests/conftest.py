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


def load_text(tmp_path: Path, text: str, name: str = "stack.yaml") -> Any:
    """The derivation of a spec written to ``tmp_path / name``."""
    path = tmp_path / name
    path.write_text(text)
    return derive.load(path)


def mutate_layer_rule(monkeypatch: pytest.MonkeyPatch, kind: str, old: str, new: str) -> None:
    """A stack layer type's registered backward lines with ``old`` rewritten as ``new`` (derive
    proves the rules it registers rather than trusting them); the line must be found."""
    from derive.spec import stack

    keys, has_activation, build = stack.STACK_LAYERS[kind]

    def wrong(*args: Any, **kw: Any) -> Any:
        layer = build(*args, **kw)
        lines = [line.replace(old, new) for line in layer.backward]
        assert lines != layer.backward, f"the mutation {old!r} does not apply to {kind}"
        layer.backward = lines
        return layer

    monkeypatch.setitem(stack.STACK_LAYERS, kind, stack.StackLayer(keys, has_activation, wrong))


def without_seconds(doc: Any) -> Any:
    """A JSON report without its measured seconds."""
    if isinstance(doc, dict):
        return {k: without_seconds(v) for k, v in doc.items() if "second" not in k}
    if isinstance(doc, list):
        return [without_seconds(v) for v in doc]
    return doc
