"""The `training` section of a run config: one model per method, chosen by `method`.

`TrainingConfig` is a union discriminated by `method` ("sft" when omitted). The fields every
TRL trainer reads (LoRA, schedule, batching, checkpoints, seed) sit in `TrainingSettings`; each
method adds only its own. `data_kinds` on each method class is the one statement of which
normalized data kinds (`phases.data`) that method learns from; everything else reads it.

    from phases.training.config import parse_training_config
    config = parse_training_config({"method": "dpo", "beta": 0.2})
"""

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from models.config import MAX_TOKENS
from phases.training.backends import ParamValue, autotrain_refusal, check_autotrain_params
from phases.training.reward_config import RewardFunctionConfig, RewardGuards

# The most optimizer steps a run may take or count between saves, logs and evals: months of
# training, and well inside the 64-bit integers a checkpoint stores.
MAX_STEPS = 10_000_000
# The SFT weight in DPO by default (see DPOTraining.rpo_alpha), measured on SmolLM2-135M with
# benchmarks/preference.py: held-out exact match 0.85 with 1.0, 0.00 with plain DPO (0).
RPO_ALPHA_DEFAULT = 1.0


class LoraSettings(BaseModel):
    """LoRA adapter settings (PEFT). Present means: train an adapter, not the full model."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # A rank past the layer width adds nothing; no model is wider than 16384 (Llama 3 405B).
    r: int = Field(16, gt=0, le=16384, description="Rank of the LoRA update matrices.")
    alpha: int = Field(32, gt=0, le=65536, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="Module names to adapt, or 'all-linear' for every linear layer but the head.",
    )


class TrainingResources(BaseModel):
    """What each training process asks a Ray cluster for; Ray places the process on a node that
    has it (the local backend runs on the machine it has and ignores this)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # Per process, not per job: 4 processes with gpus=1 are 4 workers with a GPU each, never
    # one worker holding 4 GPUs (LlamaFactory#7084).
    gpus: float = Field(
        0, ge=0, le=64, description="GPUs per training process (a fraction shares one GPU)."
    )
    cpus: float = Field(1, gt=0, le=1024, description="CPU cores per training process.")
    memory_gb: float | None = Field(
        None,
        gt=0,
        le=65536,
        description="Memory per training process in GiB (null: reserve none).",
    )


class TrainingSettings(BaseModel):
    """The settings every training method shares: LoRA, schedule, batching, checkpoints."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # The normalized data kinds this method learns from (the one place that says so).
    data_kinds: ClassVar[tuple[str, ...]] = ()

    # Declared here so that it comes first in dumps; each method narrows it to its own name.
    method: str = Field(
        description=(
            "The training method: 'sft', 'dpo', 'reward', 'grpo', 'rloo', 'kto' or 'prompt'."
        )
    )
    backend: Literal["trl", "autotrain"] = Field(
        "trl",
        description=(
            "The engine that trains: 'trl' (TRL in this process), or 'autotrain' (AutoTrain "
            "Advanced in its own virtual environment, installed with `finetune-agent backends "
            "install autotrain`; methods sft, dpo and reward; whole epochs; no pause mid-training)."
        ),
    )
    autotrain_params: dict[str, ParamValue] = Field(
        default_factory=dict,
        description=(
            "Extra AutoTrain LLM parameters passed through as they are (backend 'autotrain' "
            "only), e.g. {'optimizer': 'adamw_torch', 'padding': 'left'}; settings the run "
            "config already has are refused with the field to set instead."
        ),
    )
    lora: LoraSettings | None = Field(
        None, description="LoRA adapter settings; null trains all weights (full fine-tuning)."
    )
    epochs: float = Field(3.0, gt=0, le=1000, description="Passes over the training data.")
    max_steps: int | None = Field(
        None,
        gt=0,
        le=MAX_STEPS,
        description="Stop after this many optimizer steps (overrides epochs).",
    )
    # Fine-tuning rates lie around 1e-6..1e-2; 10 is far past any rate that trains.
    learning_rate: float = Field(2e-4, gt=0, le=10, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        "linear", description="Learning-rate schedule after warm-up."
    )
    warmup_ratio: float = Field(
        0.0, ge=0.0, lt=1.0, description="Fraction of steps spent warming the learning rate up."
    )
    weight_decay: float = Field(0.0, ge=0.0, le=10, description="AdamW weight decay.")
    # A huge norm is how one switches clipping off; 1e9 is past any real gradient.
    max_grad_norm: float = Field(1.0, gt=0, le=1e9, description="Gradient clipping norm.")
    batch_size: int = Field(8, gt=0, le=4096, description="Examples per device per step.")
    gradient_accumulation_steps: int = Field(
        1, gt=0, le=65536, description="Micro-batches accumulated into one optimizer step."
    )
    gradient_checkpointing: bool = Field(
        False, description="Trade compute for memory by recomputing activations."
    )
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description=(
            "What the forward and backward compute in (bfloat16 autocast; the trained weights "
            "stay float32). auto: bfloat16 where the hardware has it (a GPU that supports it, "
            "a CPU with AMX or AVX512-BF16: 1.1-1.4x faster for LoRA SFT), else float32. On a "
            "CPU without those instructions bfloat16 runs emulated, about 70x slower (the plan "
            "warns)."
        ),
    )
    save_steps: int = Field(
        50,
        gt=0,
        le=MAX_STEPS,
        description="Save a resumable checkpoint every N optimizer steps (crash safety).",
    )
    save_total_limit: int = Field(
        2, gt=0, le=10_000, description="Keep at most this many step checkpoints."
    )
    logging_steps: int = Field(
        5, gt=0, le=MAX_STEPS, description="Log loss and learning rate every N steps."
    )
    eval_steps: int | None = Field(
        None,
        gt=0,
        le=MAX_STEPS,
        description="Compute eval loss every N steps (default: once per epoch).",
    )
    num_processes: int = Field(
        1,
        ge=1,
        le=1024,
        description=(
            "Data-parallel training processes, each with `batch_size` examples per step: on "
            "one machine through `accelerate launch` (gloo on CPU), with the Ray backend as "
            "Ray Train workers placed by `resources`."
        ),
    )
    resources: TrainingResources = Field(
        default_factory=TrainingResources,
        description="What each training process requests from a Ray cluster (GPUs, CPUs, memory).",
    )
    # Seeds stay within the range numpy and torch accept (0..2^32-1).
    seed: int = Field(42, ge=0, le=2**32 - 1, description="Seed for initialisation and data order.")

    @field_validator("autotrain_params")
    @classmethod
    def _known_autotrain_params(cls, params: dict[str, ParamValue]) -> dict[str, ParamValue]:
        check_autotrain_params(params)
        return params

    @model_validator(mode="after")
    def _backend_can_train(self) -> "TrainingSettings":
        if self.backend == "autotrain":
            refusal = autotrain_refusal(
                self.method, self.epochs, self.max_steps, self.num_processes
            )
            if refusal:
                raise ValueError(refusal)
        elif self.autotrain_params:
            raise ValueError("training.autotrain_params is read only with backend 'autotrain'")
        return self


class SFTTraining(TrainingSettings):
    """Supervised fine-tuning (TRL SFTTrainer) on chat, tool-calling chat, prompt/completion or
    plain text data."""

    data_kinds: ClassVar[tuple[str, ...]] = ("chat", "tool_chat", "prompt_completion", "text")

    method: Literal["sft"] = Field(
        "sft", description="'sft': supervised fine-tuning (the default when omitted)."
    )
    packing: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "Pack several examples into one sequence. 'auto' packs only where it pays: on a GPU "
            "with variable-length data (on CPU, plain padding measured faster)."
        ),
    )
    completion_only_loss: bool = Field(
        True,
        description="Take the loss on the completion / assistant reply only, not on the prompt.",
    )
    share_prefix: bool = Field(
        True,
        description=(
            "Compute the tokens that every row of a batch starts with (a chat template's "
            "system turn, a shared instruction) once per batch instead of once per row. The "
            "losses are the same up to rounding. Applies without dropout only (LoRA dropout 0), "
            "where every row computes that prefix alike; never with packing."
        ),
    )


class DPOTraining(TrainingSettings):
    """Direct preference optimisation (TRL DPOTrainer) on prompt/chosen/rejected pairs."""

    data_kinds: ClassVar[tuple[str, ...]] = ("preference",)

    # `method` is required in the JSON schema (only SFT's may be omitted there), defaulted here
    # so that `DPOTraining(beta=0.2)` reads well from Python.
    model_config = ConfigDict(json_schema_extra={"required": ["method"]})

    method: Literal["dpo"] = Field(
        "dpo", description="'dpo': direct preference optimisation of the model itself."
    )
    beta: float = Field(
        0.1, gt=0, le=100, description="Strength of the KL penalty to the reference."
    )
    rpo_alpha: float = Field(
        RPO_ALPHA_DEFAULT,
        ge=0,
        le=100,
        description=(
            "Weight of an SFT term (mean negative log-likelihood of the chosen reply, its "
            "end-of-turn token included) added to the DPO loss, as in RPO; 0 is plain DPO. "
            "Without it DPO only widens the chosen-minus-rejected gap, which it can do by "
            "lowering both, and the tuned model may stop ending its answers. TRL: "
            "loss_type ['sigmoid', 'sft'] with loss_weights [1, rpo_alpha]. Backend 'trl' "
            "only: AutoTrain trains plain DPO."
        ),
    )
    sft_adapter: str | None = Field(
        None,
        description=(
            "A LoRA adapter folder trained with SFT on the chosen replies of the same data (an "
            "earlier run's adapter, say): DPO continues training that adapter instead of a new "
            "one, so it starts from a model that already writes the chosen answers. Needs "
            "lora; the reference is a frozen copy of that adapter (the SFT model)."
        ),
    )

    @model_validator(mode="after")
    def _sft_adapter_needs_lora(self) -> "DPOTraining":
        if self.sft_adapter is not None and self.backend == "autotrain":
            raise ValueError("training.sft_adapter needs backend 'trl'")
        if self.sft_adapter is not None and self.lora is None:
            raise ValueError(
                "training.sft_adapter continues a LoRA adapter: set training.lora too, or "
                "remove sft_adapter"
            )
        return self


class RewardTraining(TrainingSettings):
    """A reward model (TRL RewardTrainer): a one-logit scorer trained to rank chosen first."""

    data_kinds: ClassVar[tuple[str, ...]] = ("preference",)

    model_config = ConfigDict(json_schema_extra={"required": ["method"]})

    method: Literal["reward"] = Field(
        "reward", description="'reward': a reward model that scores a response to a prompt."
    )


class KTOTraining(TrainingSettings):
    """Kahneman-Tversky optimisation (TRL KTOTrainer) from single replies marked desirable or
    not (thumbs up/down): prompt, completion, label."""

    data_kinds: ClassVar[tuple[str, ...]] = ("kto",)

    model_config = ConfigDict(json_schema_extra={"required": ["method"]})

    method: Literal["kto"] = Field(
        "kto", description="'kto': learn from replies labelled desirable or undesirable."
    )
    beta: float = Field(
        0.1, gt=0, le=100, description="Strength of the KL penalty to the reference."
    )
    desirable_weight: float = Field(
        1.0, gt=0, le=100, description="Weight of the desirable (thumbs-up) replies' loss."
    )
    undesirable_weight: float = Field(
        1.0, gt=0, le=100, description="Weight of the undesirable (thumbs-down) replies' loss."
    )


class RLTraining(TrainingSettings):
    """Online RL from rewards (GRPO, RLOO): the model writes `num_generations` completions per
    prompt, the rewards score them, and better-than-average completions are made likelier.

    The defaults fit a CPU: LoRA on, 4 generations per prompt, 32-token completions, no vLLM
    and bf16 only where the hardware multiplies it natively (`precision: auto`)."""

    # A chat's last assistant reply, or a completion, is offered to the rewards as `reference`.
    data_kinds: ClassVar[tuple[str, ...]] = ("prompt", "prompt_completion", "chat")

    model_config = ConfigDict(json_schema_extra={"required": ["method", "rewards"]})

    lora: LoraSettings | None = Field(
        default_factory=LoraSettings,
        description="LoRA adapter settings (on by default for RL); null trains all weights.",
    )
    rewards: list[RewardFunctionConfig] = Field(
        min_length=1,
        max_length=16,
        description="The reward functions, summed with their weights (see RewardFunctionConfig).",
    )
    num_generations: int = Field(
        4, ge=2, le=256, description="Completions sampled per prompt (a group)."
    )
    max_completion_length: int = Field(
        32, gt=0, le=MAX_TOKENS, description="The longest completion sampled, in tokens."
    )
    temperature: float = Field(
        1.0, gt=0, le=10, description="Sampling temperature of the completions."
    )
    use_vllm: bool = Field(
        False, description="Generate with vLLM (GPU only; vLLM must be installed)."
    )
    log_completions_steps: int = Field(
        5,
        ge=1,
        le=MAX_STEPS,
        description="Every N steps, log sample completions with each function's reward.",
    )
    guards: RewardGuards = Field(
        default_factory=RewardGuards,
        description="Stop or flag the run when the rewards stop teaching (zero spread, clipping).",
    )

    @model_validator(mode="after")
    def _groups_fit_batch(self) -> "RLTraining":
        per_step = self.batch_size * self.gradient_accumulation_steps * self.num_processes
        if per_step % self.num_generations:
            raise ValueError(
                f"training.batch_size x gradient_accumulation_steps x num_processes ({per_step}) "
                f"must be a multiple of training.num_generations ({self.num_generations}): each "
                "step scores whole groups of completions of one prompt"
            )
        return self


class GRPOTraining(RLTraining):
    """Group relative policy optimisation (TRL GRPOTrainer)."""

    method: Literal["grpo"] = Field(
        "grpo", description="'grpo': reinforcement learning from rewards, group-relative."
    )
    beta: float = Field(
        0.0, ge=0, le=100, description="KL penalty to the reference (0: no reference model)."
    )


class RLOOTraining(RLTraining):
    """REINFORCE leave-one-out (TRL RLOOTrainer)."""

    method: Literal["rloo"] = Field(
        "rloo", description="'rloo': reinforcement learning from rewards, leave-one-out baseline."
    )
    beta: float = Field(0.05, ge=0, le=100, description="KL penalty to the reference.")


# The per-row metrics a prompt search can maximize (each scores one generated answer).
PromptMetric = Literal["exact_match", "json_valid", "json_field_accuracy", "rougeL"]
PROMPT_METRICS: tuple[str, ...] = get_args(PromptMetric)


class PromptTraining(TrainingSettings):
    """Prompt optimization: the model's weights stay frozen; a system prompt is evolved with
    GEPA (reflective prompt evolution over a Pareto frontier) and few-shot exemplars are
    chosen by bootstrap (the training rows whose inclusion scores best), each candidate scored
    on a held-out part of the training split. The result is a `prompt` artifact."""

    data_kinds: ClassVar[tuple[str, ...]] = ("chat", "prompt_completion")
    # Shared settings that update weights: meaningless here, so refused when set.
    weight_fields: ClassVar[tuple[str, ...]] = (
        "autotrain_params",
        "lora",
        "epochs",
        "max_steps",
        "learning_rate",
        "lr_scheduler",
        "warmup_ratio",
        "weight_decay",
        "max_grad_norm",
        "gradient_accumulation_steps",
        "gradient_checkpointing",
        "precision",
        "save_steps",
        "save_total_limit",
        "logging_steps",
        "eval_steps",
        "num_processes",
        "resources",
    )

    model_config = ConfigDict(json_schema_extra={"required": ["method"]})

    method: Literal["prompt"] = Field(
        "prompt",
        description="'prompt': optimize a system prompt and few-shot exemplars, weights frozen.",
    )
    base_prompt: str | None = Field(
        None,
        max_length=20_000,
        description=(
            "The plain instruction the search starts from and the evaluation compares against "
            "(default: the run's task)."
        ),
    )
    optimizer: Literal["gepa", "none"] = Field(
        "gepa",
        description=(
            "'gepa': evolve the system prompt with GEPA and a reflection model; 'none': keep "
            "the base prompt and only choose exemplars."
        ),
    )
    max_metric_calls: int = Field(
        40,
        ge=1,
        le=1_000_000,
        description=(
            "GEPA's budget in metric calls: answers generated and scored (held-out rows for "
            "every candidate, plus the reflection minibatches)."
        ),
    )
    exemplars: int = Field(
        2, ge=0, le=16, description="Few-shot exemplars to put before each input (0: none)."
    )
    exemplar_trials: int = Field(
        4,
        ge=0,
        le=10_000,
        description=(
            "Exemplar sets bootstrap scores on the held-out rows (each costs one metric call "
            "per held-out row); the best set is kept only if it beats no exemplars."
        ),
    )
    held_out_fraction: float = Field(
        0.25,
        gt=0.0,
        lt=1.0,
        description="Share of the training split held out to score candidates on.",
    )
    max_held_out: int = Field(
        16, ge=1, le=100_000, description="At most this many held-out rows (they cost time)."
    )
    metric: PromptMetric | None = Field(
        None,
        description=(
            "The per-row metric to maximize (default: the first of evaluation.metrics that is "
            "scored per row, else exact_match)."
        ),
    )
    reflection_model: str | None = Field(
        None,
        description=(
            "A local model that reads failed answers and writes a better prompt (same forms "
            "as model.name_or_path); default: the run's model."
        ),
    )
    reflection_chat_model: str | None = Field(
        None,
        description=(
            "Instead of a local reflection model: any langchain-core chat model class as "
            "'module:Class', e.g. 'langchain_openai:ChatOpenAI'."
        ),
    )
    reflection_chat_model_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Arguments for reflection_chat_model; keep API keys in the environment.",
    )
    reflection_minibatch_size: int = Field(
        3, ge=1, le=1000, description="Training rows shown to the reflection model per proposal."
    )
    reflection_max_new_tokens: int = Field(
        256, gt=0, le=MAX_TOKENS, description="Tokens a local reflection model may write."
    )

    def held_out_count(self, rows: int) -> int:
        """How many of `rows` training rows are held out to score candidates on (at least 1,
        and at least one row is left for the pool when there are two or more)."""
        wanted = max(1, round(self.held_out_fraction * rows))
        return max(1, min(wanted, self.max_held_out, rows - 1))

    def planned_metric_calls(self, rows: int) -> int:
        """The search's budget in metric calls (answers generated and scored): GEPA's, or the
        base prompt's held-out scoring without it, plus each bootstrap trial's held-out rows."""
        held_out = self.held_out_count(rows)
        searched = self.max_metric_calls if self.optimizer == "gepa" else held_out
        trials = self.exemplar_trials if self.exemplars else 0
        return searched + trials * held_out

    @model_validator(mode="after")
    def _weights_stay_frozen(self) -> "PromptTraining":
        # A value other than the default (a dumped config repeats the defaults: they pass).
        given = [
            name
            for name in self.weight_fields
            if getattr(self, name)
            != TrainingSettings.model_fields[name].get_default(call_default_factory=True)
        ]
        if given:
            raise ValueError(
                f"training.{given[0]} trains weights, but method 'prompt' keeps the model's "
                "weights frozen: remove "
                + ", ".join(f"training.{name}" for name in given)
                + " (or choose a method that trains, e.g. 'sft')"
            )
        if self.backend != "trl":
            raise ValueError("method 'prompt' runs in this process: remove training.backend")
        if self.reflection_model and self.reflection_chat_model:
            raise ValueError(
                "training.reflection_model (a local model) and training.reflection_chat_model "
                "(a langchain-core chat model) both name a reflection model: keep one of them"
            )
        if self.reflection_chat_model and ":" not in self.reflection_chat_model:
            raise ValueError(
                "training.reflection_chat_model must look like 'module:Class' (e.g. "
                f"'langchain_openai:ChatOpenAI'), got {self.reflection_chat_model!r}"
            )
        return self


METHODS: dict[str, type[TrainingSettings]] = {
    "sft": SFTTraining,
    "dpo": DPOTraining,
    "reward": RewardTraining,
    "kto": KTOTraining,
    "grpo": GRPOTraining,
    "rloo": RLOOTraining,
    "prompt": PromptTraining,
}


def _sft_when_omitted(value: Any) -> Any:
    """A mapping without `method` is an SFT section (the configs and most edits omit it)."""
    if isinstance(value, dict) and "method" not in value:
        return {**value, "method": "sft"}
    return value


TrainingConfig = Annotated[
    Annotated[SFTTraining, Tag("sft")]
    | Annotated[DPOTraining, Tag("dpo")]
    | Annotated[RewardTraining, Tag("reward")]
    | Annotated[KTOTraining, Tag("kto")]
    | Annotated[GRPOTraining, Tag("grpo")]
    | Annotated[RLOOTraining, Tag("rloo")]
    | Annotated[PromptTraining, Tag("prompt")],
    Field(discriminator="method"),
    BeforeValidator(_sft_when_omitted),
]
"""The training section: the model of the method named by `method` ("sft" when omitted)."""

TRAINING_DESCRIPTION = (
    "How to train: the method ('sft', 'dpo', 'reward', 'kto', 'grpo', 'rloo', or 'prompt' "
    "with weights frozen; 'sft' when omitted) and its "
    "schedule, batching and checkpoints. Each method takes only its own fields."
)

_ADAPTER: TypeAdapter[TrainingSettings] = TypeAdapter(TrainingConfig)


def parse_training_config(data: dict[str, Any]) -> TrainingSettings:
    """Validate a training section (a mapping) into the model of its method."""
    return _ADAPTER.validate_python(data)


def methods_for_kind(kind: str) -> list[str]:
    """The methods that learn from data of `kind`, in the table's order."""
    return [method for method, model in METHODS.items() if kind in model.data_kinds]


def for_method(section: dict[str, Any], method: Any) -> dict[str, Any]:
    """`section` (a dumped training section) without the fields `method` does not have.

    A config edit that switches the method (`{"training": {"method": "dpo"}}`) keeps the shared
    settings and drops the old method's own (SFT's `packing` has no meaning for DPO); keys the
    edit itself adds are merged afterwards and still validated. Unchanged for an unknown method.
    """
    model = METHODS.get(method) if isinstance(method, str) else None
    if model is None or section.get("method") == method:
        return section
    dropped = getattr(model, "weight_fields", ())  # a prompt run refuses the weight settings
    return {
        key: value
        for key, value in section.items()
        if key in model.model_fields and key not in dropped
    }
