"""Training checkpoints: ``{run}/checkpoints/step-N/`` written, verified, pruned and resumed from.

A checkpoint holds the model (``model.save_checkpoint`` layout, loadable by every command) and
``trainer_state.pt``: optimiser, scheduler, every rank's RNG states (python, numpy, torch, cuda), sampler position
and masking generator, all as tensors and plain values (read back with ``weights_only=True``: a planted pickle
cannot run code). ``manifest.json``, written last, lists every file's size and sha256. A checkpoint appears in one
rename, so a run killed at any moment resumes from the newest intact one (a damaged newer one is reported and
skipped) and continues exactly as if it had never stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import gather_object
from rich.markup import escape

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_dir, atomic_write_json
from langsamp_cli.pretrain.collate import MLMCollator
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.corpus import ChunkSampler

STATE_FILE = "trainer_state.pt"
MANIFEST_FILE = "manifest.json"   # written last into every checkpoint: names, sizes and sha256 of its files


@dataclass
class TrainState:
    """Everything besides model/optimiser that a resumed run needs."""

    step: int = 0
    tokens_seen: int = 0
    best_eval: float = math.inf
    best_step: int = -1
    evals_without_improvement: int = 0
    stopped_early: bool = False


def checkpoint_dirs(out: Path) -> list[tuple[int, Path]]:
    """Every visible ``checkpoints/step-N``, newest first (temp dirs of an interrupted save are hidden)."""
    found = [(int(p.name[5:]), p) for p in (out / "checkpoints").glob("step-*") if p.name[5:].isdigit()]
    return sorted(found, reverse=True)


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


def save_training_checkpoint(out: Path, model: torch.nn.Module, tokenizer: Any, optimizer: Any, scheduler: Any,
                             sampler: ChunkSampler, collator: MLMCollator, state: TrainState,
                             config: PretrainConfig, accelerator: Accelerator,
                             corpus_fingerprint: dict[str, Any] | None) -> None:
    """``checkpoints/step-N``: model + trainer state in one atomic rename; then prune to the last K.

    ``corpus_fingerprint``: the one ``run.json`` recorded when the run started (a resume compares it).
    """
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
                        "corpus_fingerprint": corpus_fingerprint}, tmp / STATE_FILE)
            atomic_write_json(tmp / "trainer_state.json", summary_json(state, config, accelerator.num_processes))
            write_manifest(tmp)  # last: a checkpoint whose files do not match it is damaged
        prune_checkpoints(out / "checkpoints", config.keep_last)
    accelerator.wait_for_everyone()


def summary_json(state: TrainState, config: PretrainConfig, world_size: int) -> dict[str, Any]:
    return {"step": state.step, "tokens_seen": state.tokens_seen, "best_step": state.best_step,
            "best_eval_loss": None if math.isinf(state.best_eval) else state.best_eval,
            "stopped_early": state.stopped_early, "world_size": world_size, "config": config.to_dict()}


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
