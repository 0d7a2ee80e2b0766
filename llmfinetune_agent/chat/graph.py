"""The chat graph: an assistant that calls tools until it can answer (the `create_agent` loop).

    start -> agent -> (tool calls) -> tools -> agent -> ... -> (an answer) -> end

`start` checks the conversation's settings and sends a new user message to `agent`; `agent`
asks the model, with the chat's tools bound while tool rounds remain (`max_iterations` per
user message; then it must answer without them); `tools` runs each call and records its result
as a tool message (a bad call gets an error result the model can read, never an exception).

`build()` returns the StateGraph; the API and CLI compile it with the runs' checkpointer, the
module-level `graph` (in `langgraph.json`) is compiled without one for LangGraph Studio. In
Studio, start a thread with `{"settings": {"model": "builtin:tiny-llama", "tools":
["calculator"]}, "messages": [{"role": "user", "content": "What is 12 times 7?"}]}`.
"""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import ValidationError

from llmfinetune_agent.chat.config import ChatConfig
from llmfinetune_agent.chat.context import ChatContext, chat_context
from llmfinetune_agent.chat.models import resolve_chat_model
from llmfinetune_agent.chat.prompts import ROUNDS_EXHAUSTED
from llmfinetune_agent.chat.state import ChatState
from llmfinetune_agent.tools.registry import build_tools

GRAPH_NAME = "assistant"


def start(state: ChatState, runtime: Runtime[ChatContext]) -> Command[Literal["agent", "__end__"]]:
    """Check the settings (resolving the model the first time) and route a new user message."""
    settings = dict(state.get("settings") or {})
    config = ChatConfig.model_validate(_config_fields(settings))
    if "model_path" not in settings:  # a thread started in Studio: resolve here, once
        from llmfinetune_agent.run_store import RunStore

        context = chat_context(runtime)
        store = RunStore(context.settings.database_url)
        resolved = resolve_chat_model(
            config.model, store=store, cache_dir=context.settings.models_cache_dir
        )
        settings.update(
            model_path=resolved.path,
            artifact_prompt=resolved.artifact_prompt,
            artifact_exemplars=list(resolved.exemplars),
        )
    messages = state.get("messages") or []
    waiting = bool(messages) and isinstance(messages[-1], HumanMessage)
    return Command(
        update={"settings": {**settings, **config.model_dump()}, "rounds": 0},
        goto="agent" if waiting else END,
    )


def agent(state: ChatState, runtime: Runtime[ChatContext]) -> Command[Literal["tools", "__end__"]]:
    """One reply of the model; tool calls go to `tools`, an answer ends the turn."""
    context = chat_context(runtime)
    settings = state["settings"]
    config = ChatConfig.model_validate(_config_fields(settings))
    rounds_left = state.get("rounds", 0) < config.max_iterations
    tools = chat_tools(config, context) if rounds_left else []
    model: Any = context.models.get(settings["model_path"])
    if tools:
        model = model.bind_tools(tools)
    model = model.bind(
        max_new_tokens=config.max_new_tokens,
        do_sample=config.temperature is not None,
        temperature=config.temperature,
    )
    system = config.system_text(settings.get("artifact_prompt"))
    if config.tools and not rounds_left:
        system += "\n\n" + ROUNDS_EXHAUSTED.format(limit=config.max_iterations)
    shots = exemplar_turns(settings.get("artifact_exemplars"))
    reply = model.invoke([SystemMessage(system), *shots, *state["messages"]])
    goto = "tools" if tools and reply.tool_calls else END
    return Command(update={"messages": [reply]}, goto=goto)


def exemplar_turns(exemplars: list[dict[str, str]] | None) -> list[HumanMessage | AIMessage]:
    """A prompt artifact's exemplars as the user/assistant turns that open every request."""
    return [
        message
        for e in exemplars or []
        for message in (HumanMessage(e["input"]), AIMessage(e["output"]))
    ]


def tools(state: ChatState, runtime: Runtime[ChatContext]) -> Command[Literal["agent"]]:
    """Run each tool call of the last reply; every result (or error) becomes a tool message."""
    context = chat_context(runtime)
    config = ChatConfig.model_validate(_config_fields(state["settings"]))
    available = {tool.name: tool for tool in chat_tools(config, context)}
    last = state["messages"][-1]
    calls = last.tool_calls if isinstance(last, AIMessage) else []
    results = [run_tool_call(call, available) for call in calls]
    return Command(update={"messages": results, "rounds": state.get("rounds", 0) + 1}, goto="agent")


def chat_tools(config: ChatConfig, context: ChatContext) -> list[BaseTool]:
    """The chat's tools, with the service's sandbox limits and allow-list."""
    return build_tools(
        config.tools, limits=context.sandbox, allowed_modules=context.settings.tool_modules
    )


def run_tool_call(call: dict[str, Any], available: dict[str, BaseTool]) -> ToolMessage:
    """The tool message answering `call`: the tool's result, or an error naming what was wrong."""
    name, call_id = call["name"], call.get("id") or ""
    tool = available.get(name)
    if tool is None:
        known = ", ".join(available) or "none"
        return _error(f"unknown tool {name!r}; this chat's tools are: {known}", name, call_id)
    unexpected = _unexpected_arguments(call.get("args"), tool)
    if unexpected:
        return _error(f"bad arguments for {name}: {unexpected}", name, call_id)
    try:
        result = tool.invoke({**call, "type": "tool_call"})
    except ValidationError as exc:
        problems = "; ".join(
            f"'{'.'.join(map(str, e['loc'])) or 'arguments'}': {e['msg']}" for e in exc.errors()
        )
        return _error(f"bad arguments for {name}: {problems}", name, call_id)
    except (KeyboardInterrupt, GeneratorExit):
        raise  # the process or the generator is stopping: not the tool's failure
    except BaseException as exc:  # a user tool can fail any way, even exit: the model reads why
        return _error(f"{name} failed: {type(exc).__name__}: {exc}", name, call_id)
    if isinstance(result, ToolMessage):
        return result
    return ToolMessage(content=str(result), name=name, tool_call_id=call_id)


def _unexpected_arguments(args: Any, tool: BaseTool) -> str:
    """What is wrong with arguments the tool does not take ("" when there are none).

    The tool's schema would drop them silently, and the model would read a result computed
    without what it meant to ask (a unit, a date), so the call is refused, naming them.
    """
    if not isinstance(args, dict):
        return ""  # not a mapping: the schema's own validation says so
    unexpected = [key for key in args if key not in tool.args]
    if not unexpected:
        return ""
    takes = ", ".join(tool.args) or "no arguments"
    required = tool.tool_call_schema.model_json_schema().get("required", [])
    missing = [f"'{key}': Field required" for key in required if key not in args]
    listed = ", ".join(repr(key) for key in unexpected)
    return "; ".join([f"unexpected {listed} (it takes: {takes})", *missing])


def _error(text: str, name: str, call_id: str) -> ToolMessage:
    return ToolMessage(content=text, name=name, tool_call_id=call_id, status="error")


def _config_fields(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k in ChatConfig.model_fields and v is not None}


def build() -> StateGraph:
    """The chat graph's shape (compile it with a checkpointer to keep conversations)."""
    builder = StateGraph(ChatState, context_schema=ChatContext)
    builder.add_node("start", start)
    builder.add_node("agent", agent)
    builder.add_node("tools", tools)
    builder.add_edge(START, "start")
    return builder


graph = build().compile(name=GRAPH_NAME)
