"""Functions the user-tool tests register (their module is allow-listed in those tests)."""

from typing import Literal


def convert_temperature(celsius: float, to: Literal["fahrenheit", "kelvin"] = "fahrenheit") -> str:
    """Convert a temperature given in degrees Celsius.

    Args:
        celsius: The temperature in degrees Celsius.
        to: The scale to convert to.
    """
    value = celsius * 9 / 5 + 32 if to == "fahrenheit" else celsius + 273.15
    return f"{value:g}"


def without_hints(city):  # noqa: ANN001 - the test checks that this is refused
    """Look up a city."""
    return city


def without_docstring(city: str) -> str:
    return city
