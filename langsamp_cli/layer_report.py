"""`langsamp report --by-layer`: a metric against the encoder layer, per language group and model.

A ``langsamp eval sr-t --layers ...`` run files layer k under task ``sr-t@layer<k>`` and the task's
own layer (8) under ``sr-t``; every results.json records its layer in ``provenance.config.layer``.
This module reads that layer, folds the task names back to the base task, and averages like the
main report: per seed the mean over a group's languages, then mean and sample std (ddof=1) over
seeds. Results without a layer (fine-tuned tasks) are left out with a note.

Outputs: ``by_layer.csv`` (tidy: model, task, metric, group, layer, mean, std, n_seeds, n_languages)
and ``by_layer.png``/``.svg``: one panel per task, one line per group (one model) or per model and
group (several models, so e.g. vanilla and LangSAMP share one figure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_text
from langsamp_cli.report import find_results, load_frame, model_labels
from langsamp_cli.results import RESULTS_JSON, load_results, split_layer_task

COLUMNS = ["model", "task", "metric", "group", "layer", "mean", "std", "n_seeds", "n_languages"]


@dataclass
class LayerReport:
    table: pd.DataFrame                  # COLUMNS, sorted by model, task, group order, layer
    group_order: list[str]
    scale: float
    notes: list[str] = field(default_factory=list)


def results_layer(results: dict) -> int | None:
    """The encoder layer a results.json was scored at (its config's ``layer``), or None."""
    config = (results.get("provenance") or {}).get("config") or {}
    layer = config.get("layer")
    if isinstance(layer, int) and not isinstance(layer, bool):
        return layer
    return split_layer_task(str(results.get("task", "")))[1]


def build_layer_report(dirs: list[Path], metric: str | None = None, scale: float = 100.0,
                       allow_mixed: bool = False, groups: list[str] | None = None) -> LayerReport:
    paths = find_results(dirs)
    if not paths:
        raise LangsampError(f"no {RESULTS_JSON} under {', '.join(map(str, dirs))}; run `langsamp eval sr-t --layers "
                            "all ...` first")
    layer_of: dict[tuple[str, str], int] = {}
    kept, notes = [], []
    for path in paths:
        results = load_results(path)
        layer = results_layer(results)
        if layer is None:
            notes.append(f"{path}: {results.get('task')} has no encoder layer; left out of the by-layer report")
            continue
        layer_of[(results.get("model_slug") or results["model"], results["task"])] = layer
        kept.append(path)
    if not kept:
        raise LangsampError(f"no results with an encoder layer under {', '.join(map(str, dirs))}; run "
                            "`langsamp eval sr-t|sr-b --layers all ...` first")
    frame, group_order, load_notes = load_frame(kept, metric, allow_mixed)
    if frame.empty:
        raise LangsampError(f"no scored languages in {len(kept)} results file(s)"
                            + (f" with metric '{metric}'" if metric else ""))
    frame["layer"] = [layer_of[(key, task)] for key, task in zip(frame["model_key"], frame["task"])]
    frame["task"] = frame["task"].map(lambda t: split_layer_task(t)[0])
    frame["model"] = frame["model_key"].map(model_labels(frame))
    frame["value"] = frame["value"] * scale
    order = list(groups or group_order)
    unknown = [g for g in order if g not in group_order]
    if unknown:
        raise LangsampError(f"--layer-groups {','.join(unknown)}: not a group of these results; use "
                            f"{', '.join(group_order)}")
    table = _over_seeds(_per_seed_group_means(frame, order), order)
    return LayerReport(table, order, scale, notes + load_notes)


def _per_seed_group_means(frame: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    parts = []
    for group in groups:
        members = frame if group == "all" else frame[(frame.head_tail == group) | (frame.script_group == group)]
        if members.empty:
            continue
        keys = ["model", "task", "metric", "layer", "seed"]
        parts.append(members.groupby(keys, sort=False)["value"].agg(score="mean", n_languages="size")
                     .reset_index().assign(group=group))
    if not parts:
        raise LangsampError(f"--layer-groups {','.join(groups)}: no scored language belongs to "
                            f"{'that group' if len(groups) == 1 else 'these groups'}; pick others (e.g. all)")
    return pd.concat(parts, ignore_index=True)


def _over_seeds(per_seed: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    keys = ["model", "task", "metric", "group", "layer"]
    out = per_seed.groupby(keys, sort=False).agg(
        mean=("score", "mean"), std=("score", lambda s: s.std(ddof=1) if len(s) > 1 else math.nan),
        n_seeds=("seed", "nunique"), n_languages=("n_languages", "max")).reset_index()
    out["group_rank"] = out["group"].map(groups.index)
    out = out.sort_values(["model", "task", "group_rank", "layer"], kind="stable").drop(columns="group_rank")
    return out[COLUMNS].reset_index(drop=True)


def layer_csv(report: LayerReport) -> str:
    return report.table.to_csv(index=False, float_format="%.6g")


def write_layer_report(report: LayerReport, output_dir: Path) -> list[Path]:
    """by_layer.csv + by_layer.png/.svg in ``output_dir``."""
    from langsamp_cli import plots

    output_dir = Path(output_dir)
    written = [atomic_write_text(output_dir / "by_layer.csv", layer_csv(report))]
    table = report.table
    panels: dict[str, dict[tuple[str, str], tuple[list[int], list[float], list[float]]]] = {}
    for (task, model, group), part in table.groupby(["task", "model", "group"], sort=False):
        panels.setdefault(task, {})[(model, group)] = (part["layer"].tolist(), part["mean"].tolist(),
                                                       part["std"].tolist())
    metric = ", ".join(dict.fromkeys(table["metric"]))
    unit = " (%)" if report.scale == 100.0 else ""
    written += plots.plot_metric_by_layer(panels, output_dir / "by_layer", ylabel=f"{metric}{unit}",
                                          group_order=report.group_order)
    return written
