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


def forecast_for_station(station: "Station") -> str:  # noqa: F821 - refused: no such type
    """Forecast for a weather station."""
    return str(station)


class WeatherStation:
    """A weather station: a class, refused as a tool (a tool is a function)."""

    def __init__(self, name: str) -> None:
        self.name = name


def exit_with(code: int) -> str:
    """Stop the program with an exit code (a tool's failure: the chat goes on)."""
    raise SystemExit(code)


def press_ctrl_c(reason: str) -> str:
    """Interrupt the program as Ctrl-C does (that stops the chat, it is no tool failure)."""
    raise KeyboardInterrupt(reason)
