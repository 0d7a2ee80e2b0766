"""Generation throughput on the real model, SmolLM2-135M-Instruct (float32, CPU, greedy).

Four ways to answer the same quickstart prompts (a sentence about a person, the user turn
of `configs/data/quickstart/train.jsonl`), at most 32 new tokens each:

  a) the evaluator's batched generation (`models.generation.generate_completions`, left
     padding, batch 16: what `phases.evaluation` calls);
  b) the baseline: a plain loop of transformers `generate`, one prompt at a time;
  c) the REST app, `finetune-agent serve` (uvicorn) on loopback in a second process, the
     model registered in its store: `POST /models/{id}/generate` from 1 client, then from
     8 concurrent clients (a closed loop: each sends its next request when answered);
  d) llama.cpp on the packaged GGUF (Q4_1), only when `llama_cpp` is importable.

The sides alternate in rounds (the machine is shared and noisy, so ratios are what count);
the server idles while the others run. Tokens are counted as the API counts them: the new
tokens up to and including the end token.

    python benchmarks/generation.py [--prompts 32] [--rounds 2] [--clients 8] [--threads 1]
    python benchmarks/generation.py --prompts 8 --rounds 1     # a quick smoke

One torch thread per process by default, here and in the server: on this shared 2-core
machine two threads were up to 10x slower than one while other jobs ran (their OpenMP
threads wait for each other while another process holds a core).

`--cache-dir DIR` keeps the imported model between runs (else a temp dir: ~30 s import).
a) also runs at batch `--clients` (8): the most the server's batching of 8 concurrent
clients' requests (`api.generation_batching`) can reach. RESULT lines: `eval_vs_one_at_a_time` (tokens/s ratio a/b, goal >= 4),
`serve_p95_ms_1`, `serve_p95_ms_8`, `serve_8_vs_one_at_a_time` (tokens/s ratio c/b with 8
clients), and `llama_cpp_vs_one_at_a_time` when d) ran.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

for _name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import httpx  # noqa: E402
from bench_setup import (  # noqa: E402
    free_port,
    one_at_a_time,
    quickstart_examples,
    start_server,
)

MODEL = "builtin:smollm2-135m-instruct"


class Side:
    """One way of generating: tokens and seconds per round, latencies per request."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rates: list[float] = []
        """Tokens per second, one per round."""
        self.latencies_ms: list[float] = []
        """Milliseconds per request (per prompt for the loops), over every round."""

    def add(self, tokens: int, seconds: float, latencies: list[float]) -> None:
        """Record one round and print it."""
        self.rates.append(tokens / seconds)
        self.latencies_ms += [s * 1000 for s in latencies]
        print(f"  {self.name:22} {tokens:5} tokens {seconds:7.2f} s {tokens / seconds:7.1f} tok/s")

    @property
    def rate(self) -> float:
        """Median tokens per second over the rounds."""
        return statistics.median(self.rates)

    def percentile(self, q: int) -> float:
        """The q-th percentile of the request latencies, in ms."""
        values = self.latencies_ms
        if len(values) < 2:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def batched(
    model: Any, tokenizer: Any, prompts: list[list[int]], *, batch_size: int, max_new_tokens: int
) -> tuple[int, float, list[str]]:
    """(a) the evaluator's generation: (tokens, seconds, answers)."""
    from models.generation import generate_completions

    start = time.perf_counter()
    done = generate_completions(
        model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    seconds = time.perf_counter() - start
    tokens = sum(len(c.ids) + int(c.ended) for c in done)
    return tokens, seconds, [c.text for c in done]


def serve_round(
    url: str, texts: list[str], *, clients: int, max_new_tokens: int
) -> tuple[int, float, list[float], list[str]]:
    """(c) every text POSTed once, `clients` requests in flight at a time: (tokens, wall
    seconds, per-request seconds, answers)."""
    local = threading.local()

    def ask(text: str) -> tuple[int, float, str]:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=600)
        began = time.perf_counter()
        response = local.client.post(url, json={"prompt": text, "max_new_tokens": max_new_tokens})
        took = time.perf_counter() - began
        response.raise_for_status()
        body = response.json()
        return body["completion_tokens"], took, body["text"]

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        answers = list(pool.map(ask, texts))
    wall = time.perf_counter() - start
    return sum(a[0] for a in answers), wall, [a[1] for a in answers], [a[2] for a in answers]


def start_serving(model_dir: str, home: Path, threads: int) -> tuple[Any, str]:
    """The REST app in its own process with the model registered, torch on `threads`
    threads: (server, generate URL)."""
    from llmfinetune_agent.run_store import RunStore

    database_url = f"sqlite:///{home / 'finetune-agent.db'}"
    record = RunStore(database_url).register_model(run_id=None, path=model_dir, base_model=MODEL)
    env = {**os.environ, "FINETUNE_AGENT_HOME": str(home)}
    env["FINETUNE_AGENT_DATABASE_URL"] = database_url
    env["OMP_NUM_THREADS"] = str(threads)  # torch reads it when the server imports it
    env.pop("FINETUNE_AGENT_API_KEY", None)
    port = free_port()
    server = start_server(env, port)
    return server, f"http://127.0.0.1:{port}/models/{record.id}/generate"


def llama_cpp_model(threads: int) -> Any:
    """The packaged GGUF in llama.cpp, or None (and why) when `llama_cpp` is not importable."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        print(
            f"d) llama.cpp: skipped ({exc}); llama-cpp-python is not installed here, and "
            "building it compiles llama.cpp for many minutes on this 2-core machine"
        )
        return None
    from models.packaged import smollm2_gguf_path

    return Llama(model_path=str(smollm2_gguf_path()), n_ctx=512, n_threads=threads, verbose=False)


def llama_cpp_round(
    llm: Any, prompts: list[list[int]], *, max_new_tokens: int
) -> tuple[int, float, list[float]]:
    """(d) the same prompt ids, greedy, one at a time: (tokens, seconds, per-prompt seconds)."""
    tokens, latencies = 0, []
    for prompt in prompts:
        began = time.perf_counter()
        out = llm.create_completion(prompt=prompt, max_tokens=max_new_tokens, temperature=0.0)
        latencies.append(time.perf_counter() - began)
        tokens += out["usage"]["completion_tokens"]
    return tokens, sum(latencies), latencies


def parse_args() -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=32, help="prompts per side per round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="the evaluator's default")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in c)")
    parser.add_argument("--cache-dir", type=Path, help="keep the imported model here")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads, here and in the server"
    )
    return parser.parse_args()


def main() -> None:
    """Load the model, start the server, run the rounds, report."""
    args = parse_args()
    import torch

    from models import load_model_and_tokenizer
    from models.loading import resolve_model_path
    from phases.evaluation.generation import prompt_ids

    torch.set_num_threads(args.threads)
    home = Path(tempfile.mkdtemp(prefix="genbench-"))
    model_dir = resolve_model_path(MODEL, cache_dir=args.cache_dir or home / "models")
    model, tokenizer = load_model_and_tokenizer(model_dir, for_generation=True)
    examples = quickstart_examples(args.prompts)
    prompts = [prompt_ids(tokenizer, e) for e in examples]
    texts = [e.prompt[-1]["content"] for e in examples]  # the user turn the server templates
    server, url = start_serving(model_dir, home, args.threads)
    try:
        new = args.max_new_tokens
        # Warm-up: the server loads the model on its first request.
        serve_round(url, texts[:2], clients=1, max_new_tokens=new)
        batched(model, tokenizer, prompts[:4], batch_size=4, max_new_tokens=new)
        one_at_a_time(model, tokenizer, prompts[:2], max_new_tokens=new)
        sides, answers = run_rounds(args, model, tokenizer, prompts, texts, url)
    finally:
        server.terminate()
        server.wait(20)
        shutil.rmtree(home, ignore_errors=True)
    report(sides, answers, args.clients)


def run_rounds(
    args: argparse.Namespace,
    model: Any,
    tokenizer: Any,
    prompts: list[list[int]],
    texts: list[str],
    url: str,
) -> tuple[dict[str, Side], dict[str, list[str]]]:
    """Every side once per round, in the same order: (sides, answers of the last round)."""
    new, clients = args.max_new_tokens, args.clients
    sides = {
        "b": Side("b) one at a time"),
        "a": Side(f"a) batched {args.batch_size} (eval)"),
        # The ceiling of the server's micro-batching of `clients` concurrent requests.
        "a_clients": Side(f"a) batched {clients}"),
        "c1": Side("c) serve, 1 client"),
        "c8": Side(f"c) serve, {clients} clients"),
    }
    llm = llama_cpp_model(args.threads)
    if llm is not None:
        sides["d"] = Side("d) llama.cpp (Q4_1)")
    answers: dict[str, list[str]] = {}
    for round_number in range(args.rounds):
        print(f"round {round_number + 1}/{args.rounds}, {len(prompts)} prompts", flush=True)
        baseline = one_at_a_time(model, tokenizer, prompts, max_new_tokens=new)
        seconds = [s for _, s in baseline]
        sides["b"].add(sum(t for t, _ in baseline), sum(seconds), seconds)
        for key, size in (("a", args.batch_size), ("a_clients", clients)):
            tokens, took, answers[key] = batched(
                model, tokenizer, prompts, batch_size=size, max_new_tokens=new
            )
            sides[key].add(tokens, took, [])
        for key, concurrent in (("c1", 1), ("c8", clients)):
            tokens, wall, latencies, answers[key] = serve_round(
                url, texts, clients=concurrent, max_new_tokens=new
            )
            sides[key].add(tokens, wall, latencies)
        if llm is not None:
            sides["d"].add(*llama_cpp_round(llm, prompts, max_new_tokens=new))
    return sides, answers


def report(sides: dict[str, Side], answers: dict[str, list[str]], clients: int) -> None:
    """Medians, latencies, agreement between the sides' answers, then the RESULT lines."""
    base = sides["b"]
    print("\nmedian tokens/s (ratio to b)")
    for side in sides.values():
        print(f"  {side.name:22} {side.rate:7.1f}  x{side.rate / base.rate:5.2f}")
    for side in (base, sides["c1"], sides["c8"]):
        print(
            f"  {side.name:22} latency p50 {side.percentile(50):7.0f} ms  "
            f"p95 {side.percentile(95):7.0f} ms"
        )
    one, many = sides["c1"], sides["c8"]
    overhead = statistics.mean(one.latencies_ms) - statistics.mean(base.latencies_ms)
    print(f"  serving overhead per request (mean c1 - mean b): {overhead:.0f} ms")
    print(
        f"  {clients} clients vs 1: tokens/s x{many.rate / one.rate:.2f}; batched {clients} "
        f"vs one at a time: x{sides['a_clients'].rate / base.rate:.2f}"
    )
    for key in ("c1", "c8"):
        same = sum(x == y for x, y in zip(answers["a"], answers[key], strict=True))
        print(f"  answers identical, a) vs {sides[key].name}: {same} of {len(answers['a'])}")
    print(f"RESULT eval_vs_one_at_a_time={sides['a'].rate / base.rate:.2f}")
    print(f"RESULT serve_p95_ms_1={one.percentile(95):.0f}")
    print(f"RESULT serve_p95_ms_8={many.percentile(95):.0f}")
    print(f"RESULT serve_8_vs_one_at_a_time={many.rate / base.rate:.2f}")
    if "d" in sides:
        print(f"RESULT llama_cpp_vs_one_at_a_time={sides['d'].rate / base.rate:.2f}")


if __name__ == "__main__":
    main()
