"""A user reward module for the tests: allow-listed as `sample_rewards`."""


def shorter_is_better(prompts: list, completions: list, **kwargs) -> list[float]:
    """1 / (1 + characters): TRL's keyword signature, reading no dataset column."""
    return [1.0 / (1 + len(str(c))) for c in completions]


def says_topic(prompts: list, completions: list, topic: list[str], **kwargs) -> list[float]:
    """1 when the completion mentions the row's `topic` column."""
    return [float(t in str(c)) for c, t in zip(completions, topic, strict=True)]


TARGET = "yes yes yes"


def close_to_target(prompts: list, completions: list, **kwargs) -> list[float]:
    """How close the completion is to the fixed string TARGET (difflib's ratio, 0..1)."""
    import difflib

    return [difflib.SequenceMatcher(None, str(c), TARGET).ratio() for c in completions]
