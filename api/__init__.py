"""The REST surface over the orchestration (FastAPI)."""
