"""The run folder: whether a run may start, restart, be overwritten or resumed there; what it records and removes.

``{output_dir}/run.json`` records the settings (absolute paths) and a fingerprint of the corpus, which a resume
checks: the same corpus may have moved (``--corpus NEW``), a different one is refused. ``log.jsonl`` holds one JSON
line per logged step (loss, lr, tokens/s, chunks per language) and per evaluation (held-out MLM loss per
language; early stopping). One process at a time holds the folder (``run_lock``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from rich import box
from rich.markup import escape
from rich.table import Table

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_json, atomic_write_text
from langsamp_cli.pretrain import run_lock
from langsamp_cli.pretrain.checkpoints import checkpoint_dirs, resume_point
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.fingerprint import fingerprint_difference

# Settings a resumed run may change; everything else comes from the checkpoint so the stream stays the same.
RESUMABLE = ("max_steps", "save_every", "keep_last", "log_every", "eval_every", "patience", "mixed_precision",
             "output_dir", "compile")
# Settings a trained tokenizer depends on (besides the corpus): a restarted run reuses it only when they match.
TOKENIZER_SETTINGS = ("languages", "vocab_size", "eval_every", "eval_lines", "model", "from_scratch", "tokenizer")
# What a run writes at the top of its folder; --overwrite removes these and nothing else.
RUN_ENTRIES = ("run.json", "log.jsonl", "checkpoints", "final", "best", "tokenizer", run_lock.LOCK_FILE)


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
