"""finetune-agent orchestration: run config, graph, state, agents, stores and the CLI."""

__version__ = "0.1.0"
