"""Keeping a submitted config to the files it may read: data paths under the data roots.

A config is a request to read files on the server; without this, `{"data": {"train":
"/etc/passwd"}}` would be a way to read them. Relative paths are read from the first data root
that holds every one of them (else from the first root); symlinks and `..` are resolved before
the check, so a relative path cannot climb out of its root either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from api.path_strings import path_problem, text_problem, text_problems
from llmfinetune_agent.config import ConfigIssue, RunConfig, resolve_paths
from llmfinetune_agent.sections import local_paths
from llmfinetune_agent.settings import Settings

ROOTS_ENV = "FINETUNE_AGENT_DATA_ROOTS"


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
    _refuse_unfit_strings(config)
    roots = settings.data_roots
    candidates = [resolve_paths(config, root) for root in roots]
    chosen = next((c for c in candidates if _all_exist(c, settings)), candidates[0])
    check_paths(chosen, settings, tried=_tried(config, candidates, roots, settings))
    return chosen


def check_paths(
    config: RunConfig,
    settings: Settings,
    *,
    tried: dict[str, str] | None = None,
    under: str = "",
) -> None:
    """Raise `PathNotAllowed` if a data, knowledge or local model path is not allowed.

    `tried` maps a field given as a relative path to where it was looked for (the message).
    `under` is where the config's fields sit in the request: "patch" for a fork's patch,
    "edits" for a gate edit (issues at `patch.data.train`, not at `data.train`).
    """
    try:
        _check_paths(config, settings, tried or {})
    except PathNotAllowed as exc:
        if not under:
            raise
        issues = [ConfigIssue(f"{under}.{i.path}", i.message, i.hint) for i in exc.issues]
        raise PathNotAllowed(issues) from None


def _check_paths(config: RunConfig, settings: Settings, tried: dict[str, str]) -> None:
    _refuse_unfit_strings(config)
    roots_text = ", ".join(map(str, settings.data_roots))
    issues = []
    for field, value, roots in _local_paths(config, settings):
        path = Path(value)
        if not path.is_absolute():  # only an edit or a patch (confine_config anchors the rest)
            issues.append(_relative(field, value, settings.data_roots))
        elif not inside(path, roots):
            issues.append(
                ConfigIssue(
                    field,
                    f"path '{value}' is outside the data roots",
                    f"upload the file with POST /data, or use a path under {roots_text}",
                )
            )
        elif not path.exists():
            issues.append(_missing(field, value, tried.get(field)))
    if issues:
        raise PathNotAllowed(issues)


def _refuse_unfit_strings(config: RunConfig) -> None:
    """`PathNotAllowed` for a string no file (or database row) can hold: a NUL byte or a lone
    surrogate anywhere (model references included, local or hub ids), or an overlong path.
    The operating system would refuse to look one up, and PostgreSQL to store it."""
    values = config.model_dump(mode="json")
    issues = [
        ConfigIssue(".".join(map(str, where)), f"the value {problem}", "remove it")
        for where, problem in text_problems(values)
    ]
    issues += [
        ConfigIssue(where, f"the path {problem}", "use a shorter path")
        for where, value, _ in local_paths(values)
        if not text_problem(value) and (problem := path_problem(value))
    ]
    if issues:
        raise PathNotAllowed(issues)


def _missing(field: str, value: str, tried: str | None) -> ConfigIssue:
    if tried is None:
        return ConfigIssue(field, f"'{value}' does not exist", "check the path")
    return ConfigIssue(
        field,
        tried,
        f"relative paths are read from the data roots ({ROOTS_ENV}), not from the config "
        "file's folder: use a path relative to a data root, or an absolute path under one",
    )


def _relative(field: str, value: str, roots: list[Path]) -> ConfigIssue:
    """A relative path in an edit or a fork patch: where POST /runs would have looked for it.
    It is not anchored there (the run would read it from the worker's folder), so it is
    refused either way, with the absolute path to give instead when one exists."""
    places = [(root, (root / value).resolve()) for root in roots]
    found = next((p for root, p in places if p.exists() and inside(p, [root])), None)
    if found is not None:
        return ConfigIssue(
            field, f"'{value}' is a relative path", f"give its absolute path: '{found}'"
        )
    looked = " and ".join(f"'{p}' (data root {root})" for root, p in places)
    return ConfigIssue(
        field,
        f"'{value}' not found: looked for {looked}",
        "upload the file with POST /data and give the absolute path it returns (an edit's "
        "or a fork patch's paths are not read from the data roots)",
    )


def _tried(
    config: RunConfig, candidates: list[RunConfig], roots: list[Path], settings: Settings
) -> dict[str, str]:
    """For each relative path of `config`: the resolved path looked for under each root."""
    original = {field: value for field, value, _ in _local_paths(config, settings)}
    tried: dict[str, list[str]] = {}
    for root, candidate in zip(roots, candidates, strict=True):
        for field, value, _ in _local_paths(candidate, settings):
            if value != original.get(field):  # it was relative, anchored at this root
                tried.setdefault(field, []).append(f"'{value}' (data root {root})")
    return {
        field: f"'{original[field]}' not found: looked for " + " and ".join(places)
        for field, places in tried.items()
    }


def _all_exist(config: RunConfig, settings: Settings) -> bool:
    return all(Path(value).exists() for _, value, _ in _local_paths(config, settings))


def _local_paths(config: RunConfig, settings: Settings) -> Iterator[tuple[str, str, list[Path]]]:
    """Every local path the config names (the sections table's path fields), with the roots
    it may lie under: a model may also come from an earlier run or the model cache."""
    roots = list(settings.data_roots)
    runs = [*roots, settings.runs_dir, settings.models_cache_dir]
    for where, value, path_field in local_paths(config.model_dump(mode="json")):
        yield where, value, runs if path_field.from_runs else roots
