"""`python -m llmfinetune_agent.cli` runs the same CLI as `finetune-agent`."""

from llmfinetune_agent.cli import main

main()
