"""Merging LoRA adapters trained on two different tasks over one base: the merged model is
scored on both tasks beside each parent; the CMA-ES search stays within its budget and lists
every trial's score; DoRA and rsLoRA adapters are refused with the reason.

The two trained adapters (real gradient steps on the tiny Llama) make the first two tests slow
(about a minute together on 2 cores)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phases.evaluation.config import EvaluationConfig
from phases.evaluation.eval_data import load_eval_examples
from phases.post_training.candidate_loading import load_for_generation
from phases.post_training.errors import PostTrainingInputError
from phases.post_training.merge_config import MergeSpec
from phases.post_training.merge_search import held_out_score, merge_and_gate
from phases.post_training.merging import merge_models
from tests.phases.post_training.two_tasks import train_adapter, write_task

EVAL = EvaluationConfig(metrics=["exact_match"], max_new_tokens=6)


@pytest.fixture(scope="module")
def adapters(sharp_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("adapters")
    return {
        task: train_adapter(sharp_model_dir, task, out / task) for task in ("capitals", "opposites")
    }


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> dict[str, list]:
    out = tmp_path_factory.mktemp("tasks")
    return {
        t: load_eval_examples(write_task(t, out / f"{t}.jsonl")) for t in ("capitals", "opposites")
    }


def _scores(path: Path, tasks: dict[str, list]) -> dict[str, float]:
    """Per task: the negated mean token loss of its answers (higher is better)."""
    model, tokenizer = load_for_generation(path)
    return {
        task: held_out_score(model, tokenizer, examples, EVAL, "loss")
        for task, examples in tasks.items()
    }


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cat", "ties_svd"])
def test_the_merge_keeps_both_tasks(method, adapters, tasks, sharp_model_dir, tmp_path) -> None:
    spec = MergeSpec(
        method=method,
        sources=["capitals", "opposites"],
        density=0.8 if method == "ties_svd" else None,
    )
    parameters = merge_models(
        spec, [adapters["capitals"], adapters["opposites"]], tmp_path / "merged"
    )
    assert (
        parameters["method"] == method
        and not (tmp_path / "merged" / "adapter_config.json").exists()
    )
    merged = _scores(tmp_path / "merged", tasks)
    capitals, opposites = (
        _scores(adapters["capitals"], tasks),
        _scores(adapters["opposites"], tasks),
    )
    base = _scores(sharp_model_dir, tasks)
    # each parent learned its own task only
    assert capitals["capitals"] > -0.1 and opposites["opposites"] > -0.1
    assert capitals["opposites"] < -2 and opposites["capitals"] < -2
    # the merge scores on both tasks, far above the parent that never learned the task and the
    # base; both tasks share every layer of a 2-layer model, so some interference remains:
    # cat (the exact sum of both adapters) keeps less of "opposites" than ties_svd, which
    # stays nearer each specialist than the other parent on both tasks
    for task, own, other in (("capitals", capitals, opposites), ("opposites", opposites, capitals)):
        assert merged[task] > other[task] + 1.5, (task, merged, own, other)
        assert merged[task] > base[task] + 3
        if method == "ties_svd":
            assert own[task] - merged[task] < merged[task] - other[task], (task, merged, own, other)


@pytest.mark.slow
def test_the_evolutionary_search_stays_within_its_budget(adapters, tasks, tmp_path) -> None:
    held_out = tmp_path / "held_out.jsonl"
    rows = [
        json.loads(line)
        for t in ("capitals", "opposites")
        for line in write_task(t, tmp_path / f"{t}.jsonl").read_text().splitlines()
    ]
    held_out.write_text("".join(json.dumps(r) + "\n" for r in rows[::2]))  # a share of each task
    spec = MergeSpec(
        method="ties_svd",
        sources=["capitals", "opposites"],
        held_out=str(held_out),
        score="loss",
        evolve={"enabled": True, "budget": 7, "seed": 3},
    )
    row = merge_and_gate(
        spec,
        [("capitals", adapters["capitals"]), ("opposites", adapters["opposites"])],
        output_dir=tmp_path / "merge",
        evaluation=EVAL,
        index=1,
    )
    search = row["search"]
    assert search["method"] == "cma-es" and search["evaluations"] == len(search["trials"]) == 7
    for trial in search["trials"]:
        assert len(trial["weights"]) == 2 and 0 < trial["density"] <= 1 and trial["score"] < 0
    best = search["trials"][search["best"]]
    assert best["score"] == max(t["score"] for t in search["trials"])
    assert row["parameters"]["weights"] == best["weights"]
    # the chosen merge, made again from the best weights, scores what its trial scored
    assert row["held_out_score"] == pytest.approx(best["score"], abs=1e-3)
    # on a held-out split of both tasks the merge beats each single-task parent
    assert set(row["parent_scores"]) == {"capitals", "opposites"}
    assert row["verdict"] == "pass", row["reason"]
    assert row["held_out_score"] > max(row["parent_scores"].values())


@pytest.fixture(scope="module")
def untrained(sharp_model_dir: Path, tmp_path_factory) -> dict[str, Path]:
    """Plain, DoRA and rsLoRA adapters of the tiny Llama, as PEFT saves them (not trained)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    out = tmp_path_factory.mktemp("untrained")
    made = {}
    for name, options in (
        ("plain", {}),
        ("DoRA", {"use_dora": True}),
        ("rsLoRA", {"use_rslora": True}),
    ):
        model = AutoModelForCausalLM.from_pretrained(sharp_model_dir)
        get_peft_model(
            model, LoraConfig(r=4, target_modules="all-linear", **options)
        ).save_pretrained(out / name)
        made[name] = out / name
    return made


@pytest.mark.parametrize("name", ["DoRA", "rsLoRA"])
def test_dora_and_rslora_adapters_are_refused(name, untrained, tmp_path) -> None:
    spec = MergeSpec(method="cat", sources=["a", "b"])
    with pytest.raises(PostTrainingInputError, match=f"{name} adapter.*peft#3761"):
        merge_models(spec, [untrained[name], untrained["plain"]], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_adapters_and_full_models_do_not_mix(untrained, sharp_model_dir, tmp_path) -> None:
    spec = MergeSpec(method="linear", sources=["a", "b"])
    with pytest.raises(PostTrainingInputError, match="mix LoRA adapters and full models"):
        merge_models(spec, [untrained["plain"], sharp_model_dir], tmp_path / "out")
    with pytest.raises(PostTrainingInputError, match="not found"):
        merge_models(spec, [untrained["plain"], tmp_path / "nowhere"], tmp_path / "out")
    with pytest.raises(PostTrainingInputError, match="ties_svd.*is for LoRA adapters"):
        merge_models(
            MergeSpec(method="ties_svd", sources=["a", "b"]),
            [sharp_model_dir, sharp_model_dir],
            tmp_path / "out",
        )
