"""Sweep constraints: boolean expressions over a design point's metric columns, axis keys and
``fits_memory`` (comparisons, and/or/not, + - * / ** %, numbers and strings), evaluated by a
small interpreter over the parsed expression tree, never ``eval``."""
from __future__ import annotations

import ast
import dataclasses
from typing import Any

FITS_MEMORY = "fits_memory"

_ALLOWED_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                  ast.UAdd, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod,
                  ast.Compare, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq, ast.Name,
                  ast.Attribute, ast.Constant, ast.Load)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


@dataclasses.dataclass(frozen=True)
class Constraint:
    """A boolean expression over metric columns, axis keys and ``fits_memory``:
    comparisons, and/or/not, + - * / ** %, numbers and strings. Evaluated by a small
    interpreter over the parsed tree (never ``eval``)."""
    text: str
    tree: ast.Expression
    names: frozenset

    @classmethod
    def parse(cls, text: str) -> Constraint:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValueError(f"cannot parse constraint {text!r}: {exc.msg}") from None
        names = set()
        for node in ast.walk(tree):
            if not isinstance(node, _ALLOWED_NODES):
                raise ValueError(f"constraint {text!r}: {type(node).__name__} is not allowed "
                                 "(use comparisons, and/or/not, arithmetic, names, numbers)")
            if isinstance(node, (ast.Name, ast.Attribute)):
                dotted = _dotted(node)
                if dotted is None:
                    raise ValueError(f"constraint {text!r}: cannot read {ast.unparse(node)}")
        for node in ast.walk(tree):   # outermost dotted names only
            if isinstance(node, (ast.Name, ast.Attribute)):
                names.add(_dotted(node))
        names = {n for n in names if not any(o != n and o.startswith(n + ".") for o in names)}
        return cls(text, tree, frozenset(names))

    def holds(self, values: dict[str, Any]) -> bool:
        return bool(self._eval(self.tree.body, values))

    def _eval(self, node, values):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Name, ast.Attribute)):
            name = _dotted(node)
            if name not in values or values[name] is None:
                raise KeyError(name)
            return values[name]
        if isinstance(node, ast.BoolOp):
            results = (self._eval(v, values) for v in node.values)
            return all(results) if isinstance(node.op, ast.And) else any(results)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, values)
            return {ast.Not: lambda: not v, ast.USub: lambda: -v, ast.UAdd: lambda: +v}[type(node.op)]()
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left, values), self._eval(node.right, values)
            return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                    ast.Div: lambda: a / b, ast.Pow: lambda: a ** b, ast.Mod: lambda: a % b}[type(node.op)]()
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, values)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, values)
                ok = {ast.Lt: left < right, ast.LtE: left <= right, ast.Gt: left > right,
                      ast.GtE: left >= right, ast.Eq: left == right, ast.NotEq: left != right}[type(op)]
                if not ok:
                    return False
                left = right
            return True
        raise ValueError(f"unsupported expression {ast.unparse(node)}")


def violations(constraints: list[Constraint], values: dict[str, Any]) -> list[str]:
    """The constraints a point breaks, each with the values it read."""
    broken = []
    for c in constraints:
        try:
            ok = c.holds(values)
        except KeyError as exc:
            broken.append(f"{c.text} (no value for {exc.args[0]})")
            continue
        except (ArithmeticError, TypeError) as exc:
            broken.append(f"{c.text} ({type(exc).__name__}: {exc})")
            continue
        if not ok:
            shown = ", ".join(f"{n}={values.get(n)!r}" for n in sorted(c.names) if n != FITS_MEMORY)
            broken.append(f"{c.text}" + (f" ({shown})" if shown else ""))
    return broken
