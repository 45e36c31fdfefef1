"""`langsamp report`: every results.json under some folders -> models side by side, mean (std) over seeds.

For each (model, task, seed) the score of a language group is the mean over its member languages
(tail, head, Latn, non-Latn, all, as tagged in results.json); across seeds we report the mean and
the sample standard deviation (ddof=1) of those group scores, as in the paper's Table 1. A single
seed shows no std. Three tables, each as Markdown, CSV (tidy, numeric) and LaTeX:

- ``table1``: rows = tasks, columns = group x model (the paper's Table 1: models side by side in
  each of tail, head, Latn, non-Latn, all; best per task and group in bold),
- ``families``: rows = task x language family, columns = models (Appendix C style),
- ``languages``: rows = task x language, columns = models (the per-language appendix tables).

Run folders with unit files newer than their results.json (shards not merged yet) are merged first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_text
from langsamp_cli.results import RESULTS_JSON, UNITS_DIR, load_results, merge_run_dir, needs_merge
from langsamp_cli.tasks import registry

TASK_ORDER = registry.names()
TASK_LABELS = {spec.name: spec.label for spec in registry.all_tasks()}
DEFAULT_GROUPS = ["tail", "head", "Latn", "non-Latn", "all"]
FORMATS = ("md", "csv", "tex")
NO_FAMILY = "unknown"


@dataclass
class Report:
    groups: pd.DataFrame      # model, task, group, metric, mean, std, n_seeds, n_languages
    families: pd.DataFrame    # model, task, family, metric, mean, std, n_seeds, n_languages
    languages: pd.DataFrame   # model, task, lang_script, head_tail, script_group, metric, mean, std, n_seeds
    group_order: list[str]
    scale: float
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- finding and loading
def merge_pending(dirs: list[Path]) -> list[Path]:
    """Merge every run folder under ``dirs`` whose unit files are newer than its results.json."""
    run_dirs = {p.parent.parent for d in dirs for p in _visible(d, f"**/{UNITS_DIR}/*.json")}
    merged = [merge_run_dir(run_dir) for run_dir in sorted(run_dirs) if needs_merge(run_dir)]
    return [p.parent for p in merged]


def find_results(dirs: list[Path]) -> list[Path]:
    found: dict[Path, None] = {}
    for d in dirs:
        d = Path(d)
        if not d.exists():
            raise LangsampError(f"{d}: no such file or folder; pass folders that hold results.json files")
        paths = [d] if d.is_file() else _visible(d, f"**/{RESULTS_JSON}")
        found.update({p.resolve(): None for p in paths})
    return sorted(found)


def _visible(root: Path, pattern: str) -> list[Path]:
    """Glob results, leaving out hidden folders (atomic writes in progress, old copies)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [p for p in root.glob(pattern) if not any(part.startswith(".") for part in p.relative_to(root).parts)]


def load_frame(paths: list[Path], metric: str | None,
               allow_mixed: bool = False) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Long frame (one row per model/task/seed/language) of the chosen metric, group order, notes.

    The seeds of one model and task are averaged, so they must come from the same model and settings
    (see :func:`check_same_settings`).
    """
    rows, notes, group_order, seen, skipped = [], [], [], {}, {}
    identities: dict[tuple, dict[tuple, list[Path]]] = {}
    for path in paths:
        results = load_results(path)
        identities.setdefault((results.get("model_slug") or results["model"], results["task"]), {}) \
            .setdefault(run_identity(results), []).append(path)
        key = (results.get("model_slug") or results["model"], results["task"], results.get("seed"))
        if key in seen:
            raise LangsampError(f"{path} and {seen[key]} both hold {results['task']} seed {_seed(key[2])} of "
                                f"{results['model']}; pass only one of the two folders")
        seen[key] = path
        group_order += [g for g in results.get("groups", {}) if g not in group_order]
        chosen = metric or results.get("metric")
        scored = [r for r in results["languages"] if _finite(r.get("metrics", {}).get(chosen))]
        if results["languages"] and not scored:
            notes.append(f"{path}: no metric '{chosen}' (has {', '.join(results.get('metrics', []))}); left out")
        rows += [_row(results, r, chosen) for r in scored]
        for skip in results.get("skipped") or []:
            skipped.setdefault((results["task"], results["model"], skip["lang_script"], skip["reason"]), []).append(
                _seed(results.get("seed")))
    notes += [f"{task} {model}: skipped {lang} ({reason}) [seed {','.join(seeds)}]"
              for (task, model, lang, reason), seeds in skipped.items()]
    notes += check_same_settings(identities, allow_mixed)
    return pd.DataFrame(rows), group_order or list(DEFAULT_GROUPS), notes


def run_identity(results: dict) -> tuple[str, str]:
    """(settings hash, model fingerprint) of one results.json; "mixed" when its own units disagree."""
    from langsamp_cli.results import settings_hash

    prov = results.get("provenance") or {}
    settings = prov.get("settings_hash") or settings_hash(prov.get("config") or {})
    if len(prov.get("config_hashes") or []) > 1 or results.get("stale"):
        settings = f"mixed({settings})"
    return settings, str(prov.get("model_fingerprint") or "unknown")


def check_same_settings(identities: dict[tuple, dict[tuple, list[Path]]], allow_mixed: bool) -> list[str]:
    """Refuse (LangsampError) to average runs of one model and task made with different settings or models.

    With ``allow_mixed`` they are averaged and each such (model, task) gets a loud note instead.
    """
    notes = []
    for (model, task), found in identities.items():
        if len(found) < 2 and not any(s.startswith("mixed(") for s, _ in found):
            continue
        listed = "; ".join(f"settings {s}, model {fp}: {', '.join(str(p.parent.name) for p in paths)}"
                           for (s, fp), paths in found.items())
        message = f"{task} {model}: results made with different settings or model weights ({listed})"
        if not allow_mixed:
            raise LangsampError(f"{message}; rerun them with the same settings, or pass --allow-mixed to average "
                                "them anyway")
        notes.append(f"MIXED SETTINGS averaged (--allow-mixed): {message}")
    return notes


def _row(results: dict, record: dict, metric: str) -> dict:
    from langsamp_cli.baselines import floor

    return {"model_key": results.get("model_slug") or results["model"], "model_path": results["model"],
            "task": results["task"], "seed": _seed(results.get("seed")), "lang_script": record["lang_script"],
            "head_tail": record.get("head_tail"), "script_group": record.get("script_group"),
            "family": record.get("family") or NO_FAMILY, "metric": metric, "value": record["metrics"][metric],
            "floor": floor(record.get("baselines")).get(metric, math.nan)}


def _seed(seed) -> str:
    return "na" if seed is None else str(seed)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def model_labels(frame: pd.DataFrame) -> dict[str, str]:
    """Short model names: the last path part, or the last two (``pretrain-demo/final``) where two models share
    the last one, or the unique slug where even those collide."""
    paths = frame.drop_duplicates("model_key").set_index("model_key")["model_path"]
    parts = {key: [p for p in re.split(r"[\\/]+", str(path)) if p not in ("", ".")] or [str(path)]
             for key, path in paths.items()}
    for depth in (1, 2):
        short = {key: "/".join(names[-depth:]) for key, names in parts.items()}
        if len(set(short.values())) == len(short):
            return short
    counts = pd.Series(list(short.values())).value_counts()
    return {key: (name if counts[name] == 1 else key) for key, name in short.items()}


# ---------------------------------------------------------------------------- aggregation
def build_report(dirs: list[Path], metric: str | None = None, scale: float = 100.0,
                 allow_mixed: bool = False) -> Report:
    paths = find_results(dirs)
    if not paths:
        raise LangsampError(f"no {RESULTS_JSON} under {', '.join(map(str, dirs))}; run `langsamp eval ...` first")
    frame, group_order, notes = load_frame(paths, metric, allow_mixed)
    if frame.empty:
        raise LangsampError(f"no scored languages in {len(paths)} results file(s) under {', '.join(map(str, dirs))}"
                            + (f" with metric '{metric}'" if metric else ""))
    frame["model"] = frame["model_key"].map(model_labels(frame))
    frame["value"] = frame["value"] * scale
    notes += _coverage_notes(frame)
    notes += _pair_matrix_notes(paths)
    notes += _baseline_notes(frame, scale)
    return Report(groups=_over_seeds(_seed_group_means(frame, group_order), "group"),
                  families=_over_seeds(_seed_means(frame, "family"), "family"),
                  languages=_over_seeds(frame.rename(columns={"value": "score"}).assign(n_languages=1),
                                        "lang_script", extra=["head_tail", "script_group"]),
                  group_order=group_order, scale=scale, notes=notes)


def _seed_group_means(frame: pd.DataFrame, group_order: list[str]) -> pd.DataFrame:
    parts = []
    for group in group_order:
        members = frame if group == "all" else frame[(frame.head_tail == group) | (frame.script_group == group)]
        parts.append(_seed_means(members.assign(group=group), "group"))
    return pd.concat(parts, ignore_index=True)


def _seed_means(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    keys = ["model", "task", "metric", "seed", by]
    grouped = frame.groupby(keys, sort=False)["value"]
    return grouped.agg(score="mean", n_languages="size").reset_index()


def _over_seeds(per_seed: pd.DataFrame, by: str, extra: list[str] | None = None) -> pd.DataFrame:
    keys = ["model", "task", "metric", by, *(extra or [])]
    grouped = per_seed.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(mean=("score", "mean"), std=("score", lambda s: s.std(ddof=1) if len(s) > 1 else math.nan),
                      n_seeds=("seed", "nunique"), n_languages=("n_languages", "max")).reset_index()
    return out.sort_values(["task", by], key=_sort_key, kind="stable").reset_index(drop=True)


def _sort_key(column: pd.Series) -> pd.Series:
    """Tasks in the paper's order, groups in GROUP_ORDER, anything else alphabetically."""
    order = {"task": TASK_ORDER, "group": DEFAULT_GROUPS}.get(str(column.name))
    if order is None:
        return column.astype(str)
    if column.name == "task":  # "sr-t@margin" right after "sr-t": scorings of one task side by side
        from langsamp_cli.results import split_scored_task

        return column.map(lambda v: f"{order.index(b):04d}{v}" if (b := split_scored_task(v)[0]) in order
                          else f"9999{v}")
    return column.map(lambda v: f"{order.index(v):04d}" if v in order else f"9999{v}")


def _baseline_notes(frame: pd.DataFrame, scale: float) -> list[str]:
    """Per task: what a model with no signal scores (mean over the languages of each language's baseline)."""
    notes = []
    for task, part in frame.groupby("task", sort=False):
        floors = part.dropna(subset=["floor"]).drop_duplicates("lang_script")
        if not floors.empty:
            notes.append(f"{task}: a model with no signal scores {floors['floor'].mean() * scale:.1f} "
                         f"{part['metric'].iloc[0]} on these languages (mean of each language's baseline: chance "
                         "or majority class)")
    return notes


def _pair_matrix_notes(paths: list[Path]) -> list[str]:
    """One summary line per all-pairs result (its matrix files sit beside its results.json)."""
    from langsamp_cli.tasks.pair_matrix import summary

    return [line for line in (summary(load_results(p)) for p in paths) if line]


def _coverage_notes(frame: pd.DataFrame) -> list[str]:
    """Seeds of one model/task that cover different language sets make their means incomparable."""
    notes = []
    for (model, task), part in frame.groupby(["model", "task"], sort=False):
        sets = part.groupby("seed")["lang_script"].apply(frozenset)
        if sets.nunique() > 1:
            sizes = ", ".join(f"seed {s}: {len(v)}" for s, v in sets.items())
            notes.append(f"{task} {model}: seeds cover different languages ({sizes}); "
                         "finish or rerun the missing units")
    return notes


# ---------------------------------------------------------------------------- tables
def cell(mean: float, std: float) -> str:
    if not _finite(mean):
        return "-"
    return f"{mean:.1f}" if not _finite(std) else f"{mean:.1f} ({std:.1f})"


def task_label(task: str) -> str:
    """The registry label; a scoring run of a task is labelled after it: "SR-T (margin)" for "sr-t@margin"."""
    from langsamp_cli.results import split_scored_task

    base, scoring = split_scored_task(task)
    if task in TASK_LABELS or scoring == "cosine" or base not in TASK_LABELS:
        return TASK_LABELS.get(task, task)
    return f"{TASK_LABELS[base]} ({task[len(base) + 1:]})"


def table1_cells(report: Report) -> tuple[list[tuple[str, str]], list[str], list[list[str]]]:
    """(task, group) columns, model names, and the cell texts with the best mean per column in bold."""
    g = report.groups
    columns = [(t, grp) for t in dict.fromkeys(g.task) for grp in report.group_order]  # empty group: "-"
    models = list(dict.fromkeys(g.model))
    indexed = g.set_index(["model", "task", "group"])
    best = g.assign(shown=g["mean"].round(1)).groupby(["task", "group"])["shown"].max()  # ties as printed
    body = []
    for model in models:
        row = []
        for task, group in columns:
            if (model, task, group) not in indexed.index:
                row.append("-")
                continue
            entry = indexed.loc[(model, task, group)]
            text = cell(entry["mean"], entry["std"])
            row.append(f"**{text}**" if len(models) > 1 and round(entry["mean"], 1) == best[(task, group)] else text)
        body.append(row)
    return columns, models, body


def table1_grid(report: Report) -> tuple[list[str], list[str], list[str], list[list[str]]]:
    """The paper's Table 1: rows = tasks, columns = group x model (models side by side in each group).

    Returns (tasks, groups, models, rows) where ``rows[i]`` holds task i's cells in the order
    group 1 model 1, group 1 model 2, ..., group 2 model 1, ... (bold = best in its task and group).
    """
    columns, models, body = table1_cells(report)
    tasks = list(dict.fromkeys(t for t, _ in columns))
    groups = list(dict.fromkeys(g for _, g in columns))
    where = {column: i for i, column in enumerate(columns)}
    rows = [[body[m][where[(task, group)]] for group in groups for m in range(len(models))] for task in tasks]
    return tasks, groups, models, rows


def table1_markdown(report: Report) -> str:
    tasks, groups, models, rows = table1_grid(report)
    header = ["task", *(group if len(models) == 1 else f"{group} {model}" for group in groups for model in models)]
    return markdown_table(header, [[task_label(t), *row] for t, row in zip(tasks, rows)])


def table1_latex(report: Report) -> str:
    tasks, groups, models, rows = table1_grid(report)
    width = len(groups) * len(models)
    lines = [f"\\begin{{tabular}}{{l{'r' * width}}}", "\\toprule"]
    spans = " & ".join(f"\\multicolumn{{{len(models)}}}{{c}}{{{latex_escape(g)}}}" for g in groups)
    lines.append(f" & {spans} \\\\")
    lines.append("task & " + " & ".join(latex_escape(m) for _ in groups for m in models) + " \\\\")
    lines.append("\\midrule")
    lines += [" & ".join([latex_escape(task_label(t)), *(_latex_bold(c) for c in row)]) + " \\\\"
              for t, row in zip(tasks, rows)]
    return "\n".join([*lines, "\\bottomrule", "\\end{tabular}"]) + "\n"


def side_by_side(frame: pd.DataFrame, index: list[str]) -> tuple[list[str], list[list[str]]]:
    """Rows = ``index`` values, one column per model, cells mean (std)."""
    models = list(dict.fromkeys(frame.model))
    cells = frame.assign(cell=[cell(m, s) for m, s in zip(frame["mean"], frame["std"])])
    cells[index] = cells[index].astype(object).where(cells[index].notna(), "-")  # pivot drops missing keys
    order = list(dict.fromkeys(cells[index].itertuples(index=False, name=None)))  # the frame's (sorted) order
    wide = cells.pivot_table(index=index, columns="model", values="cell", aggfunc="first", sort=False)
    wide = wide.reindex(index=pd.MultiIndex.from_tuples(order, names=index), columns=models).fillna("-").reset_index()
    rows = [[_text(v) for v in row] for row in wide.itertuples(index=False)]
    return [*index, *models], rows


def _text(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def markdown_table(header: list[str], rows: list[list[str]], n_text_columns: int = 1) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    align = ["---"] * n_text_columns + ["---:"] * (len(header) - n_text_columns)
    return "\n".join([line(header), "| " + " | ".join(align) + " |", *map(line, rows)]) + "\n"


def latex_table(header: list[str], rows: list[list[str]], n_text_columns: int = 1) -> str:
    spec = "l" * n_text_columns + "r" * (len(header) - n_text_columns)
    lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule", " & ".join(map(latex_escape, header)) + " \\\\",
             "\\midrule", *(" & ".join(map(latex_escape, row)) + " \\\\" for row in rows), "\\bottomrule",
             "\\end{tabular}"]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex_bold(text: str) -> str:
    if text.startswith("**") and text.endswith("**"):
        return f"\\textbf{{{latex_escape(text[2:-2])}}}"
    return latex_escape(text)


# ---------------------------------------------------------------------------- writing
def render(report: Report) -> dict[str, dict[str, str]]:
    """{table name: {format: text}} for every table and format."""
    fam_header, fam_rows = side_by_side(report.families, ["task", "family", "n_languages"])
    lang_header, lang_rows = side_by_side(report.languages, ["task", "lang_script", "head_tail", "script_group"])
    tidy_columns = ["model", "task", "metric", "mean", "std", "n_seeds", "n_languages"]
    return {
        "table1": {"md": table1_markdown(report), "tex": table1_latex(report),
                   "csv": _csv(report.groups, ["model", "task", "group", *tidy_columns[2:]], report.scale)},
        "families": {"md": markdown_table(fam_header, fam_rows, 3), "tex": latex_table(fam_header, fam_rows, 3),
                     "csv": _csv(report.families, ["model", "task", "family", *tidy_columns[2:]], report.scale)},
        "languages": {"md": markdown_table(lang_header, lang_rows, 4), "tex": latex_table(lang_header, lang_rows, 4),
                      "csv": _csv(report.languages, ["model", "task", "lang_script", "head_tail", "script_group",
                                                     *tidy_columns[2:6]], report.scale)},
    }


def _csv(frame: pd.DataFrame, columns: list[str], scale: float) -> str:
    return frame[columns].assign(scale=scale).to_csv(index=False)


def parse_formats(value: str | None) -> list[str]:
    formats = [f.strip().lower().lstrip(".") for f in (value or ",".join(FORMATS)).split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise LangsampError(f"--format {value}: use a comma list of {', '.join(FORMATS)}")
    return formats


def write_report(report: Report, output_dir: Path, formats: list[str]) -> list[Path]:
    texts = render(report)
    return [atomic_write_text(Path(output_dir) / f"{name}.{fmt}", by_format[fmt])
            for name, by_format in texts.items() for fmt in formats]


def print_report(report: Report, console=None) -> None:
    """Table 1, one Markdown table per task (models side by side), rendered by rich."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from langsamp_cli.progress import print_table

    console = console or Console()
    columns, models, body = table1_cells(report)
    for task in dict.fromkeys(t for t, _ in columns):
        picked = [i for i, (t, _) in enumerate(columns) if t == task]
        part = report.groups[report.groups.task == task]
        console.print(f"{task_label(task)}: {part.metric.iloc[0]} x{report.scale:g}, mean (std) over "
                      f"{part.n_seeds.max()} seed(s)", highlight=False)
        header = ["model", *(columns[i][1] for i in picked)]
        rows = [[m, *(row[i] for i in picked)] for m, row in zip(models, body)]
        table = Table(*header)
        for column in table.columns[1:]:
            column.justify = "right"
        for row in rows:  # **best** of the Markdown tables -> bold
            table.add_row(*(re.sub(r"\*\*(.+?)\*\*", r"[bold]\1[/]", escape(cell)) for cell in row))
        print_table(table, console)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
