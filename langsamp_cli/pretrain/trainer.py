"""The LangSAMP pretraining loop: MLM with language and script embeddings, resumable, single GPU to multi-node.

Read ``pretrain()`` top to bottom; everything it calls follows it in the order it is used. The run folder
(``run_dir``), the checkpoints (``checkpoints``) and what is trained (``model_setup``) have modules of their own.

- Scale-out is `accelerate`: the same code runs as a plain process, under ``accelerate launch`` or ``torchrun``.
  Every rank draws its own chunk stream (seed, rank); gradients are averaged by DDP; only rank 0 writes.
- One optimiser step = ``grad_accum`` micro-batches of ``batch_size`` chunks per rank (gradient sync on the last).
- Checkpoints every ``save_every`` steps (``checkpoints.py``); ``--resume`` continues from the newest intact one
  exactly as if the run had never stopped.
- ``{output_dir}/log.jsonl``: one JSON line per logged step and per evaluation (``run_dir.py``).
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from rich.console import Console
from rich.markup import escape
from transformers import get_linear_schedule_with_warmup

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json, atomic_write_text
from langsamp_cli.pretrain import run_lock
from langsamp_cli.pretrain.checkpoints import (TrainState, restore_training, save_training_checkpoint, seed_everything,
                                               summary_json)
from langsamp_cli.pretrain.collate import MLMCollator, check_tokenizer
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.corpus import ChunkSampler, Example, corpus_notes, heldout_examples, scan_corpus, sizes_table
from langsamp_cli.pretrain.fingerprint import corpus_fingerprint
from langsamp_cli.pretrain.model_setup import (check_memory, language_maps, prepare_model, prepare_tokenizer,
                                               record_vocab_transfer)
from langsamp_cli.pretrain.prefetch import Batch, StepPrefetcher
from langsamp_cli.pretrain.run_dir import (append_log, check_same_corpus, default_corpus_dir, find_resume_point,
                                           merge_resumed_config, prepare_output_dir, removed_on_error, run_record,
                                           run_settings, truncate_log)
from langsamp_cli.progress import print_table

PARAM_HASH_ENV = "LANGSAMP_PARAM_HASH_DIR"   # debug: every rank writes a hash of its final weights here

EarlyStopHook = Callable[[int, dict[str, float]], bool]


@dataclass
class PretrainResult:
    output_dir: Path
    final_dir: Path | None   # None when interrupted by stop_after_steps
    steps: int
    tokens_seen: int
    elapsed_s: float
    last_loss: float | None
    stopped_early: bool = False
    best_dir: Path | None = None
    corpus_languages: list[str] = field(default_factory=list)


def pretrain(config: PretrainConfig, resume: bool = False, overwrite: bool = False,
             console: Console | None = None, progress: bool = True,
             early_stop: EarlyStopHook | None = None, stop_after_steps: int | None = None,
             prefetch: bool = True) -> PretrainResult:
    """Pretrain (or continue pretraining) a LangSAMP masked LM as described by ``config``.

    transformers' own progress bars (one per checkpoint save) are off while it runs and restored afterwards.
    """
    from langsamp_cli.model import quiet_transformers

    # no per-save "Writing model shards" bars between our own progress output; transformers' messages stay
    threads = torch.get_num_threads()  # a CPU run may use fewer (langsamp_cli.threads); the caller's come back
    try:
        with quiet_transformers(messages=False):
            return _pretrain(config, resume, overwrite, console, progress, early_stop, stop_after_steps, prefetch)
    finally:
        torch.set_num_threads(threads)
        run_lock.release(Path(config.output_dir))  # the OS drops it too when the process ends


def _pretrain(config: PretrainConfig, resume: bool, overwrite: bool, console: Console | None, progress: bool,
              early_stop: EarlyStopHook | None, stop_after_steps: int | None, prefetch: bool) -> PretrainResult:
    """The body of :func:`pretrain`.

    ``prefetch`` builds the next steps' batches in a background thread while the device trains (``False``:
    in the loop, the same batches; kept for tests and debugging).

    ``stop_after_steps`` interrupts the run after that many steps of this invocation, with a checkpoint but no
    ``final/`` (a time-boxed job; ``--resume`` continues it exactly).
    """
    console = console or Console(stderr=True)
    accelerator = make_accelerator(config, console)
    config = replace(config, mixed_precision=accelerator.mixed_precision)  # what runs is what run.json records
    say = console.print if accelerator.is_main_process else (lambda *a, **k: None)
    threads = ""
    if accelerator.device.type == "cpu":
        from langsamp_cli.threads import use_cpu_threads

        threads = f"; {use_cpu_threads()} cpu thread(s) (LANGSAMP_THREADS)"
    out = Path(config.output_dir)

    # 1. Output directory: fresh, overwritten, restarted, or resumed from the newest intact checkpoint.
    #    Only looked at here: nothing is written before the settings and the corpus have been checked.
    checkpoint, saved = find_resume_point(out, resume, overwrite, say)
    if checkpoint is not None:
        config = merge_resumed_config(saved["config"], config, say)
    else:
        config = run_settings(config)

    # 2. Corpus: files, sizes, sampling probabilities (shown before anything is trained).
    corpus = scan_corpus(config.corpus or default_corpus_dir(), config.languages,
                         eval_lines=config.eval_lines if config.eval_every > 0 else 0)
    fingerprint = corpus_fingerprint(corpus)
    if checkpoint is not None:
        check_same_corpus(saved, out, config, fingerprint, say)
        say(f"resuming from {escape(str(checkpoint))}", highlight=False)
    created = prepare_output_dir(out, overwrite, checkpoint, config, fingerprint, accelerator)
    recorded_fingerprint = run_record(out).get("corpus_fingerprint")  # what every checkpoint of the run carries
    # 3. Tokenizer, language/script ids and the model (a new output directory is removed again if this fails).
    with removed_on_error(out, created, accelerator):
        tokenizer = prepare_tokenizer(config, corpus, out, checkpoint, accelerator, say)
        check_tokenizer(tokenizer)
        lang2id, script2id = language_maps(config, corpus, checkpoint)
        check_memory(config, tokenizer, checkpoint, accelerator)
        model = prepare_model(config, tokenizer, lang2id, script2id, checkpoint, corpus=corpus, say=say)
        record_vocab_transfer(out, model, accelerator)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {config.model} ({config.variant}, {n_params / 1e6:.1f}M parameters, vocabulary {len(tokenizer):,}); "
        f"{len(lang2id)} languages x {len(script2id)} scripts in the tables", highlight=False)

    # 4. Data: this rank's chunk stream, MLM masking, held-out chunks for early stopping.
    rank, world = accelerator.process_index, accelerator.num_processes
    sampler = ChunkSampler(corpus, tokenizer, lang2id, script2id, config.max_seq_len, config.alpha,
                           config.seed, rank=rank, cache_bytes=config.cache_bytes, chunking=config.chunking)
    collator = MLMCollator(tokenizer, config.mlm_probability, seed=config.seed * 1000 + rank,
                           random_from=random_pool_for(config.chunking))
    heldout = heldout_examples(corpus, tokenizer, lang2id, script2id, config.max_seq_len,
                               config.eval_chunks, chunking=config.chunking) if config.eval_every > 0 else {}
    if accelerator.is_main_process:
        print_table(sizes_table(corpus, sampler.probs), console)
        for note in corpus_notes(corpus, sampler.probs):  # user paths: no markup or emoji codes interpreted
            console.print(note, style="yellow", markup=False, emoji=False, highlight=False, soft_wrap=True)

    # 5. Optimiser (AdamW as in the paper) and the linear warmup/decay schedule.
    seed_everything(config.seed + rank)
    optimizer = make_optimizer(model, config, fused=accelerator.device.type == "cuda")
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    if config.compile:
        model.compile()  # in place: the module class, its state_dict keys and the checkpoints stay the same
    model, optimizer = accelerator.prepare(model, optimizer)
    state = TrainState()
    if checkpoint is not None:
        state = restore_training(checkpoint, optimizer, scheduler, sampler, collator, accelerator, say)
        truncate_log(out / "log.jsonl", state.step, accelerator)
    if state.step >= config.max_steps and (out / "final").exists():
        say(f"nothing to do: {out} is at step {state.step} and --max-steps is {config.max_steps}")
        return PretrainResult(out, out / "final", state.step, state.tokens_seen, 0.0, None,
                              corpus_languages=corpus.languages)

    # 6. The loop.
    tokens_per_step = config.batch_size * config.grad_accum * config.max_seq_len * world
    say(f"training: {config.max_steps} steps of {config.batch_size} x {config.grad_accum} x {world} chunks of "
        f"{config.max_seq_len} tokens ({tokens_per_step:,} tokens/step); lr {config.lr:g}, seed {config.seed}{threads}",
        highlight=False)
    model.train()
    stop_at = min(config.max_steps, state.step + stop_after_steps) if stop_after_steps else config.max_steps
    start_time, window_start, window_tokens, window_losses = time.time(), time.time(), 0, []
    last_loss = None
    # The prefetcher runs ahead of training; checkpoints and logs take the data-stream state of the last step
    # consumed (batches), never the sampler's live state.
    batches = StepPrefetcher(sampler, collator, config.batch_size, config.grad_accum, state.step + 1,
                             wants_state=stream_state_needed(config, stop_at),
                             pin_memory=accelerator.device.type == "cuda", background=prefetch)
    with make_progress(console, enabled=progress and accelerator.is_main_process) as bar, batches:
        task = bar.add_task("pretraining", total=config.max_steps, completed=state.step, loss="-", tps="-")
        while state.step < stop_at and not state.stopped_early:
            prepared = next(batches)
            loss = train_step(model, optimizer, scheduler, prepared.batches, accelerator, config)
            tokens = prepared.tokens
            state.step += 1
            state.tokens_seen += tokens * world
            window_tokens += tokens * world
            window_losses.append(loss)

            if state.step % config.log_every == 0 or state.step == config.max_steps:
                last_loss = mean_over_ranks(window_losses, accelerator)
                check_finite_loss(last_loss, state.step, out)
                elapsed = time.time() - window_start
                record = {"step": state.step, "loss": round(last_loss, 6), "lr": scheduler.get_last_lr()[0],
                          "tokens": state.tokens_seen, "tokens_per_s": round(window_tokens / max(elapsed, 1e-9), 1),
                          "elapsed_s": round(time.time() - start_time, 2),
                          "chunks_per_language": chunks_per_language(batches.consumed_counts, accelerator)}
                append_log(out / "log.jsonl", record, accelerator)
                bar.update(task, loss=f"{last_loss:.3f}", tps=f"{record['tokens_per_s']:,.0f}")
                window_start, window_tokens, window_losses = time.time(), 0, []
            bar.update(task, completed=state.step)

            if config.eval_every > 0 and state.step % config.eval_every == 0:
                evaluate_and_maybe_stop(model, heldout, tokenizer, state, config, accelerator, out, early_stop, say)
            if state.step % config.save_every == 0 or state.step == stop_at or state.stopped_early:
                save_training_checkpoint(out, model, tokenizer, optimizer, scheduler, batches.consumed_sampler,
                                         batches.consumed_collator, state, config, accelerator,
                                         recorded_fingerprint)

    # 7. The final model: a plain checkpoint every other command loads.
    final_dir = out / "final"
    interrupted = state.step < config.max_steps and not state.stopped_early
    if accelerator.is_main_process and not interrupted:
        from langsamp_cli.model import save_checkpoint

        with atomic_dir(final_dir) as tmp:
            save_checkpoint(accelerator.unwrap_model(model), tokenizer, tmp)
            atomic_write_json(tmp / "trainer_state.json", summary_json(state, config, world))
            from langsamp_cli.model_card import write_model_card  # README.md (HF model card) + loss.png

            write_model_card(tmp, out, {ls: src.train_lines for ls, src in corpus.sources.items()},
                             summary_json(state, config, world), model_ref=str(final_dir))
    write_param_hash(model, accelerator)
    accelerator.wait_for_everyone()
    best_dir = out / "best" if (out / "best").exists() else None
    return PretrainResult(out, None if interrupted else final_dir, state.step, state.tokens_seen,
                          time.time() - start_time, last_loss, state.stopped_early, best_dir, corpus.languages)


# -------------------------------------------------------------------------------------------- setup


def make_accelerator(config: PretrainConfig, console: Console) -> Accelerator:
    """DDP/multi-node/mixed precision via accelerate; half precision only where there is a GPU."""
    mixed_precision = config.mixed_precision
    if mixed_precision != "no" and not torch.cuda.is_available():
        console.print(f"[yellow]warning[/]: --mixed-precision {mixed_precision} needs a GPU; training in fp32 on CPU")
        mixed_precision = "no"
    check_gpus_per_node()
    # accelerate keeps the precision in process-wide state; reset it so a later pretrain in the same process
    # (experiment, a notebook) can use another --mixed-precision. PartialState (device, process group) is kept.
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state()
    # cpu=True on CPU-only machines is what lets accelerate join a torchrun/accelerate-launch group via gloo.
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())


def check_gpus_per_node() -> None:
    """A launcher that started more processes on this node than it has GPUs: one line, not a CUDA error later."""
    local_rank = os.environ.get("LOCAL_RANK")
    if local_rank is None or not local_rank.isdigit() or not torch.cuda.is_available():
        return  # not launched, or the CPU/gloo path (e.g. CUDA_VISIBLE_DEVICES=)
    gpus = torch.cuda.device_count()
    if int(local_rank) >= gpus:
        started = os.environ.get("LOCAL_WORLD_SIZE") or str(int(local_rank) + 1)
        raise LangsampError(f"the launcher started {started} processes on this node but it has {gpus} visible GPU(s) "
                            f"(LOCAL_RANK {local_rank} has none); use --nproc_per_node {gpus} or fewer, or "
                            "CUDA_VISIBLE_DEVICES= to train on CPU")


def make_optimizer(model: torch.nn.Module, config: PretrainConfig, fused: bool = False) -> torch.optim.Optimizer:
    """AdamW with the project's one weight-decay rule (``langsamp_cli.weight_decay``: not on biases, LayerNorm
    weights and the language/script tables).

    ``fused`` (on CUDA): one kernel for the whole update instead of a loop over parameter tensors.
    """
    from langsamp_cli.weight_decay import weight_decay_groups

    groups = weight_decay_groups(model.named_parameters(), config.weight_decay)
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.adam_betas), eps=config.adam_eps,
                             fused=fused or None)


def make_progress(console: Console, enabled: bool):
    """A bar on a terminal; in a log file one plain line per interval (langsamp_cli.progress)."""
    from langsamp_cli.progress import make_progress as shared_progress

    return shared_progress(console, enabled, unit="step", fields={"loss": "loss {}", "tps": "{} tok/s"})


# ------------------------------------------------------------------------------------------ one step


def stream_state_needed(config: PretrainConfig, stop_at: int) -> Callable[[int], bool]:
    """The steps after which a checkpoint can be written (saves, the stop, evaluations that may stop early).

    Only those steps carry a copy of the data-stream state through the prefetch queue (copying the positions
    of hundreds of languages every step would cost host time for nothing).
    """
    def needed(step: int) -> bool:
        return (step % config.save_every == 0 or step in (stop_at, config.max_steps)
                or (config.eval_every > 0 and step % config.eval_every == 0))
    return needed


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, batches: list[Batch],
               accelerator: Accelerator, config: PretrainConfig) -> torch.Tensor:
    """One optimiser step over ``batches`` (the ``grad_accum`` micro-batches of a ``StepPrefetcher`` step).

    Returns the mean micro-batch loss as a tensor on the device: reading it back would make the host wait for the
    device every step, so the loop reads losses only when it logs.
    """
    losses = []
    for micro, batch in enumerate(batches):
        batch = to_device(batch, accelerator.device)
        last = micro == len(batches) - 1
        with nullcontext() if last else accelerator.no_sync(model):
            with accelerator.autocast():
                loss = model(**batch).loss
            accelerator.backward(loss / len(batches))
        losses.append(loss.detach().float())
    if config.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return torch.stack(losses).mean()


def to_device(batch: Batch, device: torch.device) -> dict[str, torch.Tensor | None]:
    """The model's keyword arguments on ``device``, with every decision about their contents taken on the host.

    A batch without padding goes with ``attention_mask=None``: transformers would otherwise test the mask on the
    device (``mask.all()``) to skip it, which makes the host wait for the device every forward pass; with None it
    takes the same no-mask path. The copies are asynchronous on a GPU (the prefetcher pinned the batches).
    """
    non_blocking = device.type == "cuda"
    moved: dict[str, torch.Tensor | None] = {key: value.to(device, non_blocking=non_blocking)
                                             for key, value in batch.items() if key != "attention_mask"}
    mask = batch["attention_mask"]
    moved["attention_mask"] = None if bool(mask.all()) else mask.to(device, non_blocking=non_blocking)
    return moved


def check_finite_loss(loss: float, step: int, out: Path) -> None:
    """A NaN/inf loss trains nothing but NaN weights from here on: stop, naming the step (checkpoints stay)."""
    if not math.isfinite(loss):
        raise LangsampError(f"{out}: the training loss is {loss} at step {step} (diverged); the checkpoints "
                            "before it are intact: lower --lr or set --max-grad-norm, then --resume or --overwrite")


def mean_over_ranks(step_losses: list[torch.Tensor], accelerator: Accelerator) -> float:
    """Mean of the window's per-step losses (one device-to-host read), averaged over ranks."""
    values = torch.stack(step_losses).tolist()
    local = torch.tensor(sum(values) / len(values), device=accelerator.device)
    return float(accelerator.reduce(local, reduction="mean")) if accelerator.num_processes > 1 else float(local)


def chunks_per_language(counts: dict[str, int], accelerator: Accelerator) -> dict[str, int]:
    """Chunks trained per language-script over all ranks (``counts``: this rank's, as of the last step trained)."""
    total: Counter[str] = Counter()
    for rank_counts in gather_object([dict(counts)]):
        total.update(rank_counts)
    return dict(sorted(total.items()))


# -------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def heldout_losses(model: torch.nn.Module, heldout: dict[str, list[Example]], tokenizer: Any,
                   config: PretrainConfig, accelerator: Accelerator) -> dict[str, float]:
    """MLM loss per language on its held-out chunks, with masks fixed by the seed (the same every evaluation)."""
    collator = MLMCollator(tokenizer, config.mlm_probability, seed=config.seed,
                           random_from=random_pool_for(config.chunking))
    model.eval()
    losses = {}
    for lang_script, examples in heldout.items():
        batch = {k: v.to(accelerator.device) for k, v in collator(examples).items()}
        with accelerator.autocast():
            losses[lang_script] = float(model(**batch).loss)
    model.train()
    return losses


def evaluate_and_maybe_stop(model: torch.nn.Module, heldout: dict[str, list[Example]], tokenizer: Any,
                            state: TrainState, config: PretrainConfig, accelerator: Accelerator, out: Path,
                            early_stop: EarlyStopHook | None, say: Callable) -> None:
    """Macro-average held-out loss; keep the best model in ``best/``; stop after ``patience`` bad evaluations.

    Every rank computes the same numbers on the same data, so all ranks take the same decision.
    """
    per_language = heldout_losses(model, heldout, tokenizer, config, accelerator)
    if not per_language:
        return
    mean_loss = float(np.mean(list(per_language.values())))
    improved = mean_loss < state.best_eval
    if improved:
        state.best_eval, state.best_step, state.evals_without_improvement = mean_loss, state.step, 0
        if accelerator.is_main_process:
            from langsamp_cli.model import save_checkpoint

            with atomic_dir(out / "best") as tmp:
                save_checkpoint(accelerator.unwrap_model(model), tokenizer, tmp)
                atomic_write_json(tmp / "trainer_state.json", summary_json(state, config, accelerator.num_processes))
                from langsamp_cli.model_card import write_model_card

                write_model_card(tmp, out, None, summary_json(state, config, accelerator.num_processes),
                                 model_ref=str(out / "best"))
    else:
        state.evals_without_improvement += 1
    metrics = {"eval_loss": mean_loss, **{f"eval_loss/{k}": v for k, v in per_language.items()}}
    if config.patience and state.evals_without_improvement >= config.patience:
        state.stopped_early = True
    if early_stop is not None and early_stop(state.step, metrics):
        state.stopped_early = True
    append_log(out / "log.jsonl", {"step": state.step, "eval_loss": round(mean_loss, 6),
                                   "eval_loss_per_language": {k: round(v, 6) for k, v in per_language.items()},
                                   "best_step": state.best_step, "stopped_early": state.stopped_early}, accelerator)
    if state.stopped_early:
        say(f"early stop at step {state.step}: best held-out loss {state.best_eval:.4f} at step {state.best_step}")


# ------------------------------------------------------------------------------------------ debug


def random_pool_for(chunking: str) -> str:
    """The official pipeline replaces with any vocabulary id (specials included); ours with ordinary ones."""
    return "all" if chunking == "official" else "ordinary"


def parameter_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()


def write_param_hash(model: torch.nn.Module, accelerator: Accelerator) -> None:
    """Debug aid for the multi-process test: ``$LANGSAMP_PARAM_HASH_DIR/rank{r}.sha256``."""
    directory = os.environ.get(PARAM_HASH_ENV)
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(directory) / f"rank{accelerator.process_index}.sha256",
                          parameter_hash(accelerator.unwrap_model(model)) + "\n")
