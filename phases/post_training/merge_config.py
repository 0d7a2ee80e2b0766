"""What a model merge is: its method, sources, weights and the search over them.

One config for merges inside a run (`post_training.merge`) and outside one
(`finetune-agent merge MERGE_CONFIG`, which adds `output` and the metrics to score with).
LoRA adapters of one base merge through PEFT (`add_weighted_adapter`); full models of one
architecture through mergekit. Cross-field rules live in validators with a message a user
understands, as mergekit does.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from phases.evaluation.config import EvaluationConfig

ADAPTER_METHODS = ("cat", "linear", "ties_svd", "dare_ties_svd")
MODEL_METHODS = ("linear", "slerp", "ties", "dare_ties", "della", "model_stock", "passthrough")
DENSITY_METHODS = ("ties_svd", "dare_ties_svd", "ties", "dare_ties", "della")
# Methods whose result is divided by the sum of the weights (mergekit's linear normalizes).
NORMALIZING_METHODS = ("linear",)
MergeMethod = Literal[
    "cat",
    "ties_svd",
    "dare_ties_svd",
    "linear",
    "slerp",
    "ties",
    "dare_ties",
    "della",
    "model_stock",
    "passthrough",
]


class LayerSlice(BaseModel):
    """Passthrough (layer stacking): these layers of one source, in order."""

    model_config = ConfigDict(extra="forbid")

    source: int = Field(
        ge=0, le=63, description="Index into `sources`, as written (0 is the first)."
    )
    layers: tuple[int, int] = Field(
        description="[first, end) layer range of that source, e.g. [0, 16]."
    )

    @model_validator(mode="after")
    def _ordered(self) -> LayerSlice:
        first, end = self.layers
        if not 0 <= first < end:
            raise ValueError(
                f"layers must be [first, end) with 0 <= first < end, got {self.layers}"
            )
        return self


class EvolveConfig(BaseModel):
    """An evolutionary search (CMA-ES) over the merge's weights and density."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(False, description="Search the merge weights instead of using `weights`.")
    budget: int = Field(
        12, ge=2, le=1000, description="Merges evaluated in all (each scored on `held_out`)."
    )
    sigma: float = Field(
        0.2, gt=0, le=1, description="CMA-ES initial step size (weights in [0, 1])."
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the search.")


class MergeSpec(BaseModel):
    """A merge of models or LoRA adapters of one base, optionally searched by CMA-ES."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    method: MergeMethod = Field(
        description=(
            "LoRA adapters: cat (exact: the adapters' sum, ranks concatenated), linear, ties_svd, "
            "dare_ties_svd (PEFT add_weighted_adapter). Full models of one architecture: linear, "
            "slerp, ties, dare_ties, della, model_stock, passthrough (mergekit)."
        )
    )
    sources: list[str] = Field(
        min_length=1,
        max_length=64,
        description=(
            "What to merge: 'run' (this run's tuned model; in a run it is put first when not "
            "listed, and weights and slerp's t count it), 'model:<registry id>', or a local "
            "adapter/model folder."
        ),
    )
    weights: list[float] | None = Field(
        None,
        description="One weight per source, in order (in a run with 'run' first when not "
        "listed; default: equal weights). Ignored by evolve.",
    )
    density: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of each delta kept (ties_svd, dare_ties_svd, ties, dare_ties, della; default 0.5).",
    )
    t: float = Field(
        0.5,
        ge=0,
        le=1,
        description="slerp: interpolation from the first source (0) to the second (1).",
    )
    base: str | None = Field(
        None,
        description="The common base model of full-model ties/dare_ties/della/model_stock merges "
        "(default: the run's base model). Adapters name their own base.",
    )
    slices: list[LayerSlice] = Field(
        default_factory=list, description="passthrough: the layer slices to stack, in order."
    )
    held_out: str | None = Field(
        None,
        description="Examples (a data file in the eval format) that are neither training nor the "
        "final eval split: each merge and its parents are scored on them, and a merge must be at "
        "least as good as its best parent there.",
    )
    score: Literal["metric", "loss"] = Field(
        "metric",
        description="How merges and their parents are compared on held_out: the mean of the "
        "run's gated evaluation metrics, or the references' mean token loss (negated, so higher "
        "is better; smooth, for searches on small models).",
    )
    evolve: EvolveConfig = Field(
        default_factory=EvolveConfig,
        description="Search the merge weights (and density) with CMA-ES, each trial scored on held_out.",
    )

    @field_validator("weights")
    @classmethod
    def _weights_not_cancelling(cls, weights: list[float] | None, info: ValidationInfo):
        method = info.data.get("method")
        if weights and method in NORMALIZING_METHODS and abs(sum(weights)) < 1e-8:
            raise ValueError(
                f"weights {weights} sum to 0, and {method} divides by their sum (the merge "
                "would be NaN); use weights with a non-zero sum"
            )
        return weights

    @classmethod
    def merged_sources(cls, sources: list[str]) -> list[str]:
        """The sources a merge reads, in the order weights and slerp's t count them."""
        return list(sources)

    @field_validator("weights")
    @classmethod
    def _one_weight_per_source(cls, weights: list[float] | None, info: ValidationInfo):
        names = cls.merged_sources(info.data.get("sources") or [])
        if weights is not None and names and len(weights) != len(names):
            raise ValueError(
                f"{len(weights)} weights for {_counted(names)}; give one weight per source, "
                f"in that order{_implicit_run_note(info.data['sources'], names)}"
            )
        return weights

    @field_validator("slices")
    @classmethod
    def _slices_name_listed_sources(cls, slices: list[LayerSlice], info: ValidationInfo):
        written = info.data.get("sources") or []
        names = cls.merged_sources(written)
        if slices and names != written:
            # the user counts from the sources they wrote; an unlisted 'run' at 0 shifts them all
            raise ValueError(
                f"a run merges {_counted(names)}: 'run' is put first when sources do not list "
                f"it, so slices[].source 0 would be this run's model, not {written[0]!r}; "
                "list 'run' in sources (e.g. first; no slice need use it) so the indices "
                "count what you wrote"
            )
        bad = [s.source for s in slices if s.source >= len(names)]
        if names and bad:
            raise ValueError(f"slices name source(s) {bad}, but there are {_counted(names)}")
        return slices

    @model_validator(mode="after")
    def _consistent(self) -> MergeSpec:
        names = self.merged_sources(self.sources)
        count = len(names)
        if self.method == "slerp" and count != 2:
            raise ValueError(
                f"slerp merges exactly 2 sources, got {_counted(names)}"
                f"{_implicit_run_note(self.sources, names)}"
            )
        if self.method == "passthrough":
            if not self.slices:
                raise ValueError("passthrough needs slices: [{'source': 0, 'layers': [0, 8]}, ...]")
        elif count < 2:
            raise ValueError(f"{self.method} merges at least 2 sources, got {_counted(names)}")
        if self.density is not None and self.method not in DENSITY_METHODS:
            raise ValueError(f"density applies to {', '.join(DENSITY_METHODS)}, not {self.method}")
        if self.evolve.enabled and not self.held_out:
            raise ValueError(
                "evolve needs held_out: the examples each candidate merge is scored on"
            )
        if self.evolve.enabled and self.method in ("cat", "passthrough", "model_stock"):
            raise ValueError(f"{self.method} has no weights to search; use linear or ties_svd")
        return self


def run_merged_sources(sources: list[str]) -> list[str]:
    """What a merge in a run reads: the sources, with this run's model first when not listed."""
    return list(sources) if "run" in sources else ["run", *sources]


def _counted(names: list[str]) -> str:
    return f"{len(names)} source{'s' if len(names) != 1 else ''} ({', '.join(names)})"


def _implicit_run_note(written: list[str], names: list[str]) -> str:
    if names == written:
        return ""
    return " ('run', this run's model, is put first when sources do not list it)"


class RunMergeSpec(MergeSpec):
    """`post_training.merge` in a run: the merge is a candidate gated on `held_out`."""

    held_out: str = Field(
        description="Examples (a data file in the eval format) that are neither training nor the "
        "final eval split: the merge and its parents are scored on them, and the merge must be "
        "at least as good as its best parent there (required in a run: it is the merge's gate).",
    )

    @classmethod
    def merged_sources(cls, sources: list[str]) -> list[str]:
        return run_merged_sources(sources)


class MergeJob(MergeSpec):
    """`finetune-agent merge MERGE_CONFIG`: a merge outside a run, written to `output`."""

    output: str = Field(description="Folder the merged model (with its config and card) goes to.")
    evaluation: EvaluationConfig = Field(
        default_factory=EvaluationConfig,
        description="How held_out is scored (metrics, generation length), as in a run config.",
    )
    min_gain: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="With held_out: the merge must score at least its best parent plus this.",
    )
    add_to_registry: bool = Field(
        True, description="Record the merge in the model registry with its lineage."
    )
