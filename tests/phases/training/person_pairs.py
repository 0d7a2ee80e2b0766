"""Preference pairs for the real-model DPO test: a sentence about a person -> compact JSON.

Chosen is the right JSON; rejected is a prose answer or JSON with the wrong keys. Eval rows use
names and cities never seen in training (the quickstart's disjoint lists), so exact match
measures whether the model reads the input. Helpers, not fixtures; deterministic by seed.
"""

import importlib.util
import json
import random
from pathlib import Path

# Loaded under its own name: the calculator data's script is also `make_data`, and whichever
# test imports first would otherwise own that name in sys.modules.
_spec = importlib.util.spec_from_file_location(
    "quickstart_make_data", Path(__file__).parents[3] / "configs/data/quickstart/make_data.py"
)
_quickstart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_quickstart)
EVAL_CITIES, EVAL_NAMES, TEMPLATES = (
    _quickstart.EVAL_CITIES,
    _quickstart.EVAL_NAMES,
    _quickstart.TEMPLATES,
)
TRAIN_CITIES, TRAIN_NAMES = _quickstart.TRAIN_CITIES, _quickstart.TRAIN_NAMES

PROMPT = "As JSON with name, age and city: {sentence}\n"
WRONG_KEYS = (("person", "years", "location"), ("Name", "Age", "City"), ("name", "age", "town"))


def _rejected(rng: random.Random, name: str, age: int, city: str) -> str:
    """A plausible wrong answer: prose, or JSON with the wrong keys."""
    if rng.random() < 0.5:
        return rng.choice(
            [
                f"{name} is {age} years old and lives in {city}.",
                f"Sure! Here is the JSON for {name}: name {name}, age {age}, city {city}.",
                f"The person is {name}, {age}, from {city}. Let me know if you need more.",
            ]
        )
    keys = rng.choice(WRONG_KEYS)
    return json.dumps(dict(zip(keys, (name, age, city), strict=True)))


def person_pairs(count: int, *, held_out: bool = False, seed: int = 1) -> list[dict]:
    """`count` distinct prompt/chosen/rejected rows (unseen names and cities when held_out)."""
    rng = random.Random(seed)
    names, cities = (EVAL_NAMES, EVAL_CITIES) if held_out else (TRAIN_NAMES, TRAIN_CITIES)
    rows: dict[str, dict] = {}
    while len(rows) < count:
        name, city, age = rng.choice(names), rng.choice(cities), rng.randint(18, 89)
        prompt = PROMPT.format(sentence=rng.choice(TEMPLATES).format(name=name, age=age, city=city))
        chosen = json.dumps({"name": name, "age": age, "city": city})
        rows.setdefault(prompt, {"prompt": prompt, "chosen": chosen, "rejected": ""})
        rows[prompt]["rejected"] = _rejected(rng, name, age, city)
    return list(rows.values())
