"""The run graph: an entry node (`start`), an orchestrator routing between five agents, the
planner, apply_fixes, post_training and finalize, and one gate per interrupt kind.

`build()` returns the StateGraph; the API and CLI compile it with their checkpointer
(`build().compile(checkpointer=saver)`), while the module-level `graph` below is compiled
without one for LangGraph Studio (`langgraph dev` refuses a graph that brings its own).
Its input may be the service's initial state or a plain run config (`RunInput`); its output
and state are `RunState`; the service passes its settings and stores as the runtime context
(`RunContext`).
"""

from __future__ import annotations

from langgraph.graph import START, StateGraph

from llmfinetune_agent.agents.data_agent import data_generator
from llmfinetune_agent.agents.debugger_agent import debugger
from llmfinetune_agent.agents.evaluator_agent import evaluator
from llmfinetune_agent.agents.finalize_agent import finalize
from llmfinetune_agent.agents.fixes_agent import apply_fixes_node
from llmfinetune_agent.agents.gates import (
    gate_data,
    gate_evaluation,
    gate_fixes,
    gate_plan,
    gate_release,
    gate_training,
)
from llmfinetune_agent.agents.knowledge_agent import knowledge_retrieval
from llmfinetune_agent.agents.orchestrator import orchestrator
from llmfinetune_agent.agents.planner_agent import planner
from llmfinetune_agent.agents.post_training_agent import post_training
from llmfinetune_agent.agents.run_input import start
from llmfinetune_agent.agents.trainer_agent import trainer
from llmfinetune_agent.context import RunContext
from llmfinetune_agent.state import RunInput, RunState

GRAPH_NAME = "finetune_agent"

AGENTS = {
    "data_generator": data_generator,
    "planner": planner,
    "knowledge_retrieval": knowledge_retrieval,
    "trainer": trainer,
    "evaluator": evaluator,
    "debugger": debugger,
    "apply_fixes": apply_fixes_node,
    "post_training": post_training,
    "finalize": finalize,
}
GATES = {
    "gate_plan": gate_plan,
    "gate_data": gate_data,
    "gate_training": gate_training,
    "gate_evaluation": gate_evaluation,
    "gate_fixes": gate_fixes,
    "gate_release": gate_release,
}
GATE_OF_KIND = {
    "approve_plan": "gate_plan",
    "approve_data": "gate_data",
    "training_checkpoint": "gate_training",
    "approve_evaluation": "gate_evaluation",
    "approve_fixes": "gate_fixes",
    "approve_release": "gate_release",
}


def build() -> StateGraph:
    """The graph's shape: `start` normalizes the input, then every node returns to the
    orchestrator, which alone decides (its `Command[Destination]` names where it may go)."""
    builder = StateGraph(
        RunState, context_schema=RunContext, input_schema=RunInput, output_schema=RunState
    )
    builder.add_node("start", start, input_schema=RunInput)
    builder.add_node("orchestrator", orchestrator)
    for name, node in {**AGENTS, **GATES}.items():
        builder.add_node(name, node)
        builder.add_edge(name, "orchestrator")
    builder.add_edge(START, "start")
    builder.add_edge("start", "orchestrator")
    return builder


graph = build().compile(name=GRAPH_NAME)
