"""Sweep constraints: boolean expressions over a design point's metric columns, axis keys and
``fits_memory`` (comparisons, and/or/not, + - * / ** %, numbers and strings), evaluated by a
small interpreter over the parsed expression tree, never ``eval``.

The interpreter is bounded so that no expression can hang a sweep or exhaust memory: the text is
at most ``MAX_TEXT`` characters and ``MAX_DEPTH`` levels deep; arithmetic is on numbers only (no
``'a' * 10**12``); every intermediate result stays within ``MAX_MAGNITUDE`` and a power is refused
before it is computed if it would not (``2**2**2**2**2**2``). Parts made of constants only are
evaluated when the constraint is read, so such an expression is a spec error (exit 2) at once.
"""
from __future__ import annotations

import ast
import dataclasses
import math
from typing import Any

FITS_MEMORY = "fits_memory"
MAX_TEXT = 500
MAX_DEPTH = 32
MAX_MAGNITUDE = 1e300

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
        if len(text) > MAX_TEXT:
            raise ValueError(f"a constraint is at most {MAX_TEXT} characters, got {len(text)}")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            raise ValueError(f"cannot parse constraint {text!r}: {getattr(exc, 'msg', exc)}") from None
        if _depth(tree) > MAX_DEPTH:
            raise ValueError(f"constraint {text!r} nests deeper than {MAX_DEPTH} levels")
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
        constraint = cls(text, tree, frozenset(names))
        for node in ast.walk(tree):    # constant parts: evaluate now, so they fail now
            if isinstance(node, (ast.BinOp, ast.UnaryOp)) and \
                    not any(isinstance(n, (ast.Name, ast.Attribute)) for n in ast.walk(node)):
                try:
                    constraint._eval(node, {})
                except (ArithmeticError, TypeError) as exc:
                    raise ValueError(f"constraint {text!r}: {ast.unparse(node)}: {exc}") from None
        return constraint

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
            if isinstance(node.op, ast.Not):
                return not v
            _number(v, node.op)
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BinOp):
            return _arithmetic(node.op, self._eval(node.left, values), self._eval(node.right, values))
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


def _depth(tree: ast.AST) -> int:
    """Nesting depth of a tree, without recursion (the tree may be deep)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.Mod: "%",
           ast.USub: "-", ast.UAdd: "+"}


def _show(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, (int, float)) and abs(v) > 1e15 else repr(v)


def _number(v: Any, op: ast.AST) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"'{_SYMBOL[type(op)]}' applies to numbers, not {v!r}")


def _arithmetic(op: ast.AST, a: Any, b: Any):
    """a op b on numbers, refusing results beyond MAX_MAGNITUDE (OverflowError) before
    computing them where they could be huge (powers)."""
    _number(a, op)
    _number(b, op)
    if isinstance(op, ast.Pow):
        if a == 0 and b < 0:
            raise ZeroDivisionError("0 cannot be raised to a negative power")
        if a != 0 and abs(b) * math.log10(max(abs(a), 1e-300)) > math.log10(MAX_MAGNITUDE):
            raise OverflowError(f"{_show(a)} ** {_show(b)} exceeds {MAX_MAGNITUDE:g}")
        result = a ** b
        if isinstance(result, complex):
            raise ArithmeticError(f"({_show(a)}) ** {_show(b)} is not a real number")
    else:
        result = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                  ast.Div: lambda: a / b, ast.Mod: lambda: a % b}[type(op)]()
    if abs(result) > MAX_MAGNITUDE or (isinstance(result, float) and math.isnan(result)):
        raise OverflowError(f"{_show(a)} {_SYMBOL[type(op)]} {_show(b)} exceeds {MAX_MAGNITUDE:g}")
    return result


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
