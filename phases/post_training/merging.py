"""Model merging: LoRA adapters of one base through PEFT, full models through mergekit.

`merge_models(spec, sources, output_dir)` writes one full model (adapters are combined with
`add_weighted_adapter`, then folded into their base) and returns the exact parameters it used.
PEFT combines DoRA and rsLoRA adapters wrongly (peft#3761), so those are refused. The output
never replaces anything but an earlier merge (`merge_output`), and a merge whose weights are
not finite (weights that cancel out) is refused rather than written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from phases.post_training.errors import PostTrainingInputError
from phases.post_training.merge_config import ADAPTER_METHODS, MODEL_METHODS, MergeSpec
from phases.post_training.merge_output import check_output, claim, finish, staging_folder
from phases.post_training.quantize import copy_tokenizer

DEFAULT_DENSITY = 0.5


def is_adapter(path: Path) -> bool:
    """A PEFT adapter folder rather than a full model."""
    return (Path(path) / "adapter_config.json").is_file()


def source_kinds(sources: list[Path]) -> str:
    """'adapter' or 'model' for a list of sources of one kind; mixed or missing is an error."""
    missing = [str(s) for s in sources if not Path(s).exists()]
    if missing:
        raise PostTrainingInputError(f"merge source(s) not found: {', '.join(missing)}")
    for source in sources:
        _check_readable(Path(source))
    kinds = {"adapter" if is_adapter(s) else "model" for s in sources}
    if len(kinds) > 1:
        raise PostTrainingInputError(
            "merge sources mix LoRA adapters and full models; merge adapters of one base, or "
            "full models (fold the adapters into their base first)"
        )
    return kinds.pop()


def _check_readable(source: Path) -> None:
    """A LoRA adapter folder or a model folder with its config; anything else is named."""
    if not source.is_dir():
        raise PostTrainingInputError(
            f"merge source {source} is a file; merges take safetensors model folders or LoRA "
            "adapter folders (a GGUF file cannot be merged)"
        )
    if not is_adapter(source) and not (source / "config.json").is_file():
        raise PostTrainingInputError(
            f"merge source {source} holds neither a LoRA adapter (adapter_config.json) nor a "
            "model (config.json); merges take safetensors models or LoRA adapters"
        )


def check_adapters(sources: list[Path]) -> dict[str, Any]:
    """The adapters' shared config; an error names the adapter that is DoRA or rsLoRA, or whose
    base differs."""
    configs = [json.loads((Path(s) / "adapter_config.json").read_text()) for s in sources]
    for source, config in zip(sources, configs, strict=True):
        for flag, name in (("use_dora", "DoRA"), ("use_rslora", "rsLoRA")):
            if config.get(flag):
                raise PostTrainingInputError(
                    f"{source} is a {name} adapter: PEFT's weighted merge combines {name} adapters "
                    "wrongly (peft#3761); merge plain LoRA adapters, or fold it into its base "
                    "and merge full models"
                )
    bases = {c.get("base_model_name_or_path") for c in configs}
    if len(bases) > 1:
        raise PostTrainingInputError(
            f"the adapters have different bases ({', '.join(sorted(map(str, bases)))}); "
            "LoRA adapters merge only over one base"
        )
    return configs[0]


def merge_models(
    spec: MergeSpec,
    sources: list[Path],
    output_dir: Path,
    *,
    weights: list[float] | None = None,
    density: float | None = None,
    base: Path | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Merge `sources` by `spec` (weights/density override the spec's) into the full model at
    `output_dir`; return the parameters used."""
    sources = [Path(s) for s in sources]
    weights = list(weights or spec.weights or [1.0 / len(sources)] * len(sources))
    if spec.method == "cat" and not spec.weights and weights == [1.0 / len(sources)] * len(sources):
        weights = [1.0] * len(sources)  # cat is exact when every adapter keeps its full scale
    density = density if density is not None else spec.density
    kind = source_kinds(sources)
    inputs = {f"merge source {s}": s for s in sources} | ({"base": Path(base)} if base else {})
    check_output(Path(output_dir), inputs)
    staging = claim(staging_folder(Path(output_dir)))
    try:
        if kind == "adapter":
            parameters = _merge_adapters(spec, sources, staging, weights, density, cache_dir)
        else:
            parameters = _merge_full(spec, sources, staging, weights, density, base)
        check_finite(staging)
        finish(staging, Path(output_dir))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)  # ours: claimed above
        raise
    return parameters


def check_finite(model_dir: Path) -> None:
    """Refuse a merged model with NaN or infinite weights (e.g. linear weights summing to 0,
    which mergekit divides by)."""
    import torch
    from safetensors import safe_open

    for file in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as tensors:
            for name in tensors.keys():  # noqa: SIM118 - safe_open is not a dict
                if not torch.isfinite(tensors.get_tensor(name)).all():
                    raise PostTrainingInputError(
                        f"the merged weights are not finite ({name} holds NaN or infinity): "
                        "the merge weights cancel out or overflow; change weights (or density)"
                    )


# --- adapters ---------------------------------------------------------------------------


def load_adapters(sources: list[Path], cache_dir: Path | None = None) -> Any:
    """A PeftModel over the adapters' base with every source loaded as `source0`, `source1`, ..."""
    from models.loading import load_model

    check_adapters(sources)
    model = load_model(str(sources[0]), cache_dir=cache_dir, for_training=False)
    model.load_adapter(str(sources[0]), adapter_name="source0")
    model.set_adapter("source0")
    model.delete_adapter("default")
    for i, source in enumerate(sources[1:], start=1):
        model.load_adapter(str(source), adapter_name=f"source{i}")
    return model


def add_merged_adapter(
    model: Any, method: str, count: int, weights: list[float], density: float | None, name: str
) -> None:
    """`add_weighted_adapter` of the loaded sources under `name`, made the active adapter."""
    if method not in ADAPTER_METHODS:
        raise PostTrainingInputError(
            f"LoRA adapters merge with {', '.join(ADAPTER_METHODS)}; {method} is for full models"
        )
    options: dict[str, Any] = {}
    if method in ("ties_svd", "dare_ties_svd"):
        options["density"] = density if density is not None else DEFAULT_DENSITY
    try:
        model.add_weighted_adapter(
            adapters=[f"source{i}" for i in range(count)],
            weights=list(weights),
            adapter_name=name,
            combination_type=method,
            **options,
        )
    except ValueError as exc:  # e.g. linear over adapters of different ranks
        raise PostTrainingInputError(
            f"PEFT cannot merge these adapters with {method}: {exc}"
        ) from None
    model.set_adapter(name)


def _merge_adapters(
    spec: MergeSpec,
    sources: list[Path],
    output_dir: Path,
    weights: list[float],
    density: float | None,
    cache_dir: Path | None,
) -> dict[str, Any]:
    model = load_adapters(sources, cache_dir)
    add_merged_adapter(model, spec.method, len(sources), weights, density, "merged")
    merged = model.merge_and_unload(adapter_names=["merged"])
    merged.save_pretrained(output_dir, safe_serialization=True)
    copy_tokenizer(sources[0], output_dir)
    if not (output_dir / "tokenizer.json").exists():
        from models.loading import load_tokenizer

        load_tokenizer(str(sources[0]), cache_dir=cache_dir).save_pretrained(output_dir)
    used = {"library": "peft", "method": spec.method, "weights": weights}
    if spec.method in ("ties_svd", "dare_ties_svd"):
        used["density"] = density if density is not None else DEFAULT_DENSITY
    return used


# --- full models (mergekit) ---------------------------------------------------------------


def mergekit_config(
    spec: MergeSpec,
    sources: list[Path],
    weights: list[float],
    density: float | None,
    base: Path | None,
) -> dict[str, Any]:
    """The mergekit YAML (as a dict) for this merge."""
    if spec.method not in MODEL_METHODS:
        raise PostTrainingInputError(
            f"full models merge with {', '.join(MODEL_METHODS)}; {spec.method} is for LoRA adapters"
        )
    layers = _layer_count(sources[0])
    if spec.method == "slerp":
        ranges = [{"model": str(s), "layer_range": [0, layers]} for s in sources]
        return {
            "merge_method": "slerp",
            "base_model": str(sources[0]),
            "slices": [{"sources": ranges}],
            "parameters": {"t": spec.t},
            "dtype": "float32",
        }
    if spec.method == "passthrough":
        slices = [
            {"sources": [{"model": str(sources[s.source]), "layer_range": list(s.layers)}]}
            for s in spec.slices
        ]
        return {"merge_method": "passthrough", "slices": slices, "dtype": "float32"}
    models = []
    for source, weight in zip(sources, weights, strict=True):
        parameters: dict[str, Any] = {}
        if spec.method != "model_stock":
            parameters["weight"] = weight
        if spec.method in ("ties", "dare_ties", "della"):
            parameters["density"] = density if density is not None else DEFAULT_DENSITY
        if spec.method == "della":
            parameters["epsilon"] = 0.1 * parameters["density"]
        models.append({"model": str(source), "parameters": parameters})
    config: dict[str, Any] = {"merge_method": spec.method, "models": models, "dtype": "float32"}
    if spec.method in ("ties", "dare_ties", "della", "model_stock"):
        if base is None:
            raise PostTrainingInputError(
                f"{spec.method} needs the sources' common base model: set merge.base"
            )
        config["base_model"] = str(base)
    return config


def _layer_count(model_dir: Path) -> int:
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return int(config["num_hidden_layers"])


def _merge_full(
    spec: MergeSpec,
    sources: list[Path],
    output_dir: Path,
    weights: list[float],
    density: float | None,
    base: Path | None,
) -> dict[str, Any]:
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    config = mergekit_config(spec, sources, weights, density, base)
    try:
        parsed = MergeConfiguration.model_validate(config)
        options = MergeOptions(copy_tokenizer=True, lazy_unpickle=False, low_cpu_memory=False)
        run_merge(parsed, str(output_dir), options=options)
    except (ValueError, RuntimeError, KeyError) as exc:  # mergekit's own checks
        raise PostTrainingInputError(f"mergekit could not merge these models: {exc}") from None
    copy_tokenizer(sources[0], output_dir)
    return {"library": "mergekit", "method": spec.method, "mergekit_config": config}
