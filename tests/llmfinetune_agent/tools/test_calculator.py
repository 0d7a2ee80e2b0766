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
        ("round(1234, -2)", "1200"),
        ("round(7, -400)", "0"),
        ("log(8, 2)", "3"),
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
        ("sqrt(-1)", "'sqrt(-1)': math domain error: sqrt takes a number >= 0"),
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


LOG_DOMAIN = "math domain error: log takes a number > 0 and a base > 0 other than 1"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("log(1, 1)", f"'log(1, 1)': {LOG_DOMAIN}"),  # log(1) / log(1): a ZeroDivisionError
        ("log(5, 1)", f"'log(5, 1)': {LOG_DOMAIN}"),
        ("log(0)", f"'log(0)': {LOG_DOMAIN}"),
        ("log(2, -1)", f"'log(2, -1)': {LOG_DOMAIN}"),
        ("exp(1e100)", "'exp(1e+100)' is too large to compute"),
        (
            "round(1.5, 2.0)",
            "'round(1.5, 2.0)': 'float' object cannot be interpreted as an integer",
        ),
    ],
)
def test_math_errors_are_calculator_errors(expression: str, message: str) -> None:
    with pytest.raises(CalculatorError) as error:
        calculate(expression)
    assert str(error.value) == message


# Each of these ran for minutes in the service's process (holding the GIL) before the bound.
@pytest.mark.timeout(60)  # the limit is for a hang, not a speed test
@pytest.mark.parametrize(
    ("expression", "digits"),
    [
        ("round(7, -10**8)", "-100000000"),
        ("round(7, -10**7)", "-10000000"),
        ("round(-10**100, -401)", "-401"),
        ("round(7, 401)", "401"),
        ("round(7.5, -10**9)", "-1000000000"),
    ],
)
def test_round_digits_are_bounded(expression: str, digits: str) -> None:
    with pytest.raises(CalculatorError) as error:
        calculate(expression)
    assert str(error.value) == (
        f"round to {digits} digits: the calculator rounds to at most 400 digits either side "
        "of the point"
    )


@pytest.mark.timeout(60)  # the limit is for a hang, not a speed test
@pytest.mark.parametrize(
    ("expression", "answer"),
    [
        # the largest power allowed: computed, then refused
        ("(10**100) ** 1000", "the result is larger than 1e+100"),
        ("(10**100 - 1) ** -1000", "0"),
        ("-" * 499 + "1", "-1"),
        ("abs(" * 99 + "1" + ")" * 99, "1"),
        ("1" + " ** 1" * 99, "1"),
        ("max(" + ", ".join(["9" * 100] * 4) + ")", "9" * 100),
        ("log(10**100, 10) + sqrt(10**100) + floor(1e99)", "1e+99"),
        ("sin(1e100)", "-0.380637731005"),
    ],
)
def test_the_largest_accepted_expressions_answer(expression: str, answer: str) -> None:
    try:
        result = calculate(expression)
    except CalculatorError as error:
        result = str(error)
    assert result.startswith(answer)
