"""Evaluate the CRD's CEL rules in tests with cel-python.

Kubernetes adds library functions to CEL; the one our rules use, ``quantity()``, is provided here
on top of the official client's quantity parser so rules are tested as the API server runs them.
"""

from __future__ import annotations

from typing import Any

import celpy
from celpy import celtypes
from kubernetes.utils import parse_quantity


class _Quantity(celtypes.StringType):
    def compare_to(self, other: _Quantity) -> celtypes.IntType:
        a, b = parse_quantity(str(self)), parse_quantity(str(other))
        return celtypes.IntType((a > b) - (a < b))


def _quantity(value: Any) -> _Quantity:
    return _Quantity(str(value))


def _compare_to(left: Any, right: Any) -> celtypes.IntType:
    return _Quantity(str(left)).compare_to(_Quantity(str(right)))


def evaluate(rule: str, self_value: Any, old_self: Any | None = None) -> bool:
    """True when ``rule`` admits ``self_value`` (and ``old_self`` for transition rules)."""
    source = rule.replace(".compareTo(", ".compare_to(")
    env = celpy.Environment()
    program = env.program(env.compile(source), functions={"quantity": _quantity, "compare_to": _compare_to})
    activation = {"self": celpy.json_to_cel(self_value)}
    if old_self is not None:
        activation["oldSelf"] = celpy.json_to_cel(old_self)
    return bool(program.evaluate(activation))
