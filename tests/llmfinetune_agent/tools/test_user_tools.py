"""User tools: a function of an allow-listed module becomes a tool whose JSON schema comes from
its type hints and docstring; anything else is refused before it is imported or run."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from langchain_core.utils.function_calling import convert_to_openai_tool

from llmfinetune_agent.chat.graph import run_tool_call
from llmfinetune_agent.tools.python_sandbox import SandboxLimits
from llmfinetune_agent.tools.registry import ToolSetupError, build_tools, check_tool_names

MODULE = "tests.llmfinetune_agent.tools.sample_tools"
LIMITS = SandboxLimits()


def test_a_documented_function_becomes_a_tool_with_its_schema() -> None:
    [tool] = build_tools(
        [f"{MODULE}:convert_temperature"],
        limits=LIMITS,
        allowed_modules=["tests.llmfinetune_agent"],
    )
    schema = convert_to_openai_tool(tool)["function"]
    assert schema["name"] == "convert_temperature"
    assert schema["description"] == "Convert a temperature given in degrees Celsius."
    assert schema["parameters"]["required"] == ["celsius"]
    assert schema["parameters"]["properties"]["celsius"] == {
        "type": "number",
        "description": "The temperature in degrees Celsius.",
    }
    assert schema["parameters"]["properties"]["to"]["enum"] == ["fahrenheit", "kelvin"]
    call = {"name": "convert_temperature", "args": {"celsius": 100}, "id": "c1"}
    assert run_tool_call(call, {tool.name: tool}).content == "212"


def test_bad_arguments_and_unknown_tools_answer_with_an_error_the_model_reads() -> None:
    tools = {
        t.name: t
        for t in build_tools(
            ["calculator", f"{MODULE}:convert_temperature"], limits=LIMITS, allowed_modules=[MODULE]
        )
    }
    wrong_type = run_tool_call(
        {"name": "convert_temperature", "args": {"celsius": "hot"}, "id": "1"}, tools
    )
    assert wrong_type.status == "error"
    assert wrong_type.content.startswith(
        "bad arguments for convert_temperature: 'celsius': Input should be a valid number"
    )
    missing = run_tool_call({"name": "calculator", "args": {}, "id": "2"}, tools)
    assert missing.content == "bad arguments for calculator: 'expression': Field required"
    misnamed = run_tool_call({"name": "calculator", "args": {"expr": "1+1"}, "id": "2"}, tools)
    assert misnamed.content == (
        "bad arguments for calculator: unexpected 'expr' (it takes: expression); "
        "'expression': Field required"
    )
    # An argument the tool does not take is refused, not dropped: 100 C is not 212 in kelvin.
    extra = {"celsius": 100, "unit": "kelvin"}
    extra_call = run_tool_call({"name": "convert_temperature", "args": extra, "id": "5"}, tools)
    assert (extra_call.status, extra_call.content) == (
        "error",
        "bad arguments for convert_temperature: unexpected 'unit' (it takes: celsius, to)",
    )
    unknown = run_tool_call({"name": "weather", "args": {}, "id": "3"}, tools)
    assert (
        unknown.content
        == "unknown tool 'weather'; this chat's tools are: calculator, convert_temperature"
    )
    failing = run_tool_call({"name": "calculator", "args": {"expression": "1/0"}, "id": "4"}, tools)
    assert (failing.status, failing.content) == ("error", "'1 / 0' divides by zero")


def test_a_tool_that_exits_is_an_error_the_model_reads_but_ctrl_c_stops_the_chat() -> None:
    names = [f"{MODULE}:exit_with", f"{MODULE}:press_ctrl_c"]
    tools = {t.name: t for t in build_tools(names, limits=LIMITS, allowed_modules=[MODULE])}
    exited = run_tool_call({"name": "exit_with", "args": {"code": 3}, "id": "1"}, tools)
    assert (exited.status, exited.content) == ("error", "exit_with failed: SystemExit: 3")
    with pytest.raises(KeyboardInterrupt):
        run_tool_call({"name": "press_ctrl_c", "args": {"reason": "stop"}, "id": "2"}, tools)


@pytest.mark.parametrize(
    ("name", "allowed", "message"),
    [
        ("os:system", [], "module 'os' is not allow-listed (none are allowed yet)"),
        ("subprocess:run", ["tests"], "module 'subprocess' is not allow-listed (tests)"),
        (f"{MODULE}:missing", [MODULE], f"'{MODULE}' has no function 'missing'"),
        (f"{MODULE}:without_hints", [MODULE], "parameter 'city' has no type hint"),
        (f"{MODULE}:without_docstring", [MODULE], "the function has no docstring"),
        (
            f"{MODULE}:forecast_for_station",
            [MODULE],
            f"tool '{MODULE}:forecast_for_station': its JSON schema cannot be built from its type "
            "hints (NameError: name 'Station' is not defined)",
        ),
        (
            f"{MODULE}:WeatherStation",
            [MODULE],
            f"tool '{MODULE}:WeatherStation': 'WeatherStation' is a class; name a function",
        ),
        (
            "nonexistent_pkg.tools:run",
            ["nonexistent_pkg"],
            "cannot import module 'nonexistent_pkg.tools'",
        ),
        ("weather", [], "unknown tool 'weather': use calculator, python"),
        ("os.path:join()", ["os"], "write it as 'package.module:function'"),
    ],
)
def test_refused_tools_say_why(name: str, allowed: list[str], message: str) -> None:
    with pytest.raises(ToolSetupError) as error:
        build_tools([name], limits=LIMITS, allowed_modules=allowed)
    assert message in str(error.value)


def test_a_module_outside_the_allow_list_is_never_imported() -> None:
    sys.modules.pop("tests.llmfinetune_agent.tools.sample_tools", None)
    with pytest.raises(ToolSetupError):
        build_tools(
            [f"{MODULE}:convert_temperature"], limits=LIMITS, allowed_modules=["tests.other"]
        )
    assert MODULE not in sys.modules


@pytest.fixture
def broken_tools(tmp_path, monkeypatch) -> Iterator[str]:
    """A package `broken_tools` whose modules fail while they are imported."""
    package = tmp_path / "broken_tools"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "raises.py").write_text('raise RuntimeError("import fails")\n')
    (package / "syntax.py").write_text("def f(:\n")
    (package / "exits.py").write_text("import sys\n\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "broken_tools"
    for name in [m for m in sys.modules if m.split(".")[0] == "broken_tools"]:
        del sys.modules[name]


@pytest.mark.parametrize(
    ("module", "failure"),
    [
        ("raises", "RuntimeError: import fails"),
        ("syntax", "SyntaxError: "),
        ("exits", "SystemExit: 3"),
    ],
)
def test_a_module_that_fails_to_import_is_a_refused_tool(
    broken_tools: str, module: str, failure: str
) -> None:
    name = f"{broken_tools}.{module}:f"
    with pytest.raises(ToolSetupError) as error:
        check_tool_names([name], allowed_modules=[broken_tools])
    assert str(error.value).startswith(
        f"tool '{name}': importing module '{broken_tools}.{module}' failed: {failure}"
    )
    assert str(error.value).endswith("; fix the module, or name another")
