"""Dynamic micro-batching of one model's generate requests.

Concurrent `POST /models/{id}/generate` requests for the same model queue here; a worker
thread takes the queue's head and every greedy request waiting with it (for up to
`window_seconds` more, at most `max_batch` in all), answers them with ONE
`generate_completions` call, and hands each request its own completion. On CPU a batch of 8
costs little more than one prompt, so waiting requests no longer queue for each other.

- Greedy requests batch together whatever their `max_new_tokens`: the batch runs to the
  largest and each completion is cut at its own limit (`cut_to_length`), which greedy
  decoding makes the same text as running to that limit (the API passes no stop strings).
- A sampling request runs alone, so its `seed` reproduces its answer.
- A batch never reaches past the model's context window (its longest prompt plus its largest
  `max_new_tokens`); a request that would push it there waits for the next batch.
- A batch that fails is answered again one request at a time, so an error reaches only the
  request that causes it, never its neighbours.

The worker thread exists only while requests wait, and holds the model itself: a batch that
runs while the model cache evicts the model finishes on it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from api.schemas import GenerateRequest
from models.generation import Completion, context_window, cut_to_length, generate_completions

DEFAULT_WINDOW_SECONDS = 0.025
"""How long the worker waits for more requests to join a batch that is not full: 25 ms let 8
closed-loop clients' next requests (sent as their answers arrive) fill a batch of 8 where
5 ms split them 7 + 1 (SmolLM2-135M on CPU); ~1 % of a 32-token answer's time."""
DEFAULT_MAX_BATCH = 16
"""The most requests answered by one `generate_completions` call."""


@dataclass
class _Waiting:
    """A request in the queue, until the worker gives it its completion or the error."""

    ids: list[int]
    request: GenerateRequest
    done: threading.Event = field(default_factory=threading.Event)
    completion: Completion | None = None
    error: BaseException | None = None


class GenerationBatcher:
    """One loaded model's queue of prompts, answered in batches by a worker thread."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.window_seconds = window_seconds
        self.max_batch = max_batch
        self.calls = 0
        """How many `generate_completions` calls answered requests."""
        self.batch_sizes: Counter[int] = Counter()
        """How many of those calls answered each number of requests."""
        self._window = context_window(model)
        self._queue: deque[_Waiting] = deque()
        self._arrived = threading.Condition()
        self._working = False

    def complete(self, ids: list[int], request: GenerateRequest) -> Completion:
        """The completion of the prompt `ids` with the request's settings, generated in a
        batch with the compatible requests waiting alongside it (blocks until it is done)."""
        waiting = _Waiting(ids, request)
        with self._arrived:
            self._queue.append(waiting)
            self._arrived.notify()
            if not self._working:
                self._working = True
                threading.Thread(target=self._work, name="generation-batcher", daemon=True).start()
        waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        assert waiting.completion is not None
        return waiting.completion

    def _work(self) -> None:
        while True:
            with self._arrived:
                batch = self._next_batch()
                if not batch:
                    self._working = False
                    return
            self._answer(batch)

    def _next_batch(self) -> list[_Waiting]:
        """The queue's head and, for a greedy head, the greedy requests that join it within
        the window. Called holding `_arrived`."""
        if not self._queue:
            return []
        batch = [self._queue.popleft()]
        if batch[0].request.do_sample:
            return batch
        deadline = time.monotonic() + self.window_seconds
        while True:
            self._join_waiting(batch)
            left = deadline - time.monotonic()
            if len(batch) >= self.max_batch or left <= 0:
                return batch
            self._arrived.wait(left)

    def _join_waiting(self, batch: list[_Waiting]) -> None:
        """Move the waiting greedy requests that fit into `batch`; the rest keep their order."""
        kept: deque[_Waiting] = deque()
        while self._queue:
            waiting = self._queue.popleft()
            if len(batch) < self.max_batch and self._fits(batch, waiting):
                batch.append(waiting)
            else:
                kept.append(waiting)
        self._queue = kept

    def _fits(self, batch: list[_Waiting], waiting: _Waiting) -> bool:
        if waiting.request.do_sample:
            return False
        if self._window is None:
            return True
        width = max(len(w.ids) for w in [*batch, waiting])
        return width + max(w.request.max_new_tokens for w in [*batch, waiting]) <= self._window

    def _answer(self, batch: list[_Waiting]) -> None:
        head = batch[0].request
        try:
            completions = generate_completions(
                self.model,
                self.tokenizer,
                [w.ids for w in batch],
                max_new_tokens=max(w.request.max_new_tokens for w in batch),
                batch_size=len(batch),
                do_sample=head.do_sample,
                temperature=head.temperature,
                top_p=head.top_p,
                top_k=head.top_k,
                seed=head.seed,
            )
        except Exception as exc:
            if len(batch) > 1:  # find who it belongs to: each request again, alone
                for waiting in batch:
                    self._answer([waiting])
                return
            batch[0].error = exc
            batch[0].done.set()
            return
        except BaseException as exc:  # not an Exception: every request answers with it at once
            for waiting in batch:
                waiting.error = exc
                waiting.done.set()
            return
        self.calls += 1
        self.batch_sizes[len(batch)] += 1
        for waiting, completion in zip(batch, completions, strict=True):
            limit = waiting.request.max_new_tokens
            waiting.completion = cut_to_length(self.tokenizer, completion, limit)
            waiting.done.set()
