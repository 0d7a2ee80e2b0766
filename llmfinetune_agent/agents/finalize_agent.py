"""The finalize agent: the final model directory, its model card and config, registry rows.

It exports the run's artifact by its kind: an adapter is merged into its base when
`post_training.merge_lora` is set (else copied with its base named in its config), a full model
is copied, and so is a reward model (full or LoRA). The post_training node has already written
`final/` when it ran. Registry rows (the tuned model, and the released post-training
candidates with their lineage: `registration.py`) go to the service's own database (the
runtime context's store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from llmfinetune_agent.agents.node_io import emit, run_config
from llmfinetune_agent.artifacts import current_artifact
from llmfinetune_agent.context import RunContext, run_context
from llmfinetune_agent.registration import register_run_models
from llmfinetune_agent.state import RunState
from phases.evaluation.errors import EvaluationError

EXPORTABLE_KINDS = ("adapter", "model", "reward_model", "prompt")


def finalize(state: RunState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Graph node: export (merging LoRA when configured), document and register the model."""
    from phases.post_training.merge import export_final_model

    config, context, artifact = run_config(state), run_context(runtime), current_artifact(state)
    if artifact is None or artifact["kind"] not in EXPORTABLE_KINDS:
        kind = artifact["kind"] if artifact else "no"
        raise EvaluationError(
            f"finalize exports models, adapters, prompts and reward models; this run has {kind} "
            "artifact"
        )
    final_dir = Path(state["run_dir"]) / "final"
    if artifact["kind"] == "prompt":
        return {"final": _finalize_prompt(state, config, context, Path(artifact["path"]))}
    merge_lora = artifact["kind"] == "adapter" and config.post_training.merge_lora
    exported = state.get("post_training") and (final_dir / "config.json").exists()
    if not exported or not merge_lora:
        emit("agent", agent="finalize", message=f"writing the final model to {final_dir}")
        export_final_model(
            Path(artifact["path"]), final_dir, merge_lora=merge_lora, cache_dir=context.models_cache
        )
    (final_dir / "run_config.json").write_text(config.model_dump_json(indent=2))
    (final_dir / "README.md").write_text(model_card(state))
    registered = register_run_models(state, final_dir, context.store)
    return {"final": registered}


def _finalize_prompt(state: RunState, config: Any, context: RunContext, prompt: Path) -> dict:
    """A prompt run's final folder: the prompt file, its card and config; registered as a
    `prompt` (the file itself: no weights were changed)."""
    import shutil

    from models.prompt_artifact import PROMPT_FILE

    final_dir = Path(state["run_dir"]) / "final"
    final_dir.mkdir(parents=True, exist_ok=True)
    emit("agent", agent="finalize", message=f"writing the final prompt to {final_dir}")
    shutil.copyfile(prompt, final_dir / PROMPT_FILE)
    (final_dir / "run_config.json").write_text(config.model_dump_json(indent=2))
    (final_dir / "README.md").write_text(model_card(state))
    return register_run_models(state, final_dir / PROMPT_FILE, context.store)


def model_card(state: RunState) -> str:
    """A Markdown model card: base model, data hash, config, metrics, decisions."""
    config, evaluation = state["config"], state.get("evaluation") or {}
    base, tuned = evaluation.get("base") or {}, evaluation.get("tuned") or {}
    rows = [f"| {name} | {_fmt(base.get(name))} | {_fmt(value)} |" for name, value in tuned.items()]
    decisions = [
        f"- {d['time']} `{d['gate']}`: **{d['decision']}**"
        + (f" — {d['comment']}" if d.get("comment") else "")
        + (f" (patch `{json.dumps(d['patch'])}`)" if d.get("patch") else "")
        + (f", route {d['route']}" if d.get("route") else "")
        for d in state.get("decisions", [])
    ]
    return "\n".join(
        [
            *_front_matter(state),
            f"# {config['name']}",
            "",
            config.get("task") or "",
            "",
            f"- Base model: `{config['model']['name_or_path']}`",
            f"- Method: {_method_words(config['training'])}",
            f"- Data hash: `{state['data']['data_hash']}` "
            f"({state['data']['train_rows']} train / {state['data']['eval_rows']} eval examples)",
            f"- Run: `{state['run_id']}`",
            "",
            "## Metrics",
            "",
            "| metric | base | tuned |",
            "|---|---|---|",
            *rows,
            "",
            *_thresholds_section(evaluation),
            *_usage_section(state),
            "## Decisions",
            "",
            *(decisions or ["- none (no gate was enabled)"]),
            "",
            *_iterations_section(state),
            *_post_training_section(state),
            "## Config",
            "",
            "```json",
            json.dumps(config, indent=2),
            "```",
            "",
        ]
    )


def _method_words(training: dict[str, Any]) -> str:
    if training["method"] == "prompt":
        return "prompt (a system prompt and few-shot exemplars optimized; weights frozen)"
    return training["method"] + (" with LoRA" if training["lora"] else " (full fine-tuning)")


def _thresholds_section(evaluation: dict[str, Any]) -> list[str]:
    """The acceptance rule, the checks the tuned model was held to, and whether it met each."""
    checks, rule = evaluation.get("checks") or [], evaluation.get("acceptance")
    stated = [f"Acceptance rule: {rule}.", ""] if rule else []
    if not checks:
        return ["## Thresholds", "", *(stated or ["No thresholds were set.", ""])]
    signs = {"min": ">=", "max": "<=", "above_base": ">= base +", "below_base": "<= base -"}
    rows = [
        f"| {c['metric']} | {signs.get(c['rule'], c['rule'])} {c['bound']:g} "
        f"| {_fmt(c.get('required'))} | {_fmt(c.get('base'))} | {_fmt(c.get('tuned'))} "
        f"| {'pass' if c['passed'] else 'FAIL'} |"
        for c in checks
    ]
    verdict = "passed" if evaluation.get("passed") else "did NOT pass"
    return [
        "## Thresholds",
        "",
        *stated,
        f"The tuned model {verdict} its checks.",
        "",
        "| metric | rule | required | base | tuned | result |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]


def _usage_section(state: RunState) -> list[str]:
    """How to load this folder with transformers and generate (or, for a reward model, score),
    the way it was trained."""
    kind = (current_artifact(state) or {}).get("kind")
    if kind == "reward_model":
        return _reward_usage(state)
    if kind == "prompt":
        return _prompt_usage(state)
    chat = (state.get("data") or {}).get("kind") == "chat"
    example = next(iter((state.get("evaluation") or {}).get("examples") or []), {})
    prompt = (example.get("input") or "Your input here").rpartition("user: ")[2]
    if chat:
        encode = [
            f"messages = [{{'role': 'user', 'content': {prompt!r}}}]",
            "inputs = tokenizer.apply_chat_template(",
            "    messages, add_generation_prompt=True, return_dict=True, return_tensors='pt'",
            ")",
        ]
    else:  # prompt/completion data is trained on the raw prompt text, with no chat template
        encode = [f"inputs = tokenizer({prompt!r}, return_tensors='pt')"]
    return [
        "## Usage",
        "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f"path = {str(Path(state['run_dir']) / 'final')!r}  # the folder of this card",
        "tokenizer = AutoTokenizer.from_pretrained(path)",
        "model = AutoModelForCausalLM.from_pretrained(path)",
        *encode,
        "output = model.generate(**inputs, max_new_tokens=64, do_sample=False)",
        "print(tokenizer.decode(output[0][inputs['input_ids'].shape[1]:], "
        "skip_special_tokens=True))",
        "```",
        "",
    ]


def _reward_usage(state: RunState) -> list[str]:
    """How to score a response with this folder's reward model."""
    path = str(Path(state["run_dir"]) / "final")
    return [
        "## Usage",
        "",
        "```python",
        "from phases.training import score  # finetune-agent's scorer: builds the text as in training",
        "",
        f"print(score({path!r}, 'Your prompt', 'A response'))  # higher is better",
        "```",
        "",
    ]


def _prompt_usage(state: RunState) -> list[str]:
    """How to use a prompt artifact: with its registry id, or the file with the chat."""
    path = str(Path(state["run_dir"]) / "final" / "prompt.json")
    return [
        "## Usage",
        "",
        "The base model's weights are unchanged; `prompt.json` holds the system prompt and the",
        "exemplars put before every input. With its registry id (`finetune-agent models list`):",
        "",
        "```bash",
        'curl -X POST localhost:8000/models/MODEL_ID/generate -d \'{"prompt": "..."}\'',
        f"finetune-agent chat {path} --message '...'",
        "```",
        "",
    ]


def _iterations_section(state: RunState) -> list[str]:
    """The improvement loop's iteration table, when the debugger's fixes made more than one."""
    from llmfinetune_agent.improvement import all_iterations, iterations_table

    iterations = all_iterations(state)
    if len(iterations) < 2:
        return []
    return ["## Iterations", "", *iterations_table(iterations), ""]


def _front_matter(state: RunState) -> list[str]:
    """Hugging Face's card metadata (`base_model`, `base_model_relation`, `model-index`)."""
    from phases.post_training.card import front_matter

    config = state["config"]
    kind = (current_artifact(state) or {}).get("kind")
    adapter = kind == "adapter"
    relation = "adapter" if adapter and not config["post_training"]["merge_lora"] else "finetune"
    prompt = kind == "prompt"  # no weights changed: none of the Hub's relations fits
    front = front_matter(
        name=config["name"],
        base_model=config["model"]["name_or_path"],
        relation=None if prompt else relation,
        library="peft" if relation == "adapter" else "transformers",
        dataset=Path(state["data"]["eval_path"]).name,
        metrics=(state.get("evaluation") or {}).get("tuned") or {},
        tags=["prompt" if prompt else relation],
    )
    return [*front, ""]


def _post_training_section(state: RunState) -> list[str]:
    """The post-training candidates with their gate verdicts (when post-training ran)."""
    table = state.get("post_training") or {}
    rows = table.get("candidates") or []
    if not rows:
        return []
    lines = [
        "## Post-training",
        "",
        "| # | candidate | relation | bytes | bits/weight | tokens/s | KL | verdict | alias |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['index']} | {r['name']} | {r['relation']} | {r.get('bytes', '—')} "
            f"| {r.get('bits_per_weight', '—')} | {r.get('tokens_per_second', '—')} "
            f"| {r.get('kl', '—')} | {r['verdict']}: {r['reason']} | {r.get('alias', '')} |"
        )
    return [*lines, ""]


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "—"
