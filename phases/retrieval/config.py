"""The `knowledge` section of a run config (local documents to retrieve passages from)."""

from pydantic import BaseModel, ConfigDict, Field


class KnowledgeConfig(BaseModel):
    """Local document sources indexed for retrieval."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="Retrieve passages from the sources for the run.")
    sources: list[str] = Field(
        default_factory=list,
        description="Files or folders of documents (txt, md, html, json, csv).",
    )
    top_k: int = Field(3, gt=0, description="Passages kept per query.")
    chunk_size: int = Field(800, gt=50, description="Characters per chunk.")
    chunk_overlap: int = Field(100, ge=0, description="Characters shared by neighbouring chunks.")
