"""YAML → frozen, typed dataclasses.  All input validation happens here, once.

Invariants:
- YAML is read with a ``SafeLoader`` subclass that also rejects duplicate keys and
  documents with many aliases (alias bombs); nothing in a spec is ever executed.
- Every error is a :class:`~derive.errors.SpecError` naming file, place, bad value and
  what was expected, e.g. ``net.yaml: network.layers[1].activation: unknown activation
  'relu6' (expected one of: sigmoid, tanh, ...)``.
- A loaded :class:`Spec` is internally consistent: the network stage does not re-check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from derive.spec.common import _check_keys, _choice, _fail
from derive.spec.equations import equation_spec
from derive.spec.layers import layer_stack_spec
from derive.spec.model import Limits, Spec
from derive.spec.program import ProgramSpec, is_program, program_spec
from derive.spec.stack import is_tensor_stack, stack_spec
from derive.spec.yaml_io import read_yaml
from derive.util.text import shown


def load_spec(path: str | Path, limits: Limits = Limits()) -> Spec | ProgramSpec:
    """Load and validate a spec file."""
    return parse_spec(read_yaml(path, limits), str(path), limits)


def parse_spec(data: Any, file: str = "<spec>", limits: Limits = Limits()) -> Spec | ProgramSpec:
    """Validate a spec already read from YAML (a mapping)."""
    if data is None:
        raise _fail(file, "", "empty file (expected a mapping with a 'network' key)")
    if not isinstance(data, dict):
        raise _fail(file, "", f"expected a mapping with a 'network' key, got {type(data).__name__}")
    name_ = data.get("name", Path(file).stem)
    if isinstance(data.get("network"), dict) and is_program(data) and isinstance(name_, str):
        return program_spec(file, name_, data, limits)
    _check_keys(file, "", data, ("name", "description", "network", "claims", "claims_latex", "notation"))
    notation = _choice(file, "notation", data.get("notation", "default"), ("default", "course"), "notation")
    name = data.get("name", Path(file).stem)
    if not isinstance(name, str):
        raise _fail(file, "name", f"expected text, got {shown(name)}")
    if "network" not in data:
        raise _fail(file, "", "missing key 'network'")
    net = data["network"]
    if not isinstance(net, dict):
        raise _fail(file, "network", f"expected a mapping (inputs, layers, loss, ...), got {shown(net)}")
    if "equations" in net:
        spec = equation_spec(file, name, net, data, limits)
    elif is_tensor_stack(net):  # any layer type but dense: translated to NumPy code (derive/spec/stack/)
        return stack_spec(file, name, net, data, limits)
    else:
        spec = layer_stack_spec(file, name, net, data, limits, notation)
    symbols = entries(spec)
    if symbols > limits.max_symbols:
        raise _fail(file, "network", f"{symbols} entries in the inputs, targets and parameters together exceed "
                                     f"the limit {limits.max_symbols} (--max-symbols)")
    return spec


def entries(spec: Spec) -> int:
    """Symbols the network is built from: every entry of every input, target and parameter
    (a 1000×1000 input costs as much as a million parameters)."""
    if spec.equations is not None:
        return sum(rows * cols for rows, cols in spec.equations.shapes.values()) + len(spec.equations.parameters)
    sizes = spec.sizes
    return spec.parameters + (sizes[0] + sizes[-1]) * spec.batch
