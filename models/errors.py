"""The one error the model layer raises for anything a user can fix.

It lives apart from `models.loading` so that the GGUF import and the packaged models can raise
it without importing the loader that calls them (no import cycle inside `models`).
"""


class ModelLoadError(ValueError):
    """A model or tokenizer could not be loaded; the message tells the user what to change."""
