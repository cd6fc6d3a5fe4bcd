"""Specs: YAML in, frozen typed records out, every input validated once (one-line errors)."""

from derive.spec.load import load_spec, parse_spec
from derive.spec.model import ClaimSpec, EquationsSpec, LayerSpec, Limits, LossSpec, Spec, reserved_name
from derive.spec.program import ProgramSpec
from derive.spec.yaml_io import read_yaml

__all__ = ["ClaimSpec", "EquationsSpec", "LayerSpec", "Limits", "LossSpec", "ProgramSpec", "Spec", "load_spec",
           "parse_spec", "read_yaml", "reserved_name"]
