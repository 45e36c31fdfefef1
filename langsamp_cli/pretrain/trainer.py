"""The LangSAMP pretrainer: MLM with language and script embeddings, resumable, single GPU to multi-node.

Read ``pretrain()`` top to bottom; everything it calls follows it in the order it is used.

- Scale-out is `accelerate`: the same code runs as a plain process, under ``accelerate launch`` or ``torchrun``.
  Every rank draws its own chunk stream (seed, rank); gradients are averaged by DDP; only rank 0 writes.
- One optimiser step = ``grad_accum`` micro-batches of ``batch_size`` chunks per rank (gradient sync on the last).
- Checkpoints ``{output_dir}/checkpoints/step-N/`` hold the model (``model.save_checkpoint`` layout, loadable by
  every command) and ``trainer_state.pt``: optimiser, scheduler, every rank's RNG states (python, numpy, torch,
  cuda), sampler position and masking generator. They appear in one rename, so a run killed at any moment
  resumes (``--resume``) from the last complete one and continues exactly as if it had never stopped.
- ``{output_dir}/log.jsonl``: one JSON line per logged step (loss, lr, tokens/s, chunks per language) and per
  evaluation (held-out MLM loss per language; early stopping).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from transformers import get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json, atomic_write_text
from langsamp_cli.pretrain.collate import MLMCollator
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.corpus import ChunkSampler, Corpus, Example, heldout_examples, scan_corpus, sizes_table

PARAM_HASH_ENV = "LANGSAMP_PARAM_HASH_DIR"   # debug: every rank writes a hash of its final weights here
STATE_FILE = "trainer_state.pt"
# Settings a resumed run may change; everything else comes from the checkpoint so the stream stays the same.
RESUMABLE = ("max_steps", "save_every", "keep_last", "log_every", "eval_every", "patience", "mixed_precision",
             "output_dir")
TOKENIZER_TRAINING_LINES = 2_000_000

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
             early_stop: EarlyStopHook | None = None, stop_after_steps: int | None = None) -> PretrainResult:
    """Pretrain (or continue pretraining) a LangSAMP masked LM as described by ``config``.

    ``stop_after_steps`` interrupts the run after that many steps of this invocation, with a checkpoint but no
    ``final/`` (a time-boxed job; ``--resume`` continues it exactly).
    """
    console = console or Console(stderr=True)
    hf_logging.disable_progress_bar()  # no per-save "Writing model shards" bars between our own progress output
    accelerator = make_accelerator(config, console)
    say = console.print if accelerator.is_main_process else (lambda *a, **k: None)
    out = Path(config.output_dir)

    # 1. Output directory: fresh, overwritten, or resumed from the last complete checkpoint.
    checkpoint = prepare_output_dir(out, resume, overwrite, accelerator)
    if checkpoint is not None:
        config = merge_resumed_config(load_trainer_state(checkpoint)["config"], config, say)
        say(f"resuming from {checkpoint}", highlight=False)

    # 2. Corpus: files, sizes, sampling probabilities (shown before anything is trained).
    corpus = scan_corpus(config.corpus or default_corpus_dir(), config.languages,
                         eval_lines=config.eval_lines if config.eval_every > 0 else 0)
    # 3. Tokenizer, language/script ids and the model.
    tokenizer = prepare_tokenizer(config, corpus, out, checkpoint, accelerator, say)
    lang2id, script2id = language_maps(config, corpus, checkpoint)
    model = prepare_model(config, tokenizer, lang2id, script2id, checkpoint)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"model: {config.model} ({config.variant}, {n_params / 1e6:.1f}M parameters, vocabulary {len(tokenizer):,}); "
        f"{len(lang2id)} languages x {len(script2id)} scripts in the tables", highlight=False)

    # 4. Data: this rank's chunk stream, MLM masking, held-out chunks for early stopping.
    rank, world = accelerator.process_index, accelerator.num_processes
    sampler = ChunkSampler(corpus, tokenizer, lang2id, script2id, config.max_seq_len, config.alpha,
                           config.seed, rank=rank, cache_bytes=config.cache_bytes)
    collator = MLMCollator(tokenizer, config.mlm_probability, seed=config.seed * 1000 + rank)
    heldout = heldout_examples(corpus, tokenizer, lang2id, script2id, config.max_seq_len,
                               config.eval_chunks) if config.eval_every > 0 else {}
    if accelerator.is_main_process:
        console.print(sizes_table(corpus, sampler.probs))
        for path, count in ((p, c) for s in corpus.sources.values() for p, c in s.undecodable.items()):
            console.print(f"[yellow]skipped[/] {count} undecodable line(s) in {path}", highlight=False)

    # 5. Optimiser (AdamW as in the paper) and the linear warmup/decay schedule.
    seed_everything(config.seed + rank)
    optimizer = make_optimizer(model, config)
    scheduler = get_linear_schedule_with_warmup(optimizer, config.warmup_steps, config.max_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    state = TrainState()
    if checkpoint is not None:
        state = restore_training(checkpoint, optimizer, scheduler, sampler, collator, accelerator, say)
        truncate_log(out / "log.jsonl", state.step, accelerator)
    elif accelerator.is_main_process:
        atomic_write_json(out / "run.json", {"config": config.to_dict(), "world_size": world})
    if state.step >= config.max_steps and (out / "final").exists():
        say(f"nothing to do: {out} is at step {state.step} and --max-steps is {config.max_steps}")
        return PretrainResult(out, out / "final", state.step, state.tokens_seen, 0.0, None,
                              corpus_languages=corpus.languages)

    # 6. The loop.
    tokens_per_step = config.batch_size * config.grad_accum * config.max_seq_len * world
    say(f"training: {config.max_steps} steps of {config.batch_size} x {config.grad_accum} x {world} chunks of "
        f"{config.max_seq_len} tokens ({tokens_per_step:,} tokens/step); lr {config.lr:g}, seed {config.seed}",
        highlight=False)
    model.train()
    stop_at = min(config.max_steps, state.step + stop_after_steps) if stop_after_steps else config.max_steps
    start_time, window_start, window_tokens, window_losses = time.time(), time.time(), 0, []
    last_loss = None
    with make_progress(console, enabled=progress and accelerator.is_main_process) as bar:
        task = bar.add_task("pretraining", total=config.max_steps, completed=state.step, loss="-", tps="-")
        while state.step < stop_at and not state.stopped_early:
            loss, tokens = train_step(model, optimizer, scheduler, sampler, collator, accelerator, config)
            state.step += 1
            state.tokens_seen += tokens * world
            window_tokens += tokens * world
            window_losses.append(loss)

            if state.step % config.log_every == 0 or state.step == config.max_steps:
                last_loss = mean_over_ranks(window_losses, accelerator)
                elapsed = time.time() - window_start
                record = {"step": state.step, "loss": round(last_loss, 6), "lr": scheduler.get_last_lr()[0],
                          "tokens": state.tokens_seen, "tokens_per_s": round(window_tokens / max(elapsed, 1e-9), 1),
                          "elapsed_s": round(time.time() - start_time, 2),
                          "chunks_per_language": chunks_per_language(sampler, accelerator)}
                append_log(out / "log.jsonl", record, accelerator)
                bar.update(task, loss=f"{last_loss:.3f}", tps=f"{record['tokens_per_s']:,.0f}")
                window_start, window_tokens, window_losses = time.time(), 0, []
            bar.update(task, completed=state.step)

            if config.eval_every > 0 and state.step % config.eval_every == 0:
                evaluate_and_maybe_stop(model, heldout, tokenizer, state, config, accelerator, out, early_stop, say)
            if state.step % config.save_every == 0 or state.step == stop_at or state.stopped_early:
                save_training_checkpoint(out, model, tokenizer, optimizer, scheduler, sampler, collator, state,
                                         config, accelerator)

    # 7. The final model: a plain checkpoint every other command loads.
    final_dir = out / "final"
    interrupted = state.step < config.max_steps and not state.stopped_early
    if accelerator.is_main_process and not interrupted:
        from langsamp_cli.model import save_checkpoint

        with atomic_dir(final_dir) as tmp:
            save_checkpoint(accelerator.unwrap_model(model), tokenizer, tmp)
            atomic_write_json(tmp / "trainer_state.json", summary_json(state, config, world))
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
    # cpu=True on CPU-only machines is what lets accelerate join a torchrun/accelerate-launch group via gloo.
    return Accelerator(mixed_precision=mixed_precision, cpu=not torch.cuda.is_available())


def default_corpus_dir() -> Path:
    from langsamp_cli.demo_corpus import demo_corpus_dir

    return Path(demo_corpus_dir())


def is_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in ("run.json", "checkpoints", "final", "log.jsonl"))


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete ``checkpoints/step-N`` (temp dirs of an interrupted save are hidden and ignored)."""
    steps = []
    for path in (out / "checkpoints").glob("step-*"):
        suffix = path.name.removeprefix("step-")
        if suffix.isdigit() and (path / STATE_FILE).is_file():
            steps.append((int(suffix), path))
    return max(steps)[1] if steps else None


def prepare_output_dir(out: Path, resume: bool, overwrite: bool, accelerator: Accelerator) -> Path | None:
    """Refuse to touch an existing run unless told to; returns the checkpoint to resume from."""
    if resume and overwrite:
        raise LangsampError("--resume and --overwrite exclude each other; pick one")
    exists = out.exists() and any(out.iterdir())
    checkpoint = latest_checkpoint(out) if exists and resume else None
    if exists and not resume and not overwrite:
        if (out / "final").exists():
            raise LangsampError(f"{out} holds a finished run (final model in {out / 'final'}); pass --overwrite to "
                                "train again from scratch, --resume --max-steps N to train longer, or another "
                                "--output-dir")
        last = latest_checkpoint(out)
        where = f"last checkpoint {last.name}" if last else "no checkpoint yet"
        raise LangsampError(f"{out} already exists ({where}); pass --resume to continue it, --overwrite to start "
                            "again, or another --output-dir")
    if exists and overwrite and not is_run_dir(out):
        raise LangsampError(f"{out} is not empty and is not a pretraining run; refusing to --overwrite it, "
                            "pick another --output-dir")
    accelerator.wait_for_everyone()  # every rank has looked before rank 0 changes anything
    if accelerator.is_main_process:
        if exists and overwrite:
            shutil.rmtree(out)
        out.mkdir(parents=True, exist_ok=True)
        for stale in (out / "checkpoints").glob(".*"):  # temp dirs (nested ones too) of a killed save
            shutil.rmtree(stale, ignore_errors=True)
        if checkpoint is None:  # records of an earlier attempt that never reached a checkpoint
            (out / "log.jsonl").unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return checkpoint


def merge_resumed_config(saved: dict[str, Any], current: PretrainConfig, say: Callable) -> PretrainConfig:
    """The checkpoint's settings, except the few a continuation may change (RESUMABLE)."""
    merged = PretrainConfig(**{**saved, "adam_betas": tuple(saved["adam_betas"])})
    for name in RESUMABLE:
        setattr(merged, name, getattr(current, name))
    given = json.loads(json.dumps(current.to_dict()))
    ignored = [f"{key} (checkpoint {saved[key]!r}, given {value!r})" for key, value in given.items()
               if key not in RESUMABLE and key in saved and value != saved[key]]
    if ignored:
        say(f"[yellow]note[/]: resuming keeps the checkpoint's settings for {'; '.join(ignored)}", highlight=False)
    return merged.validate()


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
    """The checkpoint's tokenizer; the model's (continued pretraining); a given one; or train one (rank 0)."""
    from transformers import AutoTokenizer

    source = checkpoint or (config.model if not config.is_from_scratch else config.tokenizer)
    if source is None:
        target = out / "tokenizer"
        if accelerator.is_main_process and not (target / "tokenizer_config.json").exists():
            from langsamp_cli.tokenizer import train_unigram_tokenizer

            say(f"training a {config.vocab_size:,}-piece Unigram tokenizer on the corpus ...")
            with atomic_dir(target) as tmp:
                train_unigram_tokenizer(tokenizer_training_lines(corpus), config.vocab_size, tmp)
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
                  checkpoint: Path | None) -> torch.nn.Module:
    from langsamp_cli.model import build_model, load_checkpoint

    if checkpoint is not None:
        model = load_checkpoint(checkpoint)
    elif config.is_from_scratch:
        torch.manual_seed(config.seed)  # the same initial weights on every rank and in every rerun
        model = build_model(config.model, lang2id, script2id, variant=config.variant,
                            from_scratch_config=from_scratch_config(config, tokenizer))
    else:
        torch.manual_seed(config.seed)
        model = build_model(config.model, lang2id, script2id, variant=config.variant)
    positions = getattr(model.mlm.config, "max_position_embeddings", None)
    if positions is not None and config.max_seq_len > positions - 2 and model.mlm.config.model_type != "bert":
        raise LangsampError(f"--max-seq-len {config.max_seq_len} exceeds what {config.model} supports "
                            f"({positions - 2}); lower it")
    return model


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model: torch.nn.Module, config: PretrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, LayerNorm weights and the language/script tables."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        skip = param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name or "lang_embeddings" in name \
            or "script_embeddings" in name
        (no_decay if skip else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.adam_betas), eps=config.adam_eps)


def make_progress(console: Console, enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[tps]} tok/s"),
                    TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                    console=console, disable=not enabled, transient=False)


# ------------------------------------------------------------------------------------------ one step


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, sampler: ChunkSampler,
               collator: MLMCollator, accelerator: Accelerator, config: PretrainConfig) -> tuple[float, int]:
    """``grad_accum`` micro-batches, one optimiser step; returns (mean micro-batch loss, tokens on this rank)."""
    losses, tokens = [], 0
    for micro in range(config.grad_accum):
        batch = collator(sampler.next_batch(config.batch_size))
        tokens += int(batch["attention_mask"].sum())
        batch = {key: value.to(accelerator.device) for key, value in batch.items()}
        last = micro == config.grad_accum - 1
        with nullcontext() if last else accelerator.no_sync(model):
            with accelerator.autocast():
                loss = model(**batch).loss
            accelerator.backward(loss / config.grad_accum)
        losses.append(loss.detach().float())
    if config.max_grad_norm > 0:
        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return float(torch.stack(losses).mean()), tokens


def mean_over_ranks(values: list[float], accelerator: Accelerator) -> float:
    local = torch.tensor(sum(values) / len(values), device=accelerator.device)
    return float(accelerator.reduce(local, reduction="mean")) if accelerator.num_processes > 1 else float(local)


def chunks_per_language(sampler: ChunkSampler, accelerator: Accelerator) -> dict[str, int]:
    total: Counter[str] = Counter()
    for counts in gather_object([dict(sampler.counts)]):
        total.update(counts)
    return dict(sorted(total.items()))


# -------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def heldout_losses(model: torch.nn.Module, heldout: dict[str, list[Example]], tokenizer: Any,
                   config: PretrainConfig, accelerator: Accelerator) -> dict[str, float]:
    """MLM loss per language on its held-out chunks, with masks fixed by the seed (the same every evaluation)."""
    collator = MLMCollator(tokenizer, config.mlm_probability, seed=config.seed)
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
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def summary_json(state: TrainState, config: PretrainConfig, world_size: int) -> dict[str, Any]:
    return {"step": state.step, "tokens_seen": state.tokens_seen, "best_step": state.best_step,
            "best_eval_loss": None if math.isinf(state.best_eval) else state.best_eval,
            "stopped_early": state.stopped_early, "world_size": world_size, "config": config.to_dict()}


def save_training_checkpoint(out: Path, model: torch.nn.Module, tokenizer: Any, optimizer: Any, scheduler: Any,
                             sampler: ChunkSampler, collator: MLMCollator, state: TrainState,
                             config: PretrainConfig, accelerator: Accelerator) -> None:
    """``checkpoints/step-N``: model + trainer state in one atomic rename; then prune to the last K."""
    per_rank = gather_object([{"sampler": sampler.state_dict(), "collator": collator.state_dict(),
                               "rng": rng_states()}])
    if accelerator.is_main_process:
        from langsamp_cli.model import save_checkpoint

        target = out / "checkpoints" / f"step-{state.step}"
        with atomic_dir(target) as tmp:
            save_checkpoint(accelerator.unwrap_model(model), tokenizer, tmp)
            torch.save({"step": state.step, "train_state": vars(state).copy(), "config": config.to_dict(),
                        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "ranks": per_rank, "world_size": accelerator.num_processes}, tmp / STATE_FILE)
            atomic_write_json(tmp / "trainer_state.json", summary_json(state, config, accelerator.num_processes))
        prune_checkpoints(out / "checkpoints", config.keep_last)
    accelerator.wait_for_everyone()


def prune_checkpoints(directory: Path, keep_last: int) -> None:
    steps = sorted((int(p.name[5:]), p) for p in directory.glob("step-*") if p.name[5:].isdigit())
    for _, path in steps[:-keep_last]:
        hidden = path.with_name(f".{path.name}.deleting")
        os.replace(path, hidden)  # disappears from view in one step, then is removed
        shutil.rmtree(hidden, ignore_errors=True)


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / STATE_FILE, map_location="cpu", weights_only=False)


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
