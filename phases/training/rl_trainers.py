"""Build the TRL trainer for learning from rewards or thumbs: GRPOTrainer, RLOOTrainer, KTOTrainer.

Imported only inside `train()`. GRPO and RLOO sample `num_generations` completions per prompt,
score them with the run's reward functions (wrapped by a `RewardRecorder`, whose
`RewardWatch` callback logs samples and guards the run) and make better-than-average
completions likelier. No PPO loop of our own: TRL removed PPO (TRL#7020); PPO-style RLHF here is
a trained reward model used as the reward of GRPO or RLOO.
"""

from pathlib import Path

from transformers import Trainer, TrainerCallback

from models.config import ModelConfig
from phases.training.callbacks import StepMonitor
from phases.training.config import KTOTraining, RLTraining
from phases.training.data import TrainingData, TrainingInputError
from phases.training.model_access import is_adapter, load_causal_lm
from phases.training.reward_watch import RewardRecorder, RewardWatch
from phases.training.trainers import datasets_and_tokenizer, lora_config, watched


def rl_args(config: RLTraining, base_args: dict) -> dict:
    """The GRPO/RLOO arguments: the shared ones (no eval: the evaluator judges the model after
    training, and no `max_length`: completions are capped by `max_completion_length`)."""
    if config.use_vllm:
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise TrainingInputError(
                "training.use_vllm is true, but vLLM is not installed (it needs a GPU): set it "
                "to false to generate with transformers."
            ) from None
    args = {k: v for k, v in base_args.items() if k != "max_length"}
    args.update(eval_strategy="no", per_device_eval_batch_size=config.num_generations)
    # The trainer builds its inputs after generation: counting them warns at every step.
    args["include_num_input_tokens_seen"] = "no"
    return {
        **args,
        "num_generations": config.num_generations,
        "max_completion_length": config.max_completion_length,
        "temperature": config.temperature,
        "beta": config.beta,
        "use_vllm": config.use_vllm,
        "reward_weights": [reward.weight for reward in config.rewards],
        "log_completions": False,  # RewardWatch logs them to the run instead
    }


def _build_online(
    trainer_name: str,
    config: RLTraining,
    *,
    model: ModelConfig | str,
    train_data: TrainingData,
    base_args: dict,
    work_dir: Path,
    callbacks: list[TrainerCallback],
    monitor: StepMonitor,
    cache_dir: Path | None,
    reward_functions: list,
) -> Trainer:
    import trl

    policy, tokenizer = load_causal_lm(model, cache_dir=cache_dir, keep_adapter=bool(config.lora))
    recorder = RewardRecorder(
        reward_functions, [r.weight for r in config.rewards], config.num_generations
    )
    watch = RewardWatch(
        recorder,
        guards=config.guards,
        max_completion_length=config.max_completion_length,
        log_every=config.log_completions_steps,
        output_dir=work_dir,
    )
    config_cls = getattr(trl, trainer_name.replace("Trainer", "Config"))
    trainer = watched(getattr(trl, trainer_name), monitor)(
        model=policy,
        reward_funcs=recorder.functions,
        args=config_cls(**rl_args(config, base_args)),
        **datasets_and_tokenizer(train_data, None, work_dir, tokenizer),
        peft_config=None if is_adapter(policy) else lora_config(config, "CAUSAL_LM"),
        callbacks=_before_progress(callbacks, watch),
    )
    trainer.reward_watch = watch
    return trainer


def _before_progress(callbacks: list[TrainerCallback], watch: RewardWatch) -> list:
    """`callbacks` with `watch` just before the progress reporter, which then reports its
    numbers with the step (callbacks run in list order)."""
    from phases.training.callbacks import ProgressReporter

    at = next((i for i, c in enumerate(callbacks) if isinstance(c, ProgressReporter)), 0)
    if at < len(callbacks) and isinstance(callbacks[at], ProgressReporter):
        callbacks[at].extra = watch.progress_extra
    return [*callbacks[:at], watch, *callbacks[at:]]


def build_grpo(config: RLTraining, *, eval_data: TrainingData | None, **kwargs) -> Trainer:
    """A GRPOTrainer (group-relative advantages)."""
    return _build_online("GRPOTrainer", config, **kwargs)


def build_rloo(config: RLTraining, *, eval_data: TrainingData | None, **kwargs) -> Trainer:
    """An RLOOTrainer (leave-one-out baseline)."""
    return _build_online("RLOOTrainer", config, **kwargs)


def build_kto(
    config: KTOTraining,
    *,
    model: ModelConfig | str,
    train_data: TrainingData,
    eval_data: TrainingData | None,
    base_args: dict,
    work_dir: Path,
    callbacks: list[TrainerCallback],
    monitor: StepMonitor,
    cache_dir: Path | None,
) -> Trainer:
    """A KTOTrainer on prompt/completion/label rows. The reference is a frozen copy of the
    initial model, or, with LoRA, the base with the adapter switched off (as for DPO)."""
    from trl import KTOConfig, KTOTrainer

    policy, tokenizer = load_causal_lm(model, cache_dir=cache_dir, keep_adapter=bool(config.lora))
    reference = None
    if config.lora is None:
        reference, _ = load_causal_lm(model, cache_dir=cache_dir, keep_adapter=False)
        reference.eval().requires_grad_(False)
    args = KTOConfig(
        **base_args,
        beta=config.beta,
        desirable_weight=config.desirable_weight,
        undesirable_weight=config.undesirable_weight,
    )
    return watched(KTOTrainer, monitor)(
        model=policy,
        ref_model=reference,
        args=args,
        **datasets_and_tokenizer(train_data, eval_data, work_dir, tokenizer),
        peft_config=None if is_adapter(policy) else lora_config(config, "CAUSAL_LM"),
        callbacks=callbacks,
    )


RL_BUILDERS = {"grpo": build_grpo, "rloo": build_rloo, "kto": build_kto}
