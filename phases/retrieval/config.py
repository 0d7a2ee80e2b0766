"""The `knowledge` section of a run config (local documents to retrieve passages from)."""

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class KnowledgeConfig(BaseModel):
    """Local document sources indexed for retrieval."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(False, description="Retrieve passages from the sources for the run.")
    sources: list[str] = Field(
        default_factory=list,
        description="Files or folders of documents (txt, md, html, json, csv).",
    )
    top_k: int = Field(3, gt=0, le=1000, description="Passages kept per query.")
    chunk_size: int = Field(800, gt=50, le=1_000_000, description="Characters per chunk.")
    chunk_overlap: int = Field(
        100, ge=0, le=1_000_000, description="Characters shared by neighbouring chunks."
    )
    embedding_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the MiniLM embedding similarity in the hybrid score (the rest is BM25); "
            "0 ranks by BM25 alone and skips loading the encoder."
        ),
    )
    max_queries: int = Field(
        20,
        gt=0,
        le=100_000,
        description="Queries at most: the task description plus one per seed example.",
    )
    rag_context: bool = Field(
        False,
        description=(
            "Put the passage a generated example was grounded on into that example's prompt as "
            "context (RAG-style training examples)."
        ),
    )

    @field_validator("sources")
    @classmethod
    def _no_blank_source(cls, sources: list[str]) -> list[str]:
        # An empty path is the current folder (or, anchored, the config's folder or a whole
        # data root): every file there would be indexed, none of them the user's choice.
        blank = [
            f"knowledge.sources[{i}]" for i, source in enumerate(sources) if not source.strip()
        ]
        if blank:
            raise ValueError(f"{', '.join(blank)} is empty: give a file or folder of documents")
        return sources

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "KnowledgeConfig":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"knowledge.chunk_overlap ({self.chunk_overlap}) must be smaller than "
                f"knowledge.chunk_size ({self.chunk_size})"
            )
        return self
