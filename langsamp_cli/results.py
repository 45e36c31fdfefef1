"""Per-unit results, merged per run, with language groups, provenance, shards and resume.

A *unit* is one (model, task, seed, language). Every unit is written to its own JSON file the
moment it is scored (or skipped), so a killed run loses at most the language in flight and a rerun
resumes where it stopped. Layout::

    {output_dir}/{task}/{model_slug}/seed{seed|na}/units/{lang_script}.json
    {output_dir}/{task}/{model_slug}/seed{seed|na}/results.json   # merged by finalize()
    {output_dir}/{task}/{model_slug}/seed{seed|na}/results.csv    # long format: language x metric

Shard then merge: ``--shard i/N`` runs every N-th unit (0-based, deterministic order), so N
processes (SLURM array tasks, several GPUs, several machines on a shared disk) each write their own
unit files into the same folder. ``finalize()`` merges *all* unit files present, whoever wrote them;
each shard calls it when done (the last one to finish leaves the complete merge), and
``langsamp report`` merges any folder whose units are newer than its results.json.

Skips are units too (``status: "skipped"`` with the reason): they appear in results.json and in
every table, and a rerun does not retry them. ``overwrite=True`` ignores existing units (every
selected language is recomputed and its unit file replaced); unit files are never deleted, so
shards running with ``--overwrite`` at the same time cannot erase each other's fresh results.

A unit belongs to its model and settings: it stores the model's content fingerprint and a hash of
the settings that change its number (:func:`settings_hash`: the config less run-only keys and the
seed). A rerun reuses a unit only when both match; otherwise it says so in one line and recomputes
it (the new file replaces the old one atomically). Units of other settings or models still in the
folder are left out of results.json (listed under ``stale``), so they are never averaged in.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import re
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from langsamp_cli.baselines import floor, floor_note
from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_json, atomic_write_text
from langsamp_cli.logs import get_logger

log = get_logger()

UNIT_FORMAT = 1
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
UNITS_DIR = "units"
GROUP_KEYS = ("head_tail", "script_group", "family")
# Keys a runner adds to a unit's config besides the settings fields (left out of the hash like them).
_RECORD_ONLY_KEYS = {"fingerprint"}
_SEED_KEYS = {"seed", "seeds"}  # one run's seeds share their settings; the seed has its own folder


# ---------------------------------------------------------------------------- naming
def model_slug(model: str | Path, fingerprint: str | None = None) -> str:
    """The model's folder name: its last two path parts (or hub name) + the first 8 characters of its content
    fingerprint, so the same model gets the same folder on every machine (``pretrain-demo--final-1a2b3c4d``).

    Without a fingerprint the name as given is hashed (a hub name: stable everywhere).
    """
    if fingerprint and re.fullmatch(r"[0-9a-f]{8,}", str(fingerprint)):
        digest = str(fingerprint)[:8]
    else:  # no content hash (e.g. a hub name that is not cached): the name as given, or what stands for it
        text = str(fingerprint or str(model).rstrip("/\\") or model)
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"{_readable(_model_identity(model))}-{digest}"


def legacy_model_slug(model: str | Path) -> str:
    """The folder name of older langsamp versions: a hash of the absolute path (different on every machine)."""
    identity = _model_identity(model)
    return f"{_readable(identity)}-{hashlib.sha1(identity.encode('utf-8')).hexdigest()[:8]}"


def _readable(identity: str) -> str:
    parts = [p for p in re.split(r"[\\/]+", identity) if p not in ("", ".", "..")]
    return (re.sub(r"[^A-Za-z0-9._-]+", "-", "--".join(parts[-2:])).strip("-.") or "model")[:80]


def _model_identity(model: str | Path) -> str:
    """A local directory is identified by its absolute path, a hub name by the name itself."""
    text = str(model).rstrip("/\\") or str(model)
    path = Path(text).expanduser()
    return str(path.resolve()) if path.exists() else text


_NOTED_LEGACY: set[Path] = set()


def _note_legacy_folder(task_dir: Path, model: str | Path, slug: str) -> None:
    """One line when this model's results from before fingerprinted folder names sit beside the new folder."""
    legacy = task_dir / legacy_model_slug(model)
    if legacy.name != slug and legacy.is_dir() and legacy not in _NOTED_LEGACY:
        _NOTED_LEGACY.add(legacy)  # once per process, not once per seed or layer
        log.warning(f"note: {legacy} holds older results of this model (folder named by a hash of its path); "
                    f"`langsamp report` still reads them; new results go to {task_dir / slug}")


def seed_dir_name(seed: int | None) -> str:
    return "seedna" if seed is None else f"seed{int(seed)}"


LAYER_SUFFIX = "@layer"  # `eval --layers`: layer k (other than the task's own layer) is filed as task "sr-t@layer4"


def layer_task_name(task: str, layer: int) -> str:
    """The task name under which a ``--layers`` run files the results of ``layer``."""
    return f"{task}{LAYER_SUFFIX}{int(layer)}"


def split_layer_task(task: str) -> tuple[str, int | None]:
    """("sr-t", 4) for "sr-t@layer4"; (task, None) for a plain task name."""
    base, sep, layer = str(task).rpartition(LAYER_SUFFIX)
    return (base, int(layer)) if sep and layer.isdigit() else (str(task), None)


SCORED_SUFFIXES = ("margin", "csls")  # `eval --scoring margin`: results filed as task "sr-t@margin", beside "sr-t"


def scored_task_name(task: str, scoring: str) -> str:
    """The task name under which a run with ``--scoring`` files its results (cosine: the task itself)."""
    return task if scoring == "cosine" else f"{task}@{scoring}"


def split_scored_task(task: str) -> tuple[str, str]:
    """("sr-t", "margin") for "sr-t@margin" (also inside "sr-t@margin@layer4"); (task, "cosine") otherwise."""
    base, sep, scoring = split_layer_task(task)[0].rpartition("@")
    return (base, scoring) if sep and scoring in SCORED_SUFFIXES else (split_layer_task(task)[0], "cosine")


def task_dir_name(task: str) -> str:
    """A task name as a folder under the output root: a plain name (no separators, no '..'), never a path."""
    text = str(task)
    plain = split_scored_task(text)[0]  # "sr-t@layer4" / "sr-t@margin": a layer / a scoring of the task
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", plain) or ".." in text:
        raise LangsampError(f"task name {text!r}: use letters, digits, '.', '_' and '-' (a folder name under "
                            "--output-dir, not a path)")
    return text


def unit_file_name(lang_script: str) -> str:
    if not lang_script or not re.fullmatch(r"[\w.+-]+", lang_script) or lang_script.startswith("."):
        raise LangsampError(f"unit name {lang_script!r}: use a language id such as eng_Latn (letters, digits, _ . + -)")
    return f"{lang_script}.json"


# ---------------------------------------------------------------------------- the store
class ResultStore:
    """Writes unit files for one (task, model, seed) and merges them into results.json/.csv."""

    def __init__(self, output_dir: Path, task: str, model: str, seed: int | None, config: dict,
                 metric: str, overwrite: bool = False, fingerprint: str | None = None) -> None:
        self.output_dir = Path(output_dir)
        self.task = task
        self.model = str(model)
        self.seed = seed
        self.config = dict(config or {})
        self.metric = metric
        self.overwrite = overwrite
        self.fingerprint = fingerprint or self.config.get("fingerprint")
        self.model_slug = model_slug(model, self.fingerprint)
        self.run_dir = self.output_dir / task_dir_name(task) / self.model_slug / seed_dir_name(seed)
        _note_legacy_folder(self.output_dir / task_dir_name(task), model, self.model_slug)
        self.seed_dir = self.run_dir
        self.units_dir = self.run_dir / UNITS_DIR
        self.replaced: dict[str, str] = {}  # unit -> why its stored result could not be reused
        self.notify = _print_stderr

    def unit_path(self, lang_script: str) -> Path:
        return self.units_dir / unit_file_name(lang_script)

    def is_done(self, lang_script: str) -> bool:
        """True when a unit (scored or skipped) exists *for this model and these settings*.

        A unit made by another model (fingerprint) or with other settings (settings hash) is not
        reused: one line on stderr says why, and the caller recomputes it (the write replaces the
        file atomically). Always False with overwrite=True.
        """
        path = self.unit_path(lang_script)
        if self.overwrite or not path.is_file():
            return False
        try:
            unit = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            self.notify(f"{lang_script}: unreadable result file {path}; recomputing it")
            return False
        reason = unit_mismatch(unit, self.fingerprint, self.config)
        if reason is None:
            return True
        self.replaced[lang_script] = reason
        self.notify(f"{lang_script}: stored result was made with {reason}; recomputing and replacing it")
        return False

    def write(self, lang_script: str, n: int, metrics: dict[str, float], extra: dict | None = None,
              baselines: dict[str, dict[str, float]] | None = None) -> None:
        """``baselines``: the scores of trivial predictors on the same data (see :mod:`langsamp_cli.baselines`)."""
        clean = {str(k): _number(v, f"{lang_script} metric {k}") for k, v in metrics.items()}
        body = {"status": "done", "n": int(n), "metrics": clean, "extra": extra or {}}
        if baselines:
            body["baselines"] = {str(name): {str(k): _number(v, f"{lang_script} baseline {name} {k}")
                                             for k, v in scores.items()} for name, scores in baselines.items()}
        self._write_unit(lang_script, body)

    def skip(self, lang_script: str, reason: str) -> None:
        self._write_unit(lang_script, {"status": "skipped", "reason": str(reason)})

    def _write_unit(self, lang_script: str, body: dict) -> None:
        unit = {"format": UNIT_FORMAT, "lang_script": lang_script, **body, **self._meta(), "time": _now()}
        atomic_write_json(self.unit_path(lang_script), unit)

    def _meta(self) -> dict:
        return {"task": self.task, "model": self.model, "model_slug": self.model_slug,
                "model_identity": _model_identity(self.model), "seed": self.seed,
                "metric": self.metric, "fingerprint": self.fingerprint, "config": self.config,
                "config_hash": config_hash(self.config), "settings_hash": settings_hash(self.config)}

    def finalize(self) -> Path:
        """Merge every unit file in this run folder into results.json and results.csv."""
        return merge_run_dir(self.run_dir, meta=self._meta())


# ---------------------------------------------------------------------------- merging
def read_units(units_dir: Path) -> list[dict]:
    units = []
    for path in sorted(Path(units_dir).glob("*.json")):
        if path.name.startswith("."):
            continue  # an atomic write in progress
        try:
            unit = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise LangsampError(f"{path}: unreadable unit file ({err}); delete it and rerun that language") from None
        if not isinstance(unit, dict) or "lang_script" not in unit or unit.get("status") not in ("done", "skipped"):
            raise LangsampError(f"{path}: not a langsamp unit file (no lang_script/status); delete it and rerun")
        units.append(unit)
    return units


def merge_run_dir(run_dir: Path, meta: dict | None = None) -> Path:
    """Write ``run_dir``/results.json + results.csv from ``run_dir``/units/*.json; returns the JSON path.

    ``meta`` (task, model, seed, metric, config, fingerprint) defaults to the newest unit's.
    """
    run_dir = Path(run_dir)
    units = read_units(run_dir / UNITS_DIR)
    if meta is None:
        if not units:
            raise LangsampError(f"{run_dir}: no unit files under {UNITS_DIR}/ to merge")
        meta = max(units, key=lambda u: u.get("time", ""))
    results = build_results(units, meta)
    json_path = atomic_write_json(run_dir / RESULTS_JSON, results)
    atomic_write_text(run_dir / RESULTS_CSV, results_csv(results))
    return json_path


def needs_merge(run_dir: Path) -> bool:
    """True when the folder has unit files newer than its results.json (or no results.json)."""
    units = [p for p in (Path(run_dir) / UNITS_DIR).glob("*.json") if not p.name.startswith(".")]
    if not units:
        return False
    merged = Path(run_dir) / RESULTS_JSON
    return not merged.is_file() or max(p.stat().st_mtime for p in units) > merged.stat().st_mtime


def build_results(units: list[dict], meta: dict) -> dict:
    stale = [u for u in units if unit_mismatch(u, meta.get("fingerprint"), meta.get("config") or {}) is not None]
    if stale:
        names = ", ".join(u["lang_script"] for u in stale)
        log.warning(f"warning: {len(stale)} unit(s) of {meta.get('task')} {meta.get('model')} were made with another "
                    f"model or other settings and are left out of results.json ({names}); rerun them with these "
                    "settings (or --languages ... --overwrite)")
        units = [u for u in units if u not in stale]
    done = sorted((u for u in units if u["status"] == "done"), key=lambda u: u["lang_script"])
    _warn_non_finite(done, meta)
    skipped = sorted((u for u in units if u["status"] == "skipped"), key=lambda u: u["lang_script"])
    languages = [language_record(u) for u in done]
    hashes = sorted({u.get("config_hash") for u in units if u.get("config_hash")})
    return {
        "task": meta.get("task"),
        "model": meta.get("model"),
        "model_slug": meta.get("model_slug") or model_slug(meta.get("model") or "model", meta.get("fingerprint")),
        "model_identity": meta.get("model_identity"),  # with model_slug and the fingerprint: folder -> model
        "seed": meta.get("seed"),
        "metric": meta.get("metric"),
        "metrics": metric_names(languages, meta.get("metric")),
        "languages": languages,
        "skipped": [{"lang_script": u["lang_script"], "reason": u.get("reason", "")} for u in skipped],
        "groups": group_means(languages),
        "families": family_means(languages),
        "stale": [{"lang_script": u["lang_script"], "why": unit_mismatch(u, meta.get("fingerprint"),
                                                                          meta.get("config") or {})} for u in stale],
        "provenance": provenance(meta, config_hashes=hashes),
    }


def _warn_non_finite(units: list[dict], meta: dict) -> None:
    """A metric that is NaN/inf (or not a number) is left out of every mean: said, never silent."""
    bad = [f"{u['lang_script']} {name}={value!r}" for u in units for name, value in (u.get("metrics") or {}).items()
           if not _is_number(value)]
    if bad:
        log.warning(f"warning: {meta.get('task')} {meta.get('model')}: {len(bad)} score(s) are not finite numbers "
                    f"and are left out of the means ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); "
                    "rerun those languages with --languages ... --overwrite")


def language_record(unit: dict) -> dict:
    lang_script = unit["lang_script"]
    lang, _, script = lang_script.partition("_")
    return {"lang_script": lang_script, "lang": lang, "script": script or None, **language_groups(lang_script),
            "n": unit.get("n"), "metrics": unit.get("metrics", {}), "extra": unit.get("extra", {}),
            "baselines": unit.get("baselines", {})}


def language_groups(lang_script: str) -> dict[str, str | None]:
    """head_tail / script_group / family from languages.groups_for; None where it cannot tell."""
    from langsamp_cli.languages import groups_for

    try:
        groups = groups_for(lang_script)
    except (LangsampError, KeyError, ValueError):
        groups = {}
    return {key: groups.get(key) for key in GROUP_KEYS}


def group_order() -> list[str]:
    from langsamp_cli.languages import GROUP_ORDER

    return list(GROUP_ORDER)


def group_members(languages: list[dict], group: str) -> list[dict]:
    if group == "all":
        return list(languages)
    return [r for r in languages if group in (r.get("head_tail"), r.get("script_group"))]


def group_means(languages: list[dict]) -> dict[str, dict]:
    """For tail, head, Latn, non-Latn, all: the number of languages and each metric's mean over them."""
    return {g: _mean_block(group_members(languages, g)) for g in group_order()}


def family_means(languages: list[dict]) -> dict[str, dict]:
    families = sorted({r["family"] for r in languages if r.get("family")})
    return {f: _mean_block([r for r in languages if r.get("family") == f]) for f in families}


def _mean_block(members: list[dict]) -> dict:
    block: dict[str, Any] = {"n_languages": len(members)}
    for name in metric_names(members):
        values = [r["metrics"][name] for r in members if _is_number(r["metrics"].get(name))]
        if values:
            block[name] = sum(values) / len(values)
    floors = [floor(r.get("baselines")) for r in members]
    if members and all(floors):
        block["floor"] = {name: sum(f[name] for f in floors) / len(floors) for name in floors[0]
                          if all(name in f for f in floors)}
    return block


def metric_names(languages: list[dict], headline: str | None = None) -> list[str]:
    """Metrics present in any language, the headline first, the rest in first-seen order."""
    names = list(dict.fromkeys(k for r in languages for k in r.get("metrics", {})))
    if headline in names:
        names.remove(headline)
        names.insert(0, headline)
    return names


def results_csv(results: dict) -> str:
    import pandas as pd

    columns = ["task", "model", "seed", "lang_script", "lang", "script", "head_tail", "script_group", "family",
               "n", "metric", "value"]
    rows = [
        {"task": results["task"], "model": results["model"], "seed": results["seed"],
         **{k: r.get(k) for k in columns[3:10]}, "metric": name, "value": value}
        for r in results["languages"] for name, value in r["metrics"].items()
    ]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False)


# ---------------------------------------------------------------------------- provenance
def provenance(meta: dict, config_hashes: list[str] | None = None) -> dict:
    config = meta.get("config") or {}
    return {
        "toolkit": "langsamp", "toolkit_version": _version("langsamp-cli") or _package_version(),
        "model": meta.get("model"),
        "model_fingerprint": meta.get("fingerprint") or config.get("fingerprint"),
        "model_adjustments": _model_adjustments(meta.get("model")),
        "config": config,
        "settings_hash": settings_hash(config),
        "config_hashes": config_hashes or [],
        "time": _now(),
        "device": _device(config),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "git_hash": git_hash(),
        "hostname": socket.gethostname(),
    }


def _model_adjustments(model: str | None) -> list[str] | None:
    """What the loader changed to load this checkpoint (e.g. a zero token-type table); None when not inspectable."""
    from langsamp_cli.checkpoint_info import model_adjustments

    return model_adjustments(model)


@functools.cache
def unhashed_keys() -> frozenset[str]:
    """Settings that change how a run is executed, not what it measures: the task settings fields declared
    ``run_only`` or ``hashed=False`` (settings.Meta), plus the record-only keys."""
    from langsamp_cli.settings import fields, meta
    from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

    declared = {f.name for cls in SETTINGS_BY_TYPE.values() for f in fields(cls)
                if meta(f).run_only or not meta(f).hashed}
    return frozenset(declared | _RECORD_ONLY_KEYS)


def config_hash(config: dict) -> str:
    measured = {k: v for k, v in config.items() if k not in unhashed_keys()}
    return hashlib.sha1(json.dumps(measured, sort_keys=True, default=str).encode()).hexdigest()[:12]


def measured_settings(config: dict) -> dict:
    """The settings that change a unit's number: the config less run-only keys and the seed."""
    return {k: v for k, v in config.items() if k not in unhashed_keys() and k not in _SEED_KEYS}


def settings_hash(config: dict) -> str:
    """Hash of :func:`measured_settings`: equal for every seed of one run, different when a setting changes."""
    measured = json.dumps(measured_settings(config), sort_keys=True, default=str)
    return hashlib.sha1(measured.encode()).hexdigest()[:12]


def unit_mismatch(unit: dict, fingerprint: str | None, config: dict) -> str | None:
    """None when ``unit`` was made by the model ``fingerprint`` with ``config``'s settings; else what differs."""
    stored_fp = unit.get("fingerprint")
    if stored_fp != fingerprint:
        return f"another model (fingerprint {stored_fp or 'unknown'}, now {fingerprint or 'unknown'})"
    stored = unit.get("config") or {}
    ours = unit.get("settings_hash") or settings_hash(stored)
    if ours == settings_hash(config) and unit.get("seed") == config.get("seed", unit.get("seed")):
        return None
    before, now = measured_settings(stored), measured_settings(config)
    changed = sorted(k for k in before.keys() | now.keys() if before.get(k) != now.get(k))
    shown = ", ".join(f"{k}: {_short(before.get(k))} -> {_short(now.get(k))}" for k in changed[:3])
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return f"other settings ({shown or 'settings hash ' + ours}{more})"


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _print_stderr(message: str) -> None:
    log.warning(message)


def git_hash() -> str | None:
    repo = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _device(config: dict) -> str:
    torch = sys.modules.get("torch")  # never import torch just to write a results file
    if config.get("device"):
        return str(config["device"])
    if torch is not None and torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return "cpu"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _package_version() -> str:
    from langsamp_cli import __version__

    return __version__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: Any, what: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise LangsampError(f"{what}: {value!r} is not a number") from None


# ---------------------------------------------------------------------------- shards
def parse_shard(value: str | None) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8): the third of eight shards (0-based); None -> (0, 1), everything."""
    if value is None or str(value).strip() == "":
        return 0, 1
    text = str(value).strip()
    match = re.fullmatch(r"(-?\d+)\s*/\s*(-?\d+)", text)
    if not match:
        raise LangsampError(f"--shard {text}: use i/N with 0 <= i < N, e.g. 0/4 ... 3/4")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise LangsampError(f"--shard {text}: count must be >= 1")
    if index < 0:
        raise LangsampError(f"--shard {text}: index must be >= 0 (shards are 0-based)")
    if index >= count:
        raise LangsampError(f"--shard {text}: index must be < count "
                            f"(shards are 0-based: 0/{count} ... {count - 1}/{count})")
    return index, count


def select_shard(units: list[str], shard: tuple[int, int]) -> list[str]:
    """Units of shard ``index`` of ``count``: sorted, then every count-th one (round robin)."""
    index, count = shard
    return [unit for i, unit in enumerate(sorted(dict.fromkeys(units))) if i % count == index]


# ---------------------------------------------------------------------------- printing
def load_results(results_json: Path) -> dict:
    path = Path(results_json)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise LangsampError(f"{path}: cannot read results ({err})") from None
    if not isinstance(results, dict) or not {"task", "model", "languages"} <= results.keys():
        raise LangsampError(f"{path}: not a langsamp results.json (needs task, model, languages)")
    return results


def format_value(value: Any, scale: float = 100.0, baseline: Any = None) -> str:
    """``44.1`` or, with its baseline, ``44.1 (5.7)``."""
    if not _is_number(value):
        return "-"
    return f"{value * scale:.1f}" + (f" ({baseline * scale:.1f})" if _is_number(baseline) else "")


def print_results(results_json: Path, console=None, scale: float = 100.0) -> None:
    """Rich table on stdout: one row per language, then tail/head/Latn/non-Latn/all, then skips."""
    from rich.console import Console
    from rich.table import Table

    from langsamp_cli.progress import print_table

    console = console or Console()
    results = load_results(results_json)
    names = results.get("metrics") or metric_names(results["languages"], results.get("metric"))
    seed = "n/a" if results.get("seed") is None else results["seed"]
    table = Table(title=f"{results['task']} | {results['model']} | seed {seed} (x{scale:g})", title_justify="left")
    for column in ("language", "groups", "n", *names):
        table.add_column(column, justify="left" if column in ("language", "groups") else "right")
    for r in results["languages"]:
        tags = " ".join(t for t in (r.get("head_tail"), r.get("script_group")) if t) or "?"
        floors = floor(r.get("baselines"))
        table.add_row(r["lang_script"], tags, str(r.get("n", "")),
                      *(format_value(r["metrics"].get(m), scale, floors.get(m)) for m in names))
    table.add_section()
    for group, block in results.get("groups", {}).items():
        count = block["n_languages"]
        floors = block.get("floor") or {}
        table.add_row(f"[bold]{group}[/]", f"{count} language{'' if count == 1 else 's'}", "",
                      *(format_value(block.get(m), scale, floors.get(m)) for m in names))
    print_table(table, console)
    note = floor_note(name for r in results["languages"] for name in (r.get("baselines") or {}))
    if note:
        console.print(note, highlight=False, soft_wrap=True, markup=False)
    skipped = results.get("skipped") or []
    if skipped:
        listed = "; ".join(f"{s['lang_script']} ({s['reason']})" for s in skipped)
        console.print(f"skipped {len(skipped)}: {listed}", highlight=False, soft_wrap=True)
