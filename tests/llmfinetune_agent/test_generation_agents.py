"""The data generator and knowledge retrieval agents in a real run, up to the data gate.

The format-following generator is the built-in tiny Llama briefly trained on generation prompts
of a structured task (tests/phases/synthesis/review_generator.py), once per session.
"""

import dataclasses
import json
import sys
from pathlib import Path

import pytest

from llmfinetune_agent.chat_model import (
    ChatModelError,
    LocalChatModel,
    generator_chat_model,
    load_chat_model,
)
from llmfinetune_agent.config import RunConfig
from llmfinetune_agent.execution import open_service
from models.config import ModelConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "phases" / "synthesis"))
from review_generator import TASK, seed_records, train_review_generator  # noqa: E402


@pytest.fixture(scope="session")
def review_generator_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_review_generator(
        tiny_model_dir, tmp_path_factory.getbasetemp() / "review-generator"
    )


def _config(tmp_path: Path, model_dir: Path, **sections) -> RunConfig:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in seed_records(10)))
    return RunConfig.model_validate(
        {
            "name": "generation",
            "task": TASK,
            "model": {"name_or_path": str(model_dir)},
            "data": {"train": str(seeds), "eval_fraction": 0.2},
            "training": {"method": "sft", "epochs": 1},
            **sections,
        }
    )


def _run_to_data_gate(config: RunConfig) -> tuple[dict, dict]:
    """Start a run, approve the plan, and return the approve_data interrupt and the state."""
    with open_service() as service:
        run = service.create_run(config)
        service.start(run.id)
        [plan] = service.pending_interrupts(run.id)
        assert plan["kind"] == "approve_plan"
        service.resume(run.id, decision={"decision": "approve"})
        pending = service.pending_interrupts(run.id)
        assert [p["kind"] for p in pending] == ["approve_data"], service.require(run.id).error
        return pending[0], service.state_values(run.id)


def _rows(path: str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_format_following_generator_fills_the_request(
    tmp_path: Path, tiny_model_dir: Path, review_generator_dir: Path
) -> None:
    generation = {
        "enabled": True,
        "num_examples": 12,
        "generator": str(review_generator_dir),
        "max_new_tokens": 100,
        "batch_size": 16,
        "exemplars_per_prompt": 2,
        "max_attempts_factor": 5,
    }
    interrupt, state = _run_to_data_gate(
        _config(tmp_path, tiny_model_dir, data_generation=generation)
    )
    data, report = state["data"], interrupt["details"]["generation"]
    assert report["kept"] >= 12 and report["generated"] >= report["kept"]
    assert sum(report["dropped"].values()) == report["generated"] - report["kept"]
    assert f"kept {report['kept']}" in interrupt["message"]
    assert interrupt["details"]["train_rows"] == data["seed_train_rows"] + report["kept"]
    synthetic = _rows(report["synthetic_path"])
    assert len(synthetic) == report["kept"]
    assert all(
        set(json.loads(r["messages"][-1]["content"])) == {"sentiment", "area"} for r in synthetic
    )
    train, evaluation = _rows(data["train_path"]), _rows(data["eval_path"])
    keys = [json.dumps(r, sort_keys=True) for r in train]
    assert len(keys) == len(set(keys)), "exact duplicates in the merged training set"
    eval_inputs = {r["messages"][0]["content"] for r in evaluation}
    assert not eval_inputs & {r["messages"][0]["content"] for r in synthetic}
    assert data["train_path"].endswith("train_with_synthetic.jsonl")
    assert data["data_hash"] != data["seed_data_hash"]


def test_tiny_builtin_generator_is_reported_as_unusable(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    generation = {
        "enabled": True,
        "num_examples": 20,
        "batch_size": 8,
        "give_up_after": 8,
        "max_new_tokens": 40,
    }
    interrupt, state = _run_to_data_gate(
        _config(tmp_path, tiny_model_dir, data_generation=generation)
    )
    assert "Generation yielded no usable examples" in interrupt["message"]
    report = interrupt["details"]["generation"]
    assert (
        report["kept"] == 0
        and report["generated"] == 8
        and report["status"] == "no_usable_examples"
    )
    assert state["data"]["train_path"].endswith("data/train.jsonl")  # the seeds, unchanged
    assert interrupt["details"]["train_rows"] == 8
    saved = json.loads(Path(report["report_path"]).read_text())
    assert saved["usable"] is False and saved["dropped_examples"]


def test_knowledge_reports_bad_sources_by_name_and_keeps_ids_in_state(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "reviews.md").write_text("Battery complaints are the most common topic in reviews.")
    (docs / "blob.txt").write_bytes(b"\x00\x01\x02binary\x00")
    (docs / "empty.txt").write_text("")
    (docs / "latin1.txt").write_bytes("r\xe9sum\xe9 na\xefve".encode("latin-1"))
    knowledge = {
        "enabled": True,
        "sources": [str(docs)],
        "embedding_weight": 0.0,
        "top_k": 1,
    }
    interrupt, state = _run_to_data_gate(_config(tmp_path, tiny_model_dir, knowledge=knowledge))
    retrieval = interrupt["details"]["retrieval"]
    unreadable = "\n".join(retrieval["unreadable_sources"])
    for name in ("blob.txt", "empty.txt", "latin1.txt"):
        assert name in unreadable
    assert retrieval["documents"] == 1 and retrieval["passage_ids"]
    passages = _rows(retrieval["passages_path"])
    assert {p["id"] for p in passages} == set(retrieval["passage_ids"])
    assert all(Path(p["source"]).name == "reviews.md" for p in passages)
    assert "Battery complaints" not in json.dumps(state["data"])  # passages stay in the run dir
    # the gate's message says so too, not only its details (the dashboard shows the message)
    assert "Knowledge retrieval skipped 3 unreadable source(s)" in interrupt["message"]


def test_knowledge_with_nothing_readable_says_so_at_the_data_gate(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.txt").write_text("")
    knowledge = {"enabled": True, "sources": [str(docs)], "embedding_weight": 0.0}
    interrupt, _ = _run_to_data_gate(_config(tmp_path, tiny_model_dir, knowledge=knowledge))
    assert interrupt["details"]["retrieval"]["status"] == "empty"
    assert (
        f"Knowledge retrieval found no passages in knowledge.sources (skipped: "
        f"{docs / 'empty.txt'}: the file is empty): no passage from your documents is used."
    ) in interrupt["message"]


def test_a_local_generator_is_a_checked_and_confined_path(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    from api.confinement import PathNotAllowed, confine_config
    from llmfinetune_agent.settings import Settings

    missing = tmp_path / "generator"  # a typo: found before the plan gate, not after it
    generation = {"enabled": True, "generator": str(missing)}
    with open_service() as service:
        run = service.create_run(_config(tmp_path, tiny_model_dir, data_generation=generation))
        service.start(run.id)
        record = service.require(run.id)
    assert (record.status, record.pending_interrupt) == ("failed", None)
    assert (
        record.error
        == f"bad input: data_generation.generator: {missing}: no such file or directory"
    )
    # over the API a local generator is a model folder like model.name_or_path: under the roots
    settings = Settings.from_env()
    roots = dataclasses.replace(settings, data_roots=[tmp_path])
    outside = {"enabled": True, "generator": str(tiny_model_dir)}  # a real model, elsewhere
    with pytest.raises(PathNotAllowed, match="data_generation.generator: path .* is outside"):
        confine_config(_config(tmp_path, tmp_path, data_generation=outside), roots)


def test_a_missing_knowledge_source_fails_the_run_as_bad_input_naming_it(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "reviews.md").write_text("Battery complaints are the most common topic in reviews.")
    missing = tmp_path / "doc"  # a typo
    knowledge = {"enabled": True, "sources": [str(docs), str(missing)], "embedding_weight": 0.0}
    with open_service() as service:
        run = service.create_run(_config(tmp_path, tiny_model_dir, knowledge=knowledge))
        service.start(run.id)  # fails at the data check: nobody is asked to approve a plan
        record = service.require(run.id)
    assert (record.status, record.pending_interrupt) == ("failed", None)
    assert record.error == (
        f"bad input: knowledge.sources[1]: {missing}: no such file or folder. Fix the path (a "
        "relative one is read from the config file's folder), or remove it from "
        "knowledge.sources."
    )


def test_local_chat_model_is_a_langchain_chat_model(tiny_model_dir: Path) -> None:
    chat = LocalChatModel(
        local_model=ModelConfig(name_or_path=str(tiny_model_dir)), max_new_tokens=8
    )
    prompt = chat.render_prompt(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    )
    assert prompt == "<|system|>\nS</s>\n<|user|>\nU</s>\n<|assistant|>\n"
    reply = chat.invoke("Hello")
    assert reply.type == "ai" and isinstance(reply.content, str)
    replies = chat.batch([[("user", "one")], [("user", "two")], "three"], temperature=1.5)
    assert len(replies) == 3 and all(r.type == "ai" for r in replies)


def test_configured_chat_models_are_built_or_explained(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    fake = "langchain_core.language_models.fake_chat_models:FakeListChatModel"
    config = _config(
        tmp_path,
        tiny_model_dir,
        data_generation={
            "enabled": True,
            "chat_model": fake,
            "chat_model_kwargs": {"responses": ["hi"]},
        },
    )
    assert generator_chat_model(config).invoke("x").content == "hi"
    local = generator_chat_model(
        _config(tmp_path, tiny_model_dir, data_generation={"enabled": True})
    )
    assert isinstance(local, LocalChatModel) and local.local_model.name_or_path == str(
        tiny_model_dir
    )
    with pytest.raises(ChatModelError, match="pip install langchain-no-such-package"):
        load_chat_model("langchain_no_such_package:ChatX", {})
    with pytest.raises(ChatModelError, match="not a langchain-core chat model"):
        load_chat_model("langchain_core.messages:AIMessage", {})


def test_a_chat_model_from_outside_langchain_needs_the_operators_allow_list(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "antigravity", raising=False)  # imported = a browser opens
    with pytest.raises(ChatModelError) as caught:
        load_chat_model("antigravity:Chat", {}, field="data_generation.chat_model")
    assert str(caught.value) == (
        "data_generation.chat_model: module 'antigravity' is neither a LangChain package "
        "(langchain_*) nor allow-listed; the operator allows others with "
        "FINETUNE_AGENT_CHAT_MODEL_MODULES=module1,module2"
    )
    assert "antigravity" not in sys.modules
    monkeypatch.setenv("FINETUNE_AGENT_CHAT_MODEL_MODULES", "json")
    with pytest.raises(ChatModelError, match="not a langchain-core chat model"):
        load_chat_model("json:JSONDecoder", {})
