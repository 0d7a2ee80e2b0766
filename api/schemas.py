"""Request and response bodies, split by use (`RunPublic`, `RunsPublic(data, count)`, ...)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from api import examples as ex
from llmfinetune_agent.config import refuse_boolean

RunStatus = Literal["queued", "running", "awaiting_approval", "completed", "failed", "cancelled"]

QUICKSTART_EXAMPLE: dict[str, Any] = {
    "name": "quickstart",
    "task": "Turn a sentence about a person into JSON with name, age and city.",
    "model": {"name_or_path": "builtin:tiny-llama"},
    "data": {"train": "quickstart/train.jsonl", "format": "auto", "eval_fraction": 0.1},
    "training": {"method": "sft", "lora": None, "epochs": 3, "learning_rate": 0.003},
    "evaluation": {"metrics": ["rougeL", "exact_match"], "thresholds": {"rougeL": 0.6}},
    "hitl": {"approve_plan": True, "approve_data": True, "training_checkpoints": [0.5]},
}


class RunPublic(BaseModel):
    """A run as listed: status, where it is, what it produced."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.RUN_SUMMARY, ex.RUN_WAITING))

    id: str = Field(description="The run id (also the LangGraph thread id).")
    name: str = Field(description="The run config's name.")
    status: RunStatus = Field(description="Where the run stands.")
    interrupted: bool = Field(
        False,
        description="A `running` run whose process is gone (killed, crashed): nothing executes "
        "it until a worker or `finetune-agent resume <id>` picks it up.",
    )
    current_node: str | None = Field(
        description="The graph node running now (or that ran last, or the gate that waits)."
    )
    pending_interrupt: dict[str, Any] | None = Field(description="The gate waiting, if any.")
    error: str | None = Field(description="Why the run failed or was cancelled.")
    model_path: str | None = Field(description="The final model directory of a completed run.")
    run_dir: str = Field(description="The run directory holding its artifacts.")
    parent_run_id: str | None = Field(description="The run this one was derived from.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_record(cls, run: Any) -> RunPublic:
        """From a `RunRecord`."""
        fields = {name: getattr(run, name) for name in cls.model_fields}
        return cls(**fields)


class RunsPublic(BaseModel):
    """One page of runs, newest first, and how many match in all."""

    model_config = ConfigDict(
        json_schema_extra=ex.examples({"data": [ex.RUN_WAITING, ex.RUN_SUMMARY], "count": 2})
    )

    data: list[RunPublic]
    count: int = Field(description="Runs matching the filter, over all pages.")


class RunDetail(BaseModel):
    """One run in full: the fields `finetune-agent runs show --json` prints."""

    model_config = ConfigDict(extra="allow", json_schema_extra=ex.examples(ex.RUN_DETAIL))

    id: str
    name: str
    status: RunStatus
    interrupted: bool = Field(
        False,
        description="A `running` run whose process is gone (killed, crashed): nothing executes "
        "it until a worker or `finetune-agent resume <id>` picks it up.",
    )
    current_node: str | None
    pending_interrupt: dict[str, Any] | None
    decisions: list[dict[str, Any]]
    metrics: dict[str, Any] = Field(description="`base` and `tuned` metric values.")
    thresholds_passed: bool | None
    model_path: str | None
    error: str | None
    run_dir: str
    parent_run_id: str | None
    created_at: str
    updated_at: str
    training: dict[str, Any] | None = Field(
        description="The training segment: while the trainer runs, status 'running' with its "
        "newest global_step, total_steps, train_loss and eta_seconds (seconds left, from this "
        "segment's time per step); afterwards the segment's result."
    )
    data: dict[str, Any] | None
    routing: list[dict[str, Any]] = Field(description="The orchestrator's routing log.")
    outcome_reason: str | None


class RunAccepted(BaseModel):
    """A run was created and queued for a worker."""

    id: str
    status: RunStatus
    run_dir: str
    events_url: str = Field(description="Follow the run's progress here (server-sent events).")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f9c2a71b0de",
                    "status": "queued",
                    "run_dir": "/data/home/runs/3f9c2a71b0de",
                    "events_url": "/runs/3f9c2a71b0de/events",
                }
            ]
        }
    )


class CancelResult(BaseModel):
    """What a cancel request did."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.CANCELLED))

    id: str
    status: RunStatus = Field(description="The run's status after the request.")
    message: str


class InterruptPublic(BaseModel):
    """A gate waiting for a human: the same payload in the API, the CLI and Studio."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.INTERRUPT))

    id: str = Field(description="The interrupt id to answer.")
    kind: str = Field(description="approve_plan, approve_data, training_checkpoint, ...")
    message: str
    details: dict[str, Any]
    options: list[str]


class InterruptsPublic(BaseModel):
    """The run's pending interrupts."""

    model_config = ConfigDict(json_schema_extra=ex.examples({"data": [ex.INTERRUPT], "count": 1}))

    data: list[InterruptPublic]
    count: int


class DecisionIn(BaseModel):
    """The answer to a gate."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"decision": "approve", "comment": "looks good"},
                {"decision": "edit", "edits": {"training": {"learning_rate": 0.001}}},
            ]
        },
    )

    decision: Literal["approve", "reject", "edit"]
    edits: dict[str, Any] | None = Field(None, description="A config patch (for 'edit').")
    comment: str = Field("", max_length=10_000, description="Recorded with the decision.")
    select: list[StrictInt] | None = Field(
        None,
        description="approve_fixes: apply just these diagnoses' patches, by index; "
        "approve_release: register just these candidates (by index; default: every passing one).",
    )
    route: Literal["retrain", "continue"] | None = Field(
        None,
        description=(
            "approve_fixes only: 'retrain' from the base model, or 'continue' from the last "
            "checkpoint (taken when the patch only lengthens the schedule; otherwise the run "
            "retrains and records why). Default: the diagnoses' routes."
        ),
    )


class DecisionAccepted(BaseModel):
    """The decision was accepted; the run is queued to continue with it."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.DECISION_ACCEPTED))

    run_id: str
    interrupt_id: str
    status: RunStatus


class ArtifactPublic(BaseModel):
    """A file in the run directory."""

    path: str = Field(description="Relative to the run directory; download at artifacts/{path}.")
    size: int = Field(description="Bytes.")
    modified: datetime


class ArtifactsPublic(BaseModel):
    """Files of the run directory (at most `limit`)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.ARTIFACTS))

    data: list[ArtifactPublic]
    count: int


class ReportPublic(BaseModel):
    """The run's evaluation report."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.REPORT))

    run_id: str
    markdown: str = Field(description="The report as Markdown.")
    report: dict[str, Any] = Field(description="The full report as JSON.")


class ModelPublic(BaseModel):
    """A registered model with its lineage: what it was made from and how, and its gate."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.MODEL, ex.QUANTIZED_MODEL))

    id: str
    run_id: str | None = Field(
        description="The run that made it (none for a merge made by the CLI)."
    )
    path: str = Field(description="Its folder, or its file for a GGUF.")
    base_model: str = Field(description="The base model at the root of its lineage.")
    config_hash: str | None
    data_hash: str | None
    metrics: dict[str, Any] = Field(description="Its metrics on the run's eval set.")
    created_at: datetime
    name: str | None = Field(None, description="tuned, int8, gguf:q8_0, merge:ties_svd, ...")
    kind: str | None = Field(None, description="model, adapter, quantized or gguf.")
    relation: str | None = Field(
        None, description="How it relates to its parents: adapter, finetune, merge or quantized."
    )
    parent_ids: list[str] = Field(
        default_factory=list, description="Registry ids it was made from (empty: from the base)."
    )
    operation: str | None = Field(None, description="What was done, e.g. gguf:q4_k_m or ties_svd.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="The operation's exact parameters."
    )
    format: str | None = Field(None, description="safetensors, gguf or peft.")
    sha256: str | None = Field(None, description="sha256 of its weight files.")
    bytes: int | None = Field(None, description="Size of its weight files.")
    evaluation: dict[str, Any] = Field(
        default_factory=dict,
        description="Metrics with deltas to its parent; for a candidate also retention, KL, "
        "top-1 agreement, tokens/s and bits per weight (or its held-out scores for a merge).",
    )
    verdict: str | None = Field(None, description="Its gate: pass, fail, accepted or ungated.")
    verdict_reason: str | None = Field(None, description="Why the gate said so.")
    alias: str | None = Field(None, description="champion, candidate or rolled_back.")

    @classmethod
    def from_record(cls, model: Any) -> ModelPublic:
        """From a `ModelRecord`."""
        return cls(**{name: getattr(model, name) for name in cls.model_fields})


class ModelsPublic(BaseModel):
    """Registered models, newest first."""

    model_config = ConfigDict(
        json_schema_extra=ex.examples({"data": [ex.QUANTIZED_MODEL, ex.MODEL], "count": 2})
    )

    data: list[ModelPublic]
    count: int


class ChatMessage(BaseModel):
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=20_000)


class GenerateRequest(BaseModel):
    """A prompt (or chat messages) and sampling parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"prompt": "Anna is 31 and lives in Oslo.", "max_new_tokens": 32},
                {
                    "messages": [{"role": "user", "content": "Tom is 40 and lives in Rome."}],
                    "do_sample": True,
                    "temperature": 0.7,
                    "top_p": 0.9,
                    "seed": 1,
                },
            ]
        },
    )

    prompt: str | None = Field(
        None,
        min_length=1,
        max_length=20_000,
        description="The user's text. Put through the chat template as one user turn when "
        "the model has a template and was not trained on plain prompt/completion text; "
        "`raw` overrides.",
    )
    messages: list[ChatMessage] | None = Field(
        None, min_length=1, max_length=100, description="Chat turns (uses the chat template)."
    )
    raw: bool | None = Field(
        None,
        description="`true`: give `prompt` to the model as it is (no chat template); "
        "`false`: always template it; unset: as the model was trained.",
    )
    max_new_tokens: int = Field(64, ge=1, le=1024)
    do_sample: bool = Field(False, description="Sample (True) or decode greedily (False).")
    temperature: float = Field(1.0, gt=0.0, le=10.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0, le=1000)
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="For reproducible sampling.")

    @field_validator("max_new_tokens", "temperature", "top_p", "top_k", "seed", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        # pydantic reads true as 1: "max_new_tokens": true answered with one token.
        return refuse_boolean(value)

    @model_validator(mode="after")
    def _one_input(self) -> GenerateRequest:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of 'prompt' or 'messages'")
        if self.messages is not None and self.raw:
            raise ValueError("'raw' applies to 'prompt'; chat 'messages' always use the template")
        return self


class GenerateResponse(BaseModel):
    """The generated text."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.GENERATED))

    model_id: str
    generation_id: str = Field(
        description="This answer's id: rate it with `POST /generations/{generation_id}/feedback`."
    )
    text: str
    prompt_tokens: int
    completion_tokens: int
    chat_template: bool = Field(
        description="Whether the input went through the model's chat template."
    )


class FeedbackCreate(BaseModel):
    """What a user says about one generated answer (at least one of the three)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"rating": "down", "better": '{"name": "Anna", "age": 31}', "comment": "age"},
                {"rating": "up"},
            ]
        },
    )

    rating: Literal["up", "down"] | None = Field(None, description="Thumbs up or down.")
    better: str | None = Field(
        None,
        min_length=1,
        max_length=20_000,
        description="A better answer: exported as the chosen reply over the generated one.",
    )
    comment: str | None = Field(None, min_length=1, max_length=5_000, description="Free text.")

    @field_validator("better", "comment")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("is only whitespace: leave it out, or write the text")
        return value

    @model_validator(mode="after")
    def _says_something(self) -> FeedbackCreate:
        if self.rating is None and self.better is None and self.comment is None:
            raise ValueError("give at least one of 'rating', 'better' or 'comment'")
        return self


class FeedbackPublic(BaseModel):
    """Feedback as stored."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "generation_id": "0b6f1c2d9e8a4f5b8c7d6e5f4a3b2c1d",
                    "rating": "down",
                    "better": '{"name": "Anna", "age": 31}',
                    "comment": None,
                    "created_at": "2026-12-06T14:00:00Z",
                }
            ]
        }
    )

    id: int
    generation_id: str
    rating: Literal["up", "down"] | None
    better: str | None
    comment: str | None
    created_at: datetime


class DataUploaded(BaseModel):
    """An uploaded data file: use `path` as `data.train` in a run config."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.UPLOADED))

    path: str
    size: int


class Health(BaseModel):
    """The service is up."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.HEALTH))

    status: Literal["ok"]
    database: str = Field(description="sqlite or postgresql")
    workers: int
    queued_jobs: int


class StatsPublic(BaseModel):
    """Service statistics (`finetune-agent stats` shows the same)."""

    model_config = ConfigDict(json_schema_extra=ex.examples(ex.STATS))

    runs: dict[str, Any] = Field(
        description="Runs by status and method, wall time of the ended ones, training steps "
        "(a prompt run's: metric calls)."
    )
    gates: dict[str, Any] = Field(
        description="Approvals answered and waiting, and how long each gate waited (seconds)."
    )
    interactions: dict[str, Any] = Field(
        description="Answers served (generate, chat) by source and model, latency percentiles "
        "(seconds) and tokens."
    )
    feedback: dict[str, Any] = Field(
        description="Feedback given: thumbs up and down, better answers, comments."
    )
