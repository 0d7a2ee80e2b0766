"""Model and tokenizer loading: hub ids, local directories, GGUF import, built-in tiny models.

Nothing here imports torch or transformers at module level, so the CLI starts fast.
"""

from models.config import ModelConfig

__all__ = ["ModelConfig"]
