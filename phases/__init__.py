"""Pure ML steps: data, training, evaluation (and later synthesis, retrieval, diagnosis).

Each phase is a plain function taking a typed config and paths and returning a small
result; nothing here imports LangGraph, FastAPI, SQLAlchemy or the graph state.
"""
