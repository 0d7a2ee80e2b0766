"""The tools a chat may use, by name: `calculator`, `python`, or a user's `module:function`.

    tools = build_tools(["calculator", "python", "my_tools.weather:forecast"],
                        limits=SandboxLimits(), allowed_modules=["my_tools"])

Each is a langchain-core tool; a user function's JSON schema comes from its type hints and its
docstring (Google style: the summary describes the tool, `Args:` each parameter).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool, ToolException

from llmfinetune_agent.tools.calculator import CalculatorError, calculate
from llmfinetune_agent.tools.python_sandbox import SandboxLimits, run_python
from phases.user_functions import UserFunctionError, import_user_function

BUILTIN_TOOLS = ("calculator", "python")
TOOL_MODULES_SETTING = "FINETUNE_AGENT_TOOL_MODULES"


class ToolSetupError(ValueError):
    """A tool name that cannot be used; the message names it and says what to do."""


def check_tool_names(names: Iterable[str], allowed_modules: Iterable[str]) -> None:
    """Raise ToolSetupError for an unknown built-in, a malformed or non-allow-listed user tool
    (without importing anything that is not allow-listed)."""
    build_tools(list(names), limits=SandboxLimits(), allowed_modules=list(allowed_modules))


def build_tools(
    names: list[str], *, limits: SandboxLimits, allowed_modules: list[str]
) -> list[BaseTool]:
    """The tools named, in order; ToolSetupError for a name that cannot be used."""
    tools: list[BaseTool] = []
    for name in dict.fromkeys(names):
        if name == "calculator":
            tools.append(calculator_tool())
        elif name == "python":
            tools.append(python_tool(limits))
        elif ":" in name:
            tools.append(user_tool(name, allowed_modules))
        else:
            raise ToolSetupError(
                f"unknown tool {name!r}: use {', '.join(BUILTIN_TOOLS)}, or a function of an "
                "allow-listed module written as 'package.module:function'"
            )
    return tools


def calculator_tool() -> BaseTool:
    """`calculator(expression)`: arithmetic, read without `eval`."""

    def calculator(expression: str) -> str:
        try:
            return calculate(expression)
        except CalculatorError as exc:
            raise ToolException(str(exc)) from None

    return StructuredTool.from_function(
        calculator,
        name="calculator",
        description=(
            "Evaluate an arithmetic expression: numbers, + - * / // % ** and parentheses, "
            "sqrt, abs, round, min, max, floor, ceil, log, exp, sin, cos, tan, pi, e."
        ),
        handle_tool_error=True,
    )


def python_tool(limits: SandboxLimits) -> BaseTool:
    """`python(code)`: a program run in the sandbox; its output is the result."""

    def python(code: str) -> tuple[str, dict[str, Any]]:
        result = run_python(code, limits)
        details = {
            "exit_code": result.exit_code,
            "timed_out": result.timed_out,
            "isolation": result.isolation,
        }
        return result.as_text(), details

    return StructuredTool.from_function(
        python,
        name="python",
        description=(
            "Run a Python program and read what it prints (print the result). It runs alone: "
            f"no network, no files outside its folder, at most {limits.timeout_seconds:g} s."
        ),
        response_format="content_and_artifact",
        handle_tool_error=True,
    )


def user_tool(spec: str, allowed_modules: list[str]) -> BaseTool:
    """A user function as a tool named after the function; its schema from its signature."""
    try:
        function = import_user_function(
            spec, allowed=allowed_modules, what="tool", setting=TOOL_MODULES_SETTING
        )
    except UserFunctionError as exc:
        raise ToolSetupError(str(exc)) from None
    _check_annotated(spec, function)
    try:
        return _structured_tool(function)
    except Exception as exc:  # pydantic and typing fail many ways on hints they cannot use
        raise ToolSetupError(
            f"tool {spec!r}: its JSON schema cannot be built from its type hints "
            f"({type(exc).__name__}: {exc}); use types the module defines or imports"
        ) from None


def _structured_tool(function: Callable[..., Any]) -> BaseTool:
    try:
        return StructuredTool.from_function(function, parse_docstring=True, handle_tool_error=True)
    except ValueError:  # a docstring without a Google-style Args section: the summary only
        return StructuredTool.from_function(function, handle_tool_error=True)


def _check_annotated(spec: str, function: Callable[..., Any]) -> None:
    if inspect.isclass(function):
        raise ToolSetupError(
            f"tool {spec!r}: '{function.__name__}' is a class; name a function (with type hints "
            "and a docstring) instead"
        )
    if not (inspect.getdoc(function) or "").strip():
        raise ToolSetupError(
            f"tool {spec!r}: the function has no docstring; its first line tells the model "
            "what the tool does"
        )
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError) as exc:  # some built-in callables have no readable signature
        raise ToolSetupError(f"tool {spec!r}: its signature cannot be read ({exc})") from None
    for parameter in parameters:
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise ToolSetupError(f"tool {spec!r}: *args and **kwargs cannot be described")
        if parameter.annotation is parameter.empty:
            raise ToolSetupError(
                f"tool {spec!r}: parameter '{parameter.name}' has no type hint; the tool's "
                "JSON schema is built from the type hints"
            )
