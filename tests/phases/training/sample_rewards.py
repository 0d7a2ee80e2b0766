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


def same_for_every_completion(prompts: list, completions: list, **kwargs) -> list[float]:
    """The prompt's length: each prompt's completions all score the same (no spread)."""
    return [float(len(str(p))) for p in prompts]


def fails_in_the_second_process(prompts: list, completions: list, **kwargs) -> list[float]:
    """Raises in data-parallel process 1 (the others wait for it in their next all-reduce)."""
    import os

    if os.environ.get("RANK") == "1":
        raise KeyError("only process 1 fails")
    return [0.0 for _ in completions]


def killed_in_the_second_process(prompts: list, completions: list, **kwargs) -> list[float]:
    """Process 1 is SIGKILLed, as the kernel does when memory runs out: it writes nothing."""
    import os
    import signal

    if os.environ.get("RANK") == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return [0.0 for _ in completions]


def one_score_too_few(prompts: list, completions: list, **kwargs) -> list[float]:
    """A broken reward: a score for every completion but the last."""
    return [0.0 for _ in completions[1:]]


def scores_as_words(prompts: list, completions: list, **kwargs) -> list:
    """A broken reward: a word where a number should be, after a None (which TRL allows)."""
    scores: list = [0.0 for _ in completions]
    scores[:2] = [None, "high"][: len(scores)]
    return scores


def one_number(prompts: list, completions: list, **kwargs) -> float:
    """A broken reward: one number for the whole batch instead of one per completion."""
    return 1.0
