"""Running the stages: skip finished ones, run the rest with their output in logs/, record the state."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from langsamp_cli.errors import LangsampError
from langsamp_cli.experiment.config import ExperimentConfig, missing_paths
from langsamp_cli.experiment.stages import (
    ExperimentState,
    Layout,
    Stage,
    _duration,
    _now,
    plan_stages,
    pretrain_yaml_text,
    report_signature,
    stage_status,
)
from langsamp_cli.io_utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from langsamp_cli.logs import LOGGER_NAME, LineHandler
from langsamp_cli.progress import print_table

EXPORT_SUFFIXES = (".md", ".html", ".csv", ".png", ".tex")
EXPORT_LIST = ".langsamp-export.json"   # in an --export folder: the files langsamp put there


@dataclass
class ExperimentResult:
    output_dir: Path
    ran: list[str]
    skipped: list[str]
    index_md: Path | None
    index_html: Path | None
    seconds: float


def run_experiment(config: ExperimentConfig, console: Console | None = None, dry_run: bool = False,
                   export_dir: Path | None = None) -> ExperimentResult:
    """Run every stage not yet done; each stage's output goes to ``logs/<stage>.log``."""
    console = console or Console(stderr=True)
    started = time.time()
    layout = Layout(config.output_dir)
    stages = plan_stages(config)
    if dry_run:
        print_table(stage_table(stages, None, config, show_commands=True), console)
        for problem in missing_paths(config):
            console.print(f"[yellow]missing[/] {problem}", highlight=False, soft_wrap=True)
        return ExperimentResult(layout.root, [], [], None, None, 0.0)
    problems = missing_paths(config)
    if problems:
        raise LangsampError(f"{config.source}: {problems[0]} does not exist"
                            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                            + "; set the path in the YAML, or --data-root / --corpus")
    layout.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(layout.root / "configs" / "pretrain.yaml", pretrain_yaml_text(
        config, layout.tokenizer if any(s.kind == "tokenizer" for s in stages) else None))
    atomic_write_text(layout.root / "configs" / "experiment.yaml",
                      yaml.safe_dump(config.to_dict(), sort_keys=False, allow_unicode=True))
    state = ExperimentState(layout.state, config)
    print_table(stage_table(stages, state, config), console)
    ran, skipped = [], []
    for stage in stages:
        status, why = stage_status(stage, state)
        if status == "done":
            skipped.append(stage.name)
            if stage.kind == "pretrain":
                link_model(layout, stage.name.split(":", 1)[1])
            continue
        run_stage(stage, state, layout, config, console)
        ran.append(stage.name)
    print_table(stage_table(stages, state, config), console)
    index_md, index_html = layout.root / "index.md", layout.root / "index.html"
    if export_dir is not None:
        exported = export_report(layout.root, Path(export_dir))
        console.print(f"exported {len(exported)} files to {export_dir}", highlight=False)
    console.print(f"experiment {config.name}: {len(ran)} stage(s) run, {len(skipped)} already done; "
                  f"index: {index_md}", highlight=False, soft_wrap=True)
    return ExperimentResult(layout.root, ran, skipped, index_md, index_html, time.time() - started)


def run_stage(stage: Stage, state: ExperimentState, layout: Layout, config: ExperimentConfig,
              console: Console) -> None:
    log = layout.logs / stage.log_name
    log.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]▶ {stage.name}[/] (log: {log})", highlight=False, soft_wrap=True)
    signature = report_signature(state, stage) if stage.kind == "report" else stage.signature
    state.update(stage.name, status="running", started=_now(), log=str(log), signature=signature, error=None)
    began = time.time()
    if stage.kind == "pretrain":  # `pretrain --resume` refuses a missing folder (a typo); this one is planned
        layout.run_dir(stage.name.split(":", 1)[1]).mkdir(parents=True, exist_ok=True)
    try:
        code, last_line = execute(stage, log, stage_env(config, layout), config.runner)
    except KeyboardInterrupt:
        state.update(stage.name, status="interrupted", seconds=round(time.time() - began, 1))
        raise
    seconds = round(time.time() - began, 1)
    if code != 0:
        state.update(stage.name, status="failed", seconds=seconds, exit_code=code, error=last_line)
        detail = f": {last_line}" if last_line else ""
        raise LangsampError(f"stage {stage.name} failed (exit {code}){detail}; log: {log}; fix it and rerun "
                            "the same command to continue from this stage")
    if stage.kind == "pretrain":
        link_model(layout, stage.name.split(":", 1)[1])
    state.update(stage.name, status="done", finished=_now(), seconds=seconds, exit_code=0)
    console.print(f"  [green]done[/] {stage.name} in {_duration(seconds)}", highlight=False)


def stage_env(config: ExperimentConfig, layout: Layout) -> dict[str, str]:
    """Environment every stage gets: a wider log, and one embedding cache for the whole experiment."""
    return {"COLUMNS": "120", "LANGSAMP_CACHE": str(config.cache_dir or layout.cache)}


def execute(stage: Stage, log: Path, env: dict[str, str], runner: str) -> tuple[int, str]:
    """Run one stage with its output in ``log``; returns (exit code, last non-empty line of the log).

    In this process: functions (tokenizer, report) always, library calls with ``runner: inprocess``
    unless a launcher (accelerate launch, torchrun) starts the stage. Otherwise ``python -m langsamp_cli``.
    """
    with open(log, "w", encoding="utf-8") as handle:
        handle.write(f"# {stage.name} started {_now()}\n")
        if stage.argv is not None:
            handle.write("# " + shlex.join(stage_command(stage)) + "\n")
        handle.flush()
        in_process = runner == "inprocess" and not stage.launcher and stage.library is not None
        if stage.function is not None or in_process:
            code = _in_process(stage.function or stage.library, handle, env)
        else:
            code = subprocess.run(stage_command(stage), stdout=handle, stderr=subprocess.STDOUT,
                                  env={**os.environ, **env}, check=False).returncode
    return code, _last_line(log)


def stage_command(stage: Stage) -> list[str]:
    prefix = stage.launcher or [sys.executable]
    return [*prefix, "-m", "langsamp_cli", *(stage.argv or [])]


def _in_process(work: Callable[[], None], handle: Any, env: dict[str, str]) -> int:
    """Run a stage's work in this process, its output (stdout, stderr, the langsamp logger) in the log."""
    with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle), _environ(env), _logger_to_log():
        try:
            work()
            return 0
        except LangsampError as err:
            print(f"error: {err}")
            return 2
        except KeyboardInterrupt:
            raise
        except Exception:  # noqa: BLE001 - any crash of a stage is recorded in its log, not raised
            traceback.print_exc()
            return 1


@contextlib.contextmanager
def _logger_to_log() -> Iterator[None]:
    """The ``langsamp`` logger as in a stage subprocess: one line per record on (redirected) stderr, INFO and up,
    also under ``--quiet`` (the terminal stays quiet; the log is complete)."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers, logger.propagate = [LineHandler()], False
    logger.setLevel(min(logger.getEffectiveLevel(), logging.INFO))
    try:
        yield
    finally:
        logger.handlers, logger.propagate = saved[0], saved[2]
        logger.setLevel(saved[1])


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _last_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if ln.strip() and not ln.startswith("#")]
    return lines[-1][:300] if lines else ""


def link_model(layout: Layout, variant: str) -> Path:
    """models/<variant> -> ../pretrain/<variant>/final (a relative link, so the folder can move)."""
    link = layout.model(variant)
    if link.is_symlink() or link.exists():
        return link
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(Path("..") / "pretrain" / variant / "final", link, target_is_directory=True)
    return link


def stage_table(stages: list[Stage], state: ExperimentState | None, config: ExperimentConfig,
                show_commands: bool = False) -> Table:
    table = Table(title=f"experiment {config.name}: {config.output_dir}", title_justify="left")
    for column in ("stage", "status", "time", "command" if show_commands else "note"):
        table.add_column(column, overflow="fold")
    styles = {"done": "green", "running": "yellow", "failed": "red", "interrupted": "red"}
    for stage in stages:
        if state is None:
            command = shlex.join(stage_command(stage)) if stage.argv else "(in-process)"
            table.add_row(stage.name, "planned", "", command)
            continue
        record = state.stage(stage.name)
        status, why = stage_status(stage, state)
        shown = record.get("status") if record.get("status") in ("running", "failed", "interrupted") else status
        seconds = record.get("seconds")
        note = record.get("error") or why if shown != "done" else why
        table.add_row(stage.name, f"[{styles.get(shown, 'white')}]{shown}[/]",
                      _duration(seconds) if seconds is not None else "", note or "")
    return table


def export_report(root: Path, dest: Path) -> list[Path]:
    """Copy index.md/html and what they show (report tables, PNGs, CSVs) to ``dest`` (e.g. docs/results/...).

    Checkpoints, logs, caches, fine-tuned models and per-unit JSON stay behind. Each file is written atomically;
    ``dest/EXPORT_LIST`` records what was exported, so a later export removes only files an earlier one wrote
    and that are no longer part of the report: a file of the user's in ``dest`` is never touched.
    """
    root, dest = Path(root), Path(dest)
    if not (root / "index.md").is_file():
        raise LangsampError(f"{root}: no index.md yet; run the experiment to the report stage first")
    if dest.exists() and not dest.is_dir():
        raise LangsampError(f"--export {dest}: is a file, not a folder; pick a folder (it is created if missing)")
    picked = [root / "index.md", root / "index.html"]
    for folder in ("report", "similarity", "plots"):
        picked += sorted(p for p in (root / folder).rglob("*") if p.is_file() and p.suffix in EXPORT_SUFFIXES
                         and not any(part.startswith(".") for part in p.relative_to(root).parts))
    names = [path.relative_to(root).as_posix() for path in picked if path.is_file()]
    earlier = _exported_before(dest)
    for name in names:
        atomic_write_bytes(dest / name, (root / name).read_bytes())
    for name in sorted(set(earlier) - set(names)):  # ours from an earlier export, gone from the report
        (dest / name).unlink(missing_ok=True)
    atomic_write_json(dest / EXPORT_LIST, {"files": names})
    return [dest / name for name in names]


def _exported_before(dest: Path) -> list[str]:
    """The files an earlier export wrote into ``dest`` (plain relative names only)."""
    try:
        listed = json.loads((dest / EXPORT_LIST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [name for name in listed if isinstance(name, str) and not Path(name).is_absolute()
            and ".." not in Path(name).parts]
