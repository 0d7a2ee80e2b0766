"""The assistant: conversations with memory over a tuned model, with tools.

`graph.py` is the chat graph (state in `state.py`, presets in `prompts.py`), `service.py` keeps
conversations in the runs' checkpoint store, `models.py` resolves and caches a chat's model.
"""
