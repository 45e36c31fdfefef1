"""The LangSAMP pretrainer: MLM with language and script embeddings, resumable, single GPU to multi-node.

Read ``pretrain()`` top to bottom; everything it calls follows it in the order it is used.

- Scale-out is `accelerate`: the same code runs as a plain process, under ``accelerate launch`` or ``torchrun``.
  Every rank draws its own chunk stream (seed, rank); gradients are averaged by DDP; only rank 0 writes.
- One optimiser step = ``grad_accum`` micro-batches of ``batch_size`` chunks per rank (gradient sync on the last).
- Checkpoints ``{output_dir}/checkpoints/step-N/`` hold the model (``model.save_checkpoint`` layout, loadable by
  every command) and ``trainer_state.pt``: optimiser, scheduler, every rank's RNG states (python, numpy, torch,
  cuda), sampler position and masking generator, all as tensors and plain values (read back with
  ``weights_only=True``: a planted pickle cannot run code). ``manifest.json``, written last, lists every file's
  size and sha256. They appear in one rename, so a run killed at any moment resumes (``--resume``) from the
  newest intact one (a damaged newer one is reported and skipped) and continues exactly as if it had never
  stopped. ``run.json`` records the settings (absolute paths) and a fingerprint of the corpus, which a resume
  checks: the same corpus may have moved (``--corpus NEW``), a different one is refused.
- ``{output_dir}/log.jsonl``: one JSON line per logged step (loss, lr, tokens/s, chunks per language) and per
  evaluation (held-out MLM loss per language; early stopping).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from transformers import get_linear_schedule_with_warmup

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json, atomic_write_text
from langsamp_cli.pretrain.collate import MLMCollator, check_tokenizer
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.corpus import (ChunkSampler, Corpus, Example, corpus_notes, heldout_examples, scan_corpus,
                                          sizes_table)
from langsamp_cli.pretrain.fingerprint import corpus_fingerprint, fingerprint_difference
from langsamp_cli.progress import print_table
from langsamp_cli.pretrain import run_lock
from langsamp_cli.pretrain.prefetch import Batch, StepPrefetcher

PARAM_HASH_ENV = "LANGSAMP_PARAM_HASH_DIR"   # debug: every rank writes a hash of its final weights here
STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "manifest.json"   # written last into every checkpoint: names, sizes and sha256 of its files
# Settings a resumed run may change; everything else comes from the checkpoint so the stream stays the same.
RESUMABLE = ("max_steps", "save_every", "keep_last", "log_every", "eval_every", "patience", "mixed_precision",
             "output_dir", "compile")
TOKENIZER_TRAINING_LINES = 2_000_000
# Settings a trained tokenizer depends on (besides the corpus): a restarted run reuses it only when they match.
TOKENIZER_SETTINGS = ("languages", "vocab_size", "eval_every", "eval_lines", "model", "from_scratch", "tokenizer")

EarlyStopHook = Callable[[int, dict[str, float]], bool]


@dataclass
class TrainState:
    """Everything besides model/optimiser that a resumed run needs."""

    step: int = 0
    tokens_seen: int = 0
    best_eval: float = math.inf
    best_step: int = -1
    evals_without_improvement: int = 0
    stopped_early: bool = False


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
                                         batches.consumed_collator, state, config, accelerator)

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


def default_corpus_dir() -> Path:
    from langsamp_cli.demo_corpus import demo_corpus_dir

    return Path(demo_corpus_dir())


def is_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in ("run.json", "checkpoints", "final", "log.jsonl"))


def is_marked_run(path: Path) -> bool:
    """A folder langsamp made for a run: ``run.json``, written the moment a run starts, says so. Only such a
    folder is restarted or overwritten (a user's folder that merely holds a ``checkpoints/`` or a
    ``log.jsonl`` is never touched)."""
    return (path / "run.json").is_file()


# What a run writes at the top of its folder; --overwrite removes these and nothing else.
RUN_ENTRIES = ("run.json", "log.jsonl", "checkpoints", "final", "best", "tokenizer", run_lock.LOCK_FILE)


def checkpoint_dirs(out: Path) -> list[tuple[int, Path]]:
    """Every visible ``checkpoints/step-N``, newest first (temp dirs of an interrupted save are hidden)."""
    found = [(int(p.name[5:]), p) for p in (out / "checkpoints").glob("step-*") if p.name[5:].isdigit()]
    return sorted(found, reverse=True)


def find_resume_point(out: Path, resume: bool, overwrite: bool, say: Callable
                      ) -> tuple[Path | None, dict[str, Any] | None]:
    """Refuse to touch an existing run unless told to; returns the checkpoint to resume from and its state.

    Only looks: ``prepare_output_dir`` changes the directory once the settings and the corpus are checked.
    """
    if resume and overwrite:
        raise LangsampError("--resume and --overwrite exclude each other; pick one")
    if out.exists() and not out.is_dir():
        raise LangsampError(f"{out} is a file, not a directory; pick another --output-dir")
    if resume and not out.exists():
        raise LangsampError(f"{out}: no such run folder; nothing to --resume there (a typo?); pass the run's "
                            "--output-dir, or leave out --resume to start a new run")
    if not (out.exists() and any(out.iterdir())):
        return None, None
    run_lock.check_free(out)
    if not resume and is_run_dir(out) and not is_marked_run(out):
        raise LangsampError(f"{out} is not a pretraining run langsamp marked as its own (no run.json; it holds "
                            f"{', '.join(sorted(p.name for p in out.iterdir())[:5])}); refusing to "
                            f"{'--overwrite' if overwrite else 'start a run in'} it, pick another --output-dir")
    if not is_run_dir(out):
        if resume:
            raise LangsampError(f"{out} is not a pretraining run (no run.json, checkpoints or final model); "
                                "nothing to --resume there, pass the run's --output-dir")
        if overwrite:
            raise LangsampError(f"{out} is not empty and is not a pretraining run; refusing to --overwrite it, "
                                "pick another --output-dir")
        raise LangsampError(f"{out} already exists and is not a pretraining run; pick another --output-dir")
    if resume:
        return resume_point(out, say)
    if overwrite:
        return None, None
    if (out / "final").exists():
        raise LangsampError(f"{out} holds a finished run (final model in {out / 'final'}); pass --overwrite to "
                            "train again from scratch, --resume --max-steps N to train longer, or another "
                            "--output-dir")
    if checkpoint_dirs(out):
        raise LangsampError(f"{out} already exists (last checkpoint {checkpoint_dirs(out)[0][1].name}); pass "
                            "--resume to continue it, --overwrite to start again, or another --output-dir")
    say(f"[yellow]note[/]: {escape(str(out))} holds a run that stopped before its first checkpoint; starting it "
        "again", highlight=False, soft_wrap=True)
    return None, None


def resume_point(out: Path, say: Callable) -> tuple[Path | None, dict[str, Any] | None]:
    """The newest intact checkpoint and its state; newer damaged ones are reported (and replaced later)."""
    damaged: list[tuple[Path, str]] = []
    for _, path in checkpoint_dirs(out):
        problem = checkpoint_problem(path)
        state = None
        if problem is None:
            try:
                state = load_trainer_state(path)
            except LangsampError as err:
                problem = str(err)
        if problem is None:
            for bad, why in damaged:
                say(f"[yellow]warning[/]: {escape(str(bad))} is damaged ({escape(why)}); resuming from "
                    f"{path.name} instead", highlight=False, soft_wrap=True)
            return path, state
        damaged.append((path, problem))
    if damaged:
        bad, why = damaged[0]
        more = f" (and {len(damaged) - 1} older one(s))" if len(damaged) > 1 else ""
        raise LangsampError(f"{bad}: damaged checkpoint ({why}){more}; no intact checkpoint to --resume from, "
                            "pass --overwrite to start again")
    if (out / "final").exists():
        raise LangsampError(f"{out} holds a finished run without checkpoints; nothing to --resume from, pass "
                            "--overwrite to train again or another --output-dir")
    return None, None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path) -> None:
    """``manifest.json``: size and sha256 of every file of a checkpoint (written after all of them)."""
    files = {path.relative_to(directory).as_posix(): {"size": path.stat().st_size, "sha256": file_sha256(path)}
             for path in sorted(directory.rglob("*")) if path.is_file() and path.name != MANIFEST_FILE}
    atomic_write_json(directory / MANIFEST_FILE, {"files": files})


def checkpoint_problem(directory: Path) -> str | None:
    """None when every file of the checkpoint's manifest is there with its size and sha256, else what is wrong."""
    try:
        listed = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))["files"]
        entries = [(str(name), int(meta["size"]), str(meta["sha256"])) for name, meta in listed.items()]
    except FileNotFoundError:
        return f"no {MANIFEST_FILE}: an incomplete copy, or written by a langsamp that did not verify checkpoints"
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"unreadable {MANIFEST_FILE}"
    if STATE_FILE not in listed:
        return f"{MANIFEST_FILE} does not list {STATE_FILE}"
    for name, size, sha256 in entries:
        path = directory / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return f"{MANIFEST_FILE} names a file outside the checkpoint"
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size:,} bytes instead of {size:,}"
        if file_sha256(path) != sha256:
            return f"{name} does not match its sha256"
    return None


def prepare_output_dir(out: Path, overwrite: bool, checkpoint: Path | None, config: PretrainConfig,
                       fingerprint: dict[str, Any], accelerator: Accelerator) -> Path | None:
    """Create, overwrite or tidy the output directory; returns the outermost directory this run made (the
    output directory, or a missing parent of it), None when it existed with content before."""
    from langsamp_cli.contamination.record import read_clean_record  # run.json: what the corpus was cleaned against

    created = first_missing_ancestor(out) or (out if not any(out.iterdir()) else None)
    accelerator.wait_for_everyone()  # every rank has looked before rank 0 changes anything
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        run_lock.acquire(out)  # before anything in it changes: a second process refuses here
        if overwrite:
            remove_run_entries(out)
        remove_leftovers(out, checkpoint)
        if checkpoint is None:
            forget_unfinished_attempt(out, config, fingerprint)
            # At once: a run killed before its first checkpoint (while training its tokenizer) stays restartable.
            atomic_write_json(out / "run.json", {"config": config.to_dict(), "world_size": accelerator.num_processes,
                                                 "corpus_fingerprint": fingerprint,
                                                 "contamination": read_clean_record(config.corpus)})
    accelerator.wait_for_everyone()
    return created


def remove_run_entries(out: Path) -> None:
    """--overwrite: what a run wrote (RUN_ENTRIES, files ``run.json`` names, in ``checkpoints/`` only ``step-N``),
    never a user's file."""
    transfer = run_record(out).get("vocab_transfer")
    listed = transfer.get("rows_file") if isinstance(transfer, dict) else None
    named = [listed] if isinstance(listed, str) and listed not in ("", ".", "..") and Path(listed).name == listed else []
    for name in [*named, *RUN_ENTRIES]:
        if name == "checkpoints" and (out / name).is_dir() and not (out / name).is_symlink():
            for path in [p for _, p in checkpoint_dirs(out)] + list((out / name).glob(".*")):
                remove_path(path)
            if not any((out / name).iterdir()):
                (out / name).rmdir()
        elif name != run_lock.LOCK_FILE:
            remove_path(out / name)
    kept = sorted(p.name for p in out.iterdir() if p.name not in RUN_ENTRIES and not p.name.startswith("."))
    if kept:
        from langsamp_cli.logs import get_logger

        get_logger().info(f"note: --overwrite kept {', '.join(kept[:5])} in {out} (not written by langsamp)")


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_leftovers(out: Path, checkpoint: Path | None) -> None:
    """Temp files and dirs of a killed save (``.tokenizer.*.tmp``, ``.final.*.tmp``, ...), and the damaged
    checkpoints newer than the one resumed (the continuation writes them again)."""
    stale = [*out.glob(".*.tmp"), *out.glob(".*.old"), *(out / "checkpoints").glob(".*")]
    if checkpoint is not None:
        resumed_step = int(checkpoint.name[5:])
        stale += [path for step, path in checkpoint_dirs(out) if step > resumed_step]
    for path in stale:
        remove_path(path)


def run_record(out: Path) -> dict[str, Any]:
    """``run.json`` of the run ({} when missing or unreadable)."""
    try:
        record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def forget_unfinished_attempt(out: Path, config: PretrainConfig, fingerprint: dict[str, Any]) -> None:
    """Before a start without checkpoint: drop an earlier attempt's records; keep the tokenizer it trained only
    when it came from the same corpus and settings (training one can take long)."""
    previous = run_record(out)
    before = json.loads(json.dumps(previous.get("config") or {}))
    now = json.loads(json.dumps(config.to_dict()))
    same = ((previous.get("corpus_fingerprint") or {}).get("digest") == fingerprint["digest"]
            and all(before.get(key) == now[key] for key in TOKENIZER_SETTINGS))
    stale = ["log.jsonl", "run.json", "best"] + ([] if same else ["tokenizer"])
    for name in stale:
        remove_path(out / name)


def first_missing_ancestor(out: Path) -> Path | None:
    """The outermost of ``out`` and its parents that does not exist yet (None when ``out`` exists)."""
    missing = None
    for path in (out, *out.absolute().parents):
        if path.exists():
            break
        missing = path
    return missing


@contextmanager
def removed_on_error(out: Path, created: Path | None, accelerator: Accelerator) -> Iterator[None]:
    """A run that fails while it is being set up leaves nothing behind that it made: the output directory,
    and the parents of it that did not exist before."""
    try:
        yield
    except BaseException:  # Ctrl-C during set-up too: nothing half-made stays behind
        if created is not None and accelerator.is_main_process:
            run_lock.release(out)
            shutil.rmtree(created, ignore_errors=True)
        raise


def run_settings(config: PretrainConfig) -> PretrainConfig:
    """The settings a new run records: absolute local paths (a resume may start in another directory) and
    whether it really starts from scratch (``tiny`` always does)."""
    settings = replace(config)
    settings.corpus = os.path.abspath(os.path.expanduser(config.corpus or default_corpus_dir()))
    for name in ("model", "tokenizer", "lang_map"):
        value = getattr(settings, name)
        if value and Path(value).exists():
            setattr(settings, name, os.path.abspath(value))
    settings.from_scratch = config.is_from_scratch
    return settings


def resumed_corpus(saved_corpus: str | None, given: str | None) -> str:
    """The corpus of a resumed run: ``--corpus`` when given (checked against the fingerprint later), else the
    run's own (absolute) path."""
    if given is not None:
        return os.path.abspath(os.path.expanduser(given))
    path = os.path.abspath(saved_corpus) if saved_corpus else str(default_corpus_dir())
    if not Path(path).is_dir():
        raise LangsampError(f"{path}: the run's corpus is not there any more; pass --corpus DIR where it is now "
                            "(it is checked against the corpus the run started with)")
    return path


def merge_resumed_config(saved: dict[str, Any], current: PretrainConfig, say: Callable) -> PretrainConfig:
    """The checkpoint's settings, except the few a continuation may change (RESUMABLE) and where the corpus is."""
    known = {f.name for f in fields(PretrainConfig)}
    merged = PretrainConfig(**{key: value for key, value in saved.items() if key in known})
    merged.adam_betas = tuple(merged.adam_betas)
    for name in RESUMABLE:
        setattr(merged, name, getattr(current, name))
    merged.corpus = resumed_corpus(saved.get("corpus"), current.corpus)
    # Compared as JSON (a tuple and a list are the same setting), with the paths a new run would record.
    given = json.loads(json.dumps(run_settings(current).to_dict()))
    kept = json.loads(json.dumps(saved))
    ignored = [f"{key} (checkpoint {kept[key]!r}, given {value!r})" for key, value in given.items()
               if key not in RESUMABLE and key != "corpus" and key in kept and value != kept[key]]
    if ignored:
        say(f"[yellow]note[/]: resuming keeps the checkpoint's settings for {escape('; '.join(ignored))}",
            highlight=False, soft_wrap=True)
    return merged.validate()


def check_same_corpus(saved: dict[str, Any], out: Path, config: PretrainConfig, fingerprint: dict[str, Any],
                      say: Callable) -> None:
    """A resumed run trains on the corpus it started with: the same files, wherever they are now."""
    recorded = saved.get("corpus_fingerprint") or run_record(out).get("corpus_fingerprint")
    if not recorded:
        return  # a run from before fingerprints
    started_on = saved["config"].get("corpus")
    difference = fingerprint_difference(recorded, fingerprint)
    if difference is not None:
        raise LangsampError(f"{config.corpus}: not the corpus this run was trained on ({difference}); pass "
                            f"--corpus with that corpus (it was at {started_on})")
    if started_on and os.path.abspath(started_on) != config.corpus:
        say(f"[yellow]note[/]: the corpus moved from {escape(started_on)} to {escape(str(config.corpus))} "
            "(same files); training continues on it", highlight=False, soft_wrap=True)


def tokenizer_training_lines(corpus: Corpus, limit: int = TOKENIZER_TRAINING_LINES) -> list[str]:
    """Up to ``limit`` training lines, the same share from every language (never the held-out lines)."""
    from langsamp_cli.pretrain.corpus import LineReader, skip_lines

    per_language = max(1000, limit // len(corpus.sources))
    lines: list[str] = []
    for source in corpus.sources.values():
        reader = LineReader(source.files)
        texts, _, _ = reader.read(skip_lines(reader, source.heldout_lines), min(per_language, source.train_lines))
        reader.close()
        lines.extend(texts)
    return lines


def prepare_tokenizer(config: PretrainConfig, corpus: Corpus, out: Path, checkpoint: Path | None,
                      accelerator: Accelerator, say: Callable) -> Any:
    """The checkpoint's tokenizer; a given one (``--tokenizer``: from scratch, or continuing with the model moved to
    its vocabulary); the model's (continued pretraining); or train one (rank 0)."""
    from transformers import AutoTokenizer

    source = checkpoint or config.tokenizer or (config.model if not config.is_from_scratch else None)
    if source is not None and source == config.model:
        check_has_tokenizer(config.model, "continuing it needs its tokenizer")
    if source is None:
        target = out / "tokenizer"
        if accelerator.is_main_process and not (target / "tokenizer_config.json").exists():
            from langsamp_cli.tokenizer import train_unigram_tokenizer

            say(f"training a {config.vocab_size:,}-piece Unigram tokenizer on the corpus ...")
            with atomic_dir(target) as tmp:
                trained = train_unigram_tokenizer(tokenizer_training_lines(corpus), config.vocab_size, tmp)
            if len(trained) < config.vocab_size:
                say(f"note: --vocab-size {config.vocab_size:,}: this corpus supports only {len(trained):,} pieces; "
                    f"the tokenizer has {len(trained):,}")
        accelerator.wait_for_everyone()
        source = target
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as err:
        raise LangsampError(f"cannot load a tokenizer from {source} ({str(err).splitlines()[0]}); "
                            "pass a local model directory or --tokenizer DIR") from None


def corpus_maps(corpus: Corpus) -> tuple[dict[str, int], dict[str, int]]:
    """Sorted ISO 639-3 languages and ISO 15924 scripts, ids in that order (as the official code)."""
    langs = sorted({s.lang for s in corpus.sources.values()})
    scripts = sorted({s.script for s in corpus.sources.values()})
    return {lang: i for i, lang in enumerate(langs)}, {script: i for i, script in enumerate(scripts)}


def language_maps(config: PretrainConfig, corpus: Corpus, checkpoint: Path | None
                  ) -> tuple[dict[str, int], dict[str, int]]:
    """Reuse the mapping of --lang-map / the checkpoint / the initial model; else build it from the corpus."""
    from langsamp_cli.model import read_id_map

    if config.lang_map:
        lang2id, script2id = read_id_map(config.lang_map)
        origin = config.lang_map
    else:
        candidates = [p for p in (checkpoint, None if config.is_from_scratch else Path(config.model)) if p]
        meta = next((p / "langsamp.json" for p in candidates if (p / "langsamp.json").is_file()), None)
        if meta is None:
            return corpus_maps(corpus)
        saved = json.loads(meta.read_text(encoding="utf-8"))
        lang2id, script2id, origin = saved["lang2id"], saved["script2id"], str(meta)
    missing = sorted({s.lang_script for s in corpus.sources.values()
                      if s.lang not in lang2id or s.script not in script2id})
    if missing and not config.lang_map:
        from langsamp_cli.pretrain.init_rows import extend_maps

        return extend_maps(lang2id, script2id, missing)  # new rows: init_rows.initialise_from_checkpoint
    if missing:
        raise LangsampError(f"{origin}: the language/script mapping lacks corpus language-script(s) "
                            f"{', '.join(missing)}; drop them with --languages or start from a mapping that has them")
    return lang2id, script2id


def from_scratch_config(config: PretrainConfig, tokenizer: Any) -> Any:
    """tiny -> tiny.tiny_config; anything else -> AutoConfig of that name/path with our vocabulary."""
    ids = dict(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
               bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    if config.model == "tiny":
        from langsamp_cli.tiny import tiny_config

        model_config = tiny_config(len(tokenizer), max_positions=config.max_seq_len + 2)
    else:
        from transformers import AutoConfig

        try:
            model_config = AutoConfig.from_pretrained(config.model)
        except (OSError, ValueError) as err:
            raise LangsampError(f"--model {config.model}: no model config found ({str(err).splitlines()[0]}); "
                                "use tiny, a local model directory or a hub name") from None
    for key, value in ids.items():
        setattr(model_config, key, value)
    return model_config


def prepare_model(config: PretrainConfig, tokenizer: Any, lang2id: dict[str, int], script2id: dict[str, int],
                  checkpoint: Path | None, corpus: Corpus | None = None, say: Callable = print) -> torch.nn.Module:
    from langsamp_cli.model import build_model, load_checkpoint, usable_positions

    if checkpoint is not None:
        model = load_checkpoint(checkpoint)
    elif config.is_from_scratch:
        torch.manual_seed(config.seed)  # the same initial weights on every rank and in every rerun
        model = build_model(config.model, lang2id, script2id, variant=config.variant,
                            from_scratch_config=from_scratch_config(config, tokenizer))
    else:
        torch.manual_seed(config.seed)
        model = build_model(config.model, lang2id, script2id, variant=config.variant)
        if config.tokenizer:  # rows moved to the given tokenizer's vocabulary (pretrain/vocab_transfer.py)
            model.vocab_transfer = move_to_tokenizer(model, config, tokenizer, say)
        if corpus is not None:  # rows of languages/scripts the initial model lacks (--init-new-languages)
            from langsamp_cli.pretrain.init_rows import corpus_scripts, initialise_from_checkpoint

            initialise_from_checkpoint(model, config.model, config.lang_map, config.init_new_languages,
                                       corpus_scripts(corpus.sources), say)
    limit = usable_positions(model.mlm.config)
    if limit is not None and config.max_seq_len > limit:
        raise LangsampError(f"--max-seq-len {config.max_seq_len} exceeds what {config.model} supports "
                            f"({limit}); lower it")
    return model


def move_to_tokenizer(model: torch.nn.Module, config: PretrainConfig, tokenizer: Any, say: Callable) -> Any:
    """Resize the token rows of ``model`` from its own tokenizer's vocabulary to ``tokenizer``'s."""
    from transformers import AutoTokenizer

    from langsamp_cli.pretrain.vocab_transfer import transfer_vocabulary

    check_has_tokenizer(config.model, "its pieces are matched with --tokenizer's by string")
    try:
        own = AutoTokenizer.from_pretrained(str(config.model))
    except (OSError, ValueError) as err:
        raise LangsampError(f"--model {config.model}: no tokenizer beside the weights ({str(err).splitlines()[0]}), "
                            "so the rows of --tokenizer's pieces cannot be matched; use a model folder with its "
                            "tokenizer files") from None
    transfer = transfer_vocabulary(model.mlm, own, tokenizer, config.init_new_tokens or "random", config.seed,
                                   tokenizer=str(config.tokenizer), model=str(config.model))
    say(escape(transfer.line()), highlight=False)
    return transfer


def check_has_tokenizer(model: str, why: str) -> None:
    """A local model folder without tokenizer files: one line (transformers would make up a 5-token one)."""
    from langsamp_cli.model_source import TOKENIZER_VOCAB_FILES

    path = Path(str(model)).expanduser()
    if path.is_dir() and not any((path / name).is_file() for name in TOKENIZER_VOCAB_FILES):
        raise LangsampError(f"--model {model}: no tokenizer files in the folder ({why}); copy the tokenizer it was "
                            "trained with into it (tokenizer.save_pretrained(folder)), or pass --from-scratch "
                            "--tokenizer DIR to train from its config only")


def record_vocab_transfer(out: Path, model: torch.nn.Module, accelerator: Accelerator) -> None:
    """``vocab_transfer.tsv`` (every new row and what it was made from) and its summary in ``run.json``."""
    from langsamp_cli.pretrain.vocab_transfer import SOURCES_FILE, write_sources

    transfer = getattr(model, "vocab_transfer", None)
    if transfer is None or isinstance(transfer, dict) or not accelerator.is_main_process:
        return
    write_sources(transfer, out / SOURCES_FILE)
    record = run_record(out)
    record["vocab_transfer"] = {**transfer.record(), "rows_file": SOURCES_FILE}
    atomic_write_json(out / "run.json", record)


def check_memory(config: PretrainConfig, tokenizer: Any, checkpoint: Path | None, accelerator: Accelerator) -> None:
    """Refuse a model that surely cannot train in this machine's memory, before anything is built."""
    from langsamp_cli.pretrain.memory import check_fits

    model_config = training_model_config(config, tokenizer, checkpoint)
    if model_config is not None:
        check_fits(model_config, config.batch_size, config.max_seq_len, accelerator.device, str(config.model))


def training_model_config(config: PretrainConfig, tokenizer: Any, checkpoint: Path | None) -> Any:
    """The config of the model about to be built or loaded (None when it cannot be read without loading)."""
    if checkpoint is None and config.is_from_scratch:
        return from_scratch_config(config, tokenizer)
    from transformers import AutoConfig

    try:
        model_config = AutoConfig.from_pretrained(str(checkpoint or config.model), local_files_only=True)
    except (OSError, ValueError):
        return None
    if checkpoint is None and config.tokenizer:  # continuing with --tokenizer: the table grows to its vocabulary
        model_config.vocab_size = max(int(getattr(model_config, "vocab_size", 0) or 0), len(tokenizer))
    return model_config


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


# -------------------------------------------------------------------------------------- checkpoints


def rng_states() -> dict[str, Any]:
    """Every generator's state as tensors and plain values (loadable with ``torch.load(weights_only=True)``)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {"python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64), "gauss": gauss},
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_states(states: dict[str, Any]) -> None:
    python, numpy = states["python"], states["numpy"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss"]))
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def plain(value: Any) -> Any:
    """numpy values -> Python ones, dict subclasses -> dicts: a state ``weights_only=True`` can load."""
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if type(value) is tuple:
        return tuple(plain(item) for item in value)
    if isinstance(value, (list, tuple)):  # lists, and tuple subclasses (named tuples) as lists
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def summary_json(state: TrainState, config: PretrainConfig, world_size: int) -> dict[str, Any]:
    return {"step": state.step, "tokens_seen": state.tokens_seen, "best_step": state.best_step,
            "best_eval_loss": None if math.isinf(state.best_eval) else state.best_eval,
            "stopped_early": state.stopped_early, "world_size": world_size, "config": config.to_dict()}


def save_training_checkpoint(out: Path, model: torch.nn.Module, tokenizer: Any, optimizer: Any, scheduler: Any,
                             sampler: ChunkSampler, collator: MLMCollator, state: TrainState,
                             config: PretrainConfig, accelerator: Accelerator) -> None:
    """``checkpoints/step-N``: model + trainer state in one atomic rename; then prune to the last K."""
    per_rank = gather_object([{"sampler": plain(sampler.state_dict()), "collator": plain(collator.state_dict()),
                               "rng": rng_states()}])
    if accelerator.is_main_process:
        from langsamp_cli.model import save_checkpoint

        check_checkpoint_space(out, accelerator.unwrap_model(model))
        target = out / "checkpoints" / f"step-{state.step}"
        with atomic_dir(target) as tmp:
            save_checkpoint(accelerator.unwrap_model(model), tokenizer, tmp)
            torch.save({"step": state.step, "train_state": vars(state).copy(), "config": config.to_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "ranks": per_rank, "world_size": accelerator.num_processes,
                        "corpus_fingerprint": run_record(out).get("corpus_fingerprint")}, tmp / STATE_FILE)
            atomic_write_json(tmp / "trainer_state.json", summary_json(state, config, accelerator.num_processes))
            write_manifest(tmp)  # last: a checkpoint whose files do not match it is damaged
        prune_checkpoints(out / "checkpoints", config.keep_last)
    accelerator.wait_for_everyone()


def checkpoint_bytes(out: Path, model: torch.nn.Module) -> int:
    """Roughly what one more checkpoint takes: the newest one's size, or else the weights and AdamW's two
    moments (three copies of the parameters)."""
    newest = checkpoint_dirs(out)
    if newest:
        return sum(path.stat().st_size for path in newest[0][1].rglob("*") if path.is_file())
    return 3 * sum(p.numel() * p.element_size() for p in model.parameters())


def check_checkpoint_space(out: Path, model: torch.nn.Module) -> None:
    """Refuse to start a checkpoint that cannot fit: one line with the space needed and free; nothing is written,
    so the previous checkpoint stays the newest intact one."""
    from langsamp_cli.failures import free_bytes, size_text

    needed, free = checkpoint_bytes(out, model), free_bytes(out)
    if free is not None and free < needed:
        raise LangsampError(f"{out / 'checkpoints'}: a checkpoint needs about {size_text(needed)} but only {size_text(free)} "
                            "are free there; free some space (or lower --keep-last) and rerun with --resume: the "
                            "previous checkpoint is intact")


def prune_checkpoints(directory: Path, keep_last: int) -> None:
    steps = sorted((int(p.name[5:]), p) for p in directory.glob("step-*") if p.name[5:].isdigit())
    for _, path in steps[:-keep_last]:
        hidden = path.with_name(f".{path.name}.deleting")
        os.replace(path, hidden)  # disappears from view in one step, then is removed
        shutil.rmtree(hidden, ignore_errors=True)


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """The trainer state, read with ``weights_only=True``: tensors and plain containers only, never code."""
    path = checkpoint / STATE_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, empty, not a torch file, or objects other than tensors/plain values
        if isinstance(err, pickle.UnpicklingError) and "weights only" in str(err).lower():
            raise LangsampError(f"{path}: holds objects other than tensors and plain values; refused (loading it "
                                "could run code)") from None
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:160]
        raise LangsampError(f"{path}: not a readable trainer state ({first})") from None
    expected = {"step", "train_state", "config", "optimizer", "scheduler", "ranks", "world_size"}
    if not isinstance(state, dict) or not expected <= set(state):
        raise LangsampError(f"{path}: not a trainer state of this langsamp version")
    return state


def restore_training(checkpoint: Path, optimizer: Any, scheduler: Any, sampler: ChunkSampler, collator: MLMCollator,
                     accelerator: Accelerator, say: Callable) -> TrainState:
    saved = load_trainer_state(checkpoint)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    rank = accelerator.process_index
    if saved["world_size"] == accelerator.num_processes:
        mine = saved["ranks"][rank]
        sampler.load_state_dict(mine["sampler"])
        collator.load_state_dict(mine["collator"])
        set_rng_states(mine["rng"])
    else:
        say(f"[yellow]note[/]: the checkpoint was written by {saved['world_size']} process(es), this run has "
            f"{accelerator.num_processes}: data streams restart with fresh seeds (seed, rank, step)")
        fresh = saved["config"]["seed"] * 7919 + saved["step"]
        sampler.rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([fresh, rank])))
        seed_everything(fresh + rank)
    return TrainState(**saved["train_state"])


# ---------------------------------------------------------------------------------------- logging


def append_log(path: Path, record: dict[str, Any], accelerator: Accelerator) -> None:
    if accelerator.is_main_process:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()


def read_log(path: Path) -> list[dict[str, Any]]:
    """Records of log.jsonl; a line cut short by a kill is ignored."""
    records = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def truncate_log(path: Path, step: int, accelerator: Accelerator) -> None:
    """Drop records past the resumed checkpoint: the continuation logs those steps again."""
    if accelerator.is_main_process and path.exists():
        kept = [r for r in read_log(path) if r.get("step", 0) <= step]
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    accelerator.wait_for_everyone()


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


def language_counts_table(log_path: Path) -> Table | None:
    """Chunks drawn per language over the whole run (from the last log record)."""
    records = [r for r in read_log(log_path) if "chunks_per_language" in r]
    if not records:
        return None
    counts = records[-1]["chunks_per_language"]
    total = sum(counts.values()) or 1
    table = Table(title="chunks trained per language-script", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("language-script")
    table.add_column("chunks", justify="right")
    table.add_column("share", justify="right")
    for lang_script, count in counts.items():
        table.add_row(lang_script, f"{count:,}", f"{count / total:.1%}")
    return table
