"""The calculator reads arithmetic by walking the syntax tree: right values, and a clear
refusal for anything that is not arithmetic (never `eval`)."""

import pytest

from llmfinetune_agent.tools.calculator import CalculatorError, calculate


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("12 * 7", "84"),
        ("2 * (3 + 4) ** 2", "98"),
        ("10 / 4", "2.5"),
        ("7 // 2 + 7 % 2", "4"),
        ("-3 + +5", "2"),
        ("sqrt(16) + abs(-2)", "6"),
        ("round(pi, 3)", "3.142"),
        ("3 × 4 ÷ 2", "6"),
        ("2 ^ 10", "1024"),
        ("max(1, 9, 4)", "9"),
        # Floats keep 12 significant digits, however small; integers stay exact.
        ("1 / 10**13", "1e-13"),
        ("1e-320", "1e-320"),
        ("1 / 3", "0.333333333333"),
        ("-2 / 3 * 10**-20", "-6.66666666667e-21"),
        ("0.1 + 0.2", "0.3"),
        ("2 ** 300", str(2**300)),
        ("1e100", "1e+100"),
    ],
)
def test_arithmetic(expression: str, value: str) -> None:
    assert calculate(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os').system('id')", "is not a calculator function"),
        ("open('/etc/passwd')", "'open' is not a calculator function"),
        ("x + 1", "'x' is not arithmetic"),
        ("(1).__class__", "is not arithmetic"),
        ("'a' * 3", "is not arithmetic"),
        ("1 / 0", "divides by zero"),
        ("9 ** 9 ** 9", "larger than 1000"),
        ("10 ** 999", "larger than 1e+100"),
        ("sqrt(-1)", "math domain error"),
        ("1e400", "a number in the expression is larger than 1e+100"),
        ("-1e400 * 0", "a number in the expression is larger than 1e+100"),
        ("9" * 499, "a number in the expression is larger than 1e+100"),
        ("2 +", "cannot read '2 +' as arithmetic"),
        ("", "empty"),
        ("1 + " * 300 + "1", "longer than 500 characters"),
    ],
)
def test_refusals_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError, match=None) as error:
        calculate(expression)
    assert message in str(error.value)
