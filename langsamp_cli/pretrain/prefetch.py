"""The pretraining input pipeline: the micro-batches of the next optimiser steps, built while the device works.

A background thread draws chunks from the ``ChunkSampler``, masks them with the ``MLMCollator`` (tokenization and
collation are host work) and queues them, pinned when the batches go to a GPU, so the training loop never waits
on the host. Everything a step's shapes depend on is found here too (the collator's ``masked_positions``), so the
device never has to report back before the host can queue the next kernels. The thread is the only user of the sampler and the collator once it runs, and both draw only from
their own generators, so the batches are exactly those a loop without prefetching would build, in the same order.

The sampler and the collator run ahead of training, so their live state is not what a checkpoint needs. Every
prepared step carries the state right after its own batches were drawn (when ``wants_state(step)`` asks for it:
copying the stream positions costs time), and the ``consumed_*`` views hand a checkpoint the state as of the last
step the loop *consumed*. Resuming from it continues the stream exactly where training left off.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from langsamp_cli.pretrain.collate import MLMCollator
from langsamp_cli.pretrain.corpus import ChunkSampler

Batch = dict[str, torch.Tensor]


@dataclass
class PreparedStep:
    """One optimiser step's micro-batches and the data-stream state right after they were drawn."""

    step: int                               # the training step these batches are for (1-based, global)
    batches: list[Batch]
    tokens: int                             # non-padding tokens in all micro-batches
    counts: dict[str, int]                  # chunks drawn per language-script so far (for the log)
    sampler_state: dict[str, Any] | None    # None where wants_state(step) was false
    collator_state: dict[str, Any] | None


class ConsumedState:
    """Stands in for the sampler or the collator when a checkpoint is saved: ``state_dict()`` of the last consumed step."""

    def __init__(self, read: Callable[[], dict[str, Any]]):
        self._read = read

    def state_dict(self) -> dict[str, Any]:
        return self._read()


@dataclass
class _Failure:
    error: BaseException


class StepPrefetcher:
    """Iterator of ``PreparedStep`` for steps ``first_step, first_step + 1, ...``; a context manager.

    ``background=False`` builds every step in the caller's thread when it is asked for (the reference the
    background mode must equal, bit for bit). ``depth`` is how many steps may wait ready in the queue.
    """

    def __init__(self, sampler: ChunkSampler, collator: MLMCollator, batch_size: int, grad_accum: int,
                 first_step: int, wants_state: Callable[[int], bool] | None = None, pin_memory: bool = False,
                 background: bool = True, depth: int = 2):
        self.sampler, self.collator = sampler, collator
        self.batch_size, self.grad_accum = batch_size, grad_accum
        self.wants_state = wants_state or (lambda step: True)
        self.pin_memory, self.background = pin_memory, background
        self._next_step = first_step
        # Before any step is consumed, a checkpoint would need the state the stream starts from.
        self._consumed = PreparedStep(first_step - 1, [], 0, dict(sampler.counts), sampler.state_dict(),
                                      collator.state_dict())
        self._queue: queue.Queue[PreparedStep | _Failure] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------------ producing

    def prepare(self, step: int) -> PreparedStep:
        """Draw and collate the micro-batches of ``step`` (advances the sampler and the collator)."""
        batches, tokens = [], 0
        for _ in range(self.grad_accum):
            batch = self.collator(self.sampler.next_batch(self.batch_size))
            tokens += int(batch["attention_mask"].sum())
            if self.pin_memory:
                batch = {key: value.pin_memory() for key, value in batch.items()}
            batches.append(batch)
        keep = self.wants_state(step)
        return PreparedStep(step, batches, tokens, dict(self.sampler.counts),
                            self.sampler.state_dict() if keep else None,
                            self.collator.state_dict() if keep else None)

    def _work(self) -> None:
        step = self._next_step
        try:
            while not self._stop.is_set():
                item = self.prepare(step)
                step += 1
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # handed to the training loop, which raises it there
            self._queue.put(_Failure(error))

    # ------------------------------------------------------------------------------------------ consuming

    def __enter__(self) -> StepPrefetcher:
        if self.background:
            self._thread = threading.Thread(target=self._work, name="langsamp-prefetch", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> StepPrefetcher:
        return self

    def __next__(self) -> PreparedStep:
        if self._stop.is_set():
            raise RuntimeError("the prefetcher is closed")
        if self._thread is None:
            item: PreparedStep | _Failure = self.prepare(self._next_step)
        else:
            item = self._get()
        if isinstance(item, _Failure):
            self.close()
            raise item.error
        self._next_step = item.step + 1
        self._consumed = item
        return item

    def _get(self) -> PreparedStep | _Failure:
        while True:
            try:
                return self._queue.get(timeout=1.0)
            except queue.Empty:
                if self._thread is not None and not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the batch prefetch thread ended without a batch or an error") from None

    def close(self) -> None:
        """Stop the thread; batches it prepared ahead are dropped (the consumed state is what a resume needs)."""
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=0.1)
                except queue.Empty:
                    pass
            self._thread.join()
            self._thread = None

    # ---------------------------------------------------------------------------------- consumed state

    @property
    def consumed_step(self) -> int:
        return self._consumed.step

    @property
    def consumed_counts(self) -> dict[str, int]:
        return self._consumed.counts

    @property
    def consumed_sampler(self) -> ConsumedState:
        return ConsumedState(lambda: self._captured("sampler_state"))

    @property
    def consumed_collator(self) -> ConsumedState:
        return ConsumedState(lambda: self._captured("collator_state"))

    def _captured(self, name: str) -> dict[str, Any]:
        state = getattr(self._consumed, name)
        if state is None:
            raise RuntimeError(f"no data-stream state was kept for step {self._consumed.step}; "
                               "wants_state() must be true at every step that can be checkpointed")
        return state
