"""Pieces of the run store (tables, engine, records, claim owners). Import `llmfinetune_agent.run_store`."""
