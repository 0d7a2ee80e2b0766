"""Where a merge writes its model, without ever deleting what it did not write.

A merge is made in `<output>.partial` and renamed to `<output>` once complete, so a crash never
leaves half a model under the real name. A folder is replaced only when this tool wrote it: it
holds the marker file `.finetune-agent-merge`, which lists the files of the merge, and nothing
else (the model card and exact config written beside it aside). An output that is a file, is a
merge input or holds one, lies inside a source, or is a folder holding anything else is refused
before any work starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from phases.post_training.card import CARD_FILE, CONFIG_FILE
from phases.post_training.errors import PostTrainingInputError

MARKER = ".finetune-agent-merge"
WRITTEN_BESIDE = {MARKER, CARD_FILE, CONFIG_FILE}


def staging_folder(output: Path) -> Path:
    """The folder a merge is made in before it takes `output`'s place."""
    output = Path(output)
    return output.with_name(output.name + ".partial")


def check_output(output: Path, inputs: dict[str, Path], field: str = "output") -> None:
    """Refuse an `output` that would destroy or alter data: a file, one of `inputs` (label ->
    path: sources, base, held-out file, config) or a folder holding one, a folder inside a
    source, or a folder holding files this tool did not write."""
    output = Path(output)
    where = output.resolve()
    for label, path in inputs.items():
        path = Path(path).resolve()
        named = label if str(path) in label else f"{label} ({path})"
        if path == where or where in path.parents:
            verb = "is" if path == where else "holds"
            raise PostTrainingInputError(
                f"{field} {output} {verb} the {named}: the merge would replace it; "
                "choose a new folder"
            )
        if path in where.parents:
            raise PostTrainingInputError(
                f"{field} {output} is inside the {named}: a merge never writes into "
                "its inputs; choose a folder outside it"
            )
    check_replaceable(output, field)
    check_replaceable(staging_folder(output), f"{field}'s staging folder")


def check_replaceable(folder: Path, what: str) -> None:
    """Refuse a `folder` that is a file, or that holds files this tool did not write."""
    folder = Path(folder)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise PostTrainingInputError(
            f"{what} {folder} is an existing file, not a folder: name a folder for the merge"
        )
    others = foreign_entries(folder)
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise PostTrainingInputError(
            f"{what} {folder} already holds files a merge did not write ({shown}); choose a new "
            "or empty folder (a merge only replaces a folder an earlier merge wrote)"
        )


def foreign_entries(folder: Path) -> list[str]:
    """The names in `folder` that no merge of this tool wrote (all of them without a marker)."""
    if not folder.is_dir():
        return []
    entries = sorted(p.name for p in folder.iterdir())
    try:
        manifest = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return entries
    if not isinstance(manifest, dict):  # not a marker this tool wrote
        return entries
    if manifest.get("partial"):  # a merge in progress, or one that crashed: all of it is ours
        return []
    ours = set(manifest.get("files") or []) | WRITTEN_BESIDE
    return [name for name in entries if name not in ours]


def claim(folder: Path) -> Path:
    """`folder`, empty but for a marker saying a merge is in progress (an earlier folder of
    ours in its place is removed; anyone else's is refused)."""
    folder = Path(folder)
    check_replaceable(folder, "folder")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / MARKER).write_text(json.dumps({"partial": True}))
    return folder


def finish(staging: Path, output: Path) -> Path:
    """Mark the merge in `staging` complete (listing its files) and put it in `output`'s place."""
    staging, output = Path(staging), Path(output)
    files = sorted(p.name for p in staging.iterdir() if p.name != MARKER)
    (staging / MARKER).write_text(json.dumps({"files": files}))
    check_replaceable(output, "output")  # again: something may have appeared meanwhile
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
    return output
