"""Writes the quickstart's data: sentences about a person -> compact JSON (name, age, city).

`train.jsonl` and `eval.jsonl` draw their names and cities from disjoint lists, so the eval
split measures whether the model reads the input (no eval name or city is ever seen in
training). Deterministic; run `python configs/data/quickstart/make_data.py` to rewrite both.
"""

import json
import random
from pathlib import Path

TRAIN_NAMES = (  # noqa: SIM905 (one string reads better than a long list)
    "Hana Kenji Omar Amara Arjun Lucia Mateo Ingrid Tariq Mei Sven Aisha Pablo Greta Ravi "
    "Nadia Jonas Leila Tomas Ayumi Kwame Elena Farid Sofia Dmitri Zara Hugo Priya Emil Noor "
    "Bruno Anika Rafael Lina Oskar Yara Felix Chiara Idris Maja Alice Bob Carol David Emma "
    "Frank Grace Henry Isabel Jack Karen Liam Maria Noah Olivia Peter Quinn Rachel Sam Tina "
    "Umar Vera Walter Xavier Zoe Ahmed Chen Diego Fatima Hiro Ivan Juan Kofi Lena Mehmet "
    "Sanjay Yuki Astrid Bilal Camila Dario Esther Fionn Gustav Halima Ilya Jamal Kaito Lars "
    "Marta Nico Odile Pedro Rosa Samir Tariku Ulla Viktor Wanjiru Ximena Yusuf Zeynep Agnes "
    "Boris Clara Dev Elif Goran Helga Imran Jana Karim Luca Mina Nils Orla Pia Reza Selin "
    "Theo Uma Vikram Wen Xiu Yosef"
).split()
EVAL_NAMES = (  # noqa: SIM905 (one string reads better than a long list)
    "Beatriz Wojtek Soraya Anselm Keiko Thabo Ines Lorcan Marisol Baptiste"
).split()
TRAIN_CITIES = (  # noqa: SIM905 (one string reads better than a long list)
    "Madrid,Berlin,Lima,Cairo,Athens,Oslo,Lisbon,Vienna,Prague,Dublin,Toronto,Nairobi,"
    "Seoul,Hanoi,Bogota,Quito,Warsaw,Helsinki,Zurich,Mumbai,Accra,Manila,Rome,Tokyo,Sydney,"
    "Buenos Aires,New York,Cape Town,London,Paris,Delhi,Lagos,Chicago,Boston,Seattle,"
    "Stockholm,Copenhagen,Munich,Hamburg,Milan,Naples,Seville,Valencia,Marseille,Lyon,"
    "Brussels,Amsterdam,Rotterdam,Budapest,Bucharest,Sofia,Belgrade,Zagreb,Istanbul,Ankara,"
    "Tehran,Karachi,Dhaka,Bangkok,Jakarta,Singapore,Osaka,Beijing,Shanghai,Melbourne,"
    "Auckland,Vancouver,Mexico City,Havana,Santiago,Caracas,Montevideo,Casablanca,Tunis,"
    "Addis Ababa,Dakar,Kampala,Los Angeles,San Francisco"
).split(",")
EVAL_CITIES = (  # noqa: SIM905 (one string reads better than a long list)
    "Montreal,Krakow,Valparaiso,Bergen,Porto,Kyoto,Tbilisi,Rio de Janeiro"
).split(",")
TEMPLATES = (
    "{name} is {age} years old and lives in {city}.",
    "{name} ({age}) is based in {city}.",
    "At {age}, {name} calls {city} home.",
    "{name}, aged {age}, lives in {city}.",
    "Meet {name}: {age} years old, living in {city}.",
    "{name} moved to {city} and just turned {age}.",
    "Living in {city}, {name} is {age}.",
    "{name} lives in {city}; {name} is {age}.",
    "This is {name}, a {age}-year-old from {city}.",
    "{city} is where {name}, {age}, lives.",
)
HERE = Path(__file__).parent


def _rows(names: tuple[str, ...] | list[str], cities: list[str], count: int, seed: int):
    rng = random.Random(seed)
    seen: set[str] = set()
    while len(seen) < count:
        name, city, age = rng.choice(names), rng.choice(cities), rng.randint(18, 89)
        sentence = rng.choice(TEMPLATES).format(name=name, age=age, city=city)
        if sentence in seen:
            continue
        seen.add(sentence)
        answer = json.dumps({"name": name, "age": age, "city": city})
        yield {
            "messages": [
                {"role": "user", "content": sentence},
                {"role": "assistant", "content": answer},
            ]
        }


def write(path: Path, rows) -> None:
    """One JSON object per line."""
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    write(HERE / "train.jsonl", _rows(TRAIN_NAMES, TRAIN_CITIES, 160, seed=1))
    write(HERE / "eval.jsonl", _rows(EVAL_NAMES, EVAL_CITIES, 30, seed=2))
