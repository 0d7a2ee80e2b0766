"""Parts of the run store: tables, engine, records, claim owners.

Import the public API from `llmfinetune_agent.run_store`.
"""
