"""Keeping a submitted config to the files it may read: data paths under the data roots.

A config is a request to read files on the server; without this, `{"data": {"train":
"/etc/passwd"}}` would be a way to read them. Relative paths are anchored at the first data
root; symlinks are resolved before the check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from llmfinetune_agent.config import ConfigIssue, RunConfig, resolve_paths
from llmfinetune_agent.settings import Settings


class PathNotAllowed(ValueError):
    """Paths of a config point outside the data roots (or at nothing)."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(map(str, issues)))


def inside(path: Path, roots: list[Path]) -> bool:
    """True if `path` (resolved, symlinks followed) lies under one of `roots`."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(root.resolve()) for root in roots)


def confine_config(config: RunConfig, settings: Settings) -> RunConfig:
    """The config with absolute paths, or `PathNotAllowed` naming each offending field."""
    resolved = resolve_paths(config, settings.data_roots[0])
    check_paths(resolved, settings)
    return resolved


def check_paths(config: RunConfig, settings: Settings) -> None:
    """Raise `PathNotAllowed` if a data, knowledge or local model path is not allowed."""
    roots_text = ", ".join(map(str, settings.data_roots))
    issues = []
    for field, value, roots in _local_paths(config, settings):
        path = Path(value)
        if not path.is_absolute() or not inside(path, roots):
            issues.append(
                ConfigIssue(
                    field,
                    f"path '{value}' is outside the data roots",
                    f"upload the file with POST /data, or use a path under {roots_text}",
                )
            )
        elif not path.exists():
            issues.append(ConfigIssue(field, f"'{value}' does not exist", "check the path"))
    if issues:
        raise PathNotAllowed(issues)


def _local_paths(config: RunConfig, settings: Settings) -> Iterator[tuple[str, str, list[Path]]]:
    roots = list(settings.data_roots)
    yield "data.train", config.data.train, roots
    if config.data.eval is not None:
        yield "data.eval", config.data.eval, roots
    for i, source in enumerate(config.knowledge.sources):
        yield f"knowledge.sources.{i}", source, roots
    name = config.model.name_or_path
    if name.startswith((".", "/")) or name.endswith(".gguf"):
        # A model may also come from an earlier run or the model cache.
        yield "model.name_or_path", name, [*roots, settings.runs_dir, settings.models_cache_dir]
