"""The `calculator` tool: arithmetic read by walking Python's syntax tree, never `eval`.

    calculate("2 * (3 + 4) ** 2")      # "98"
    calculate("10 / 4")                # "2.5"
    calculate("1 / 3")                 # "0.333333333333" (12 significant digits)
    calculate("__import__('os')")      # CalculatorError: names are not allowed ...

Numbers, + - * / // % ** and parentheses, unary minus, and a few functions (sqrt, abs, round,
min, max, floor, ceil, log, exp, sin, cos, tan) with the constants pi and e. Numbers, exponents,
results and round's digits are bounded so that no expression can take the service's CPU or memory
(the calculator runs in the service's own process: a slow call would stall every request).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
MAX_MAGNITUDE = 10**100
# Past 400 digits rounding changes nothing here (a number has at most 101 digits before the point
# and the smallest float is 5e-324), while round(7, -10**8) would first build 10**(10**8).
MAX_ROUND_DIGITS = 400
SIGNIFICANT_DIGITS = 12  # of a float result: beyond that, a float's rounding shows

_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt,
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "floor": math.floor,
    "ceil": math.ceil,
    "log": math.log,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
}
CONSTANTS = {"pi": math.pi, "e": math.e}
# What a function accepts, for the message when an argument is outside it.
_DOMAINS = {
    "sqrt": "sqrt takes a number >= 0",
    "log": "log takes a number > 0 and a base > 0 other than 1",
}


class CalculatorError(ValueError):
    """An expression the calculator does not accept or cannot compute; says which part."""


def calculate(expression: str) -> str:
    """The value of an arithmetic expression, as text (whole numbers without '.0')."""
    text = expression.strip().replace("×", "*").replace("÷", "/").replace("^", "**")
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculatorError(
            f"cannot read {expression!r} as arithmetic (at character {exc.offset})"
        ) from None
    return _as_text(_value(tree.body))


def _value(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _checked_number(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _binary(node)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_value(node.operand)))
    if isinstance(node, ast.Name) and node.id in CONSTANTS:
        return CONSTANTS[node.id]
    if isinstance(node, ast.Call):
        return _call(node)
    raise CalculatorError(
        f"'{ast.unparse(node)}' is not arithmetic: use numbers, + - * / // % ** and "
        f"parentheses, the functions {', '.join(FUNCTIONS)} and the constants pi and e"
    )


def _binary(node: ast.BinOp) -> Any:
    left, right = _value(node.left), _value(node.right)
    if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
        raise CalculatorError(f"the exponent {right} is larger than {MAX_EXPONENT}")
    try:
        result = _BINARY[type(node.op)](left, right)
    except ZeroDivisionError:
        raise CalculatorError(f"'{ast.unparse(node)}' divides by zero") from None
    except ArithmeticError:  # OverflowError, and any other arithmetic failure
        raise CalculatorError(f"'{ast.unparse(node)}' is too large to compute") from None
    return _checked(result)


def _call(node: ast.Call) -> Any:
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if name not in FUNCTIONS or node.keywords:
        raise CalculatorError(
            f"'{name}' is not a calculator function; use one of {', '.join(FUNCTIONS)}"
        )
    arguments = [_value(a) for a in node.args]
    _check_arguments(name, arguments)
    try:
        result = FUNCTIONS[name](*arguments)
    except TypeError as exc:
        raise CalculatorError(f"'{ast.unparse(node)}': {exc}") from None
    except (ValueError, ZeroDivisionError):
        # math says only "math domain error"; log(x, 1) divides by log(1) == 0.
        domain = _DOMAINS.get(name, "the argument is outside what the function accepts")
        raise CalculatorError(f"'{ast.unparse(node)}': math domain error: {domain}") from None
    except ArithmeticError:  # OverflowError: exp(1000)
        raise CalculatorError(f"'{ast.unparse(node)}' is too large to compute") from None
    return _checked(result)


def _check_arguments(name: str, arguments: list[Any]) -> None:
    """Refuse an argument that would make the call slow. Every number is already at most
    `MAX_MAGNITUDE`, which keeps the other functions fast; only round's digits are not."""
    digits = arguments[1] if name == "round" and len(arguments) == 2 else None
    if isinstance(digits, int) and abs(digits) > MAX_ROUND_DIGITS:
        raise CalculatorError(
            f"round to {digits} digits: the calculator rounds to at most {MAX_ROUND_DIGITS} "
            "digits either side of the point"
        )


def _checked(value: Any) -> Any:
    if isinstance(value, complex):
        raise CalculatorError("the result is not a real number")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is not a finite number")
    if _too_large(value):
        raise CalculatorError(f"the result is larger than {MAX_MAGNITUDE:.0e}")
    return value


def _too_large(value: int | float) -> bool:
    # A float is compared with the float nearest the bound: 1e100 itself is allowed.
    return abs(value) > (float(MAX_MAGNITUDE) if isinstance(value, float) else MAX_MAGNITUDE)


def _checked_number(value: int | float) -> int | float:
    """A number written in the expression, within the same bound as every result (a float
    literal past about 1.8e308 reads as infinity)."""
    if _too_large(value):  # infinity included
        raise CalculatorError(
            f"a number in the expression is larger than {MAX_MAGNITUDE:.0e}, the calculator's limit"
        )
    return value


def _as_text(value: Any) -> str:
    """Integers exactly (they are bounded); floats to `SIGNIFICANT_DIGITS` significant digits,
    or shorter when fewer digits read back as the same float (e.g. '1e-320')."""
    if isinstance(value, int):
        return str(value)
    value += 0.0  # -0.0 becomes 0.0
    return min(f"{value:.{SIGNIFICANT_DIGITS}g}", repr(value), key=len)
