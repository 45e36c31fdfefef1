"""PCA of the learned language and script embeddings (paper Figure 3).

The language table of a LangSAMP checkpoint is per ISO 639-3 language in the official format
(``zho``, not ``zho_Hani``), so each point is labelled with its table key. Its script (for
colouring) is the language's main script and its family comes from
:func:`langsamp_cli.languages.groups_for`; it is *head* when any of its language-scripts is
covered by XLM-R (the paper's head list), since one row serves every script of the language. Checkpoints keyed by full
``lang_Script`` ids work the same way, labelled by those ids.

PCA is fitted on the selected rows only, so the picture shows the structure among the languages
asked for (fitting on all 610 and showing 10 would mostly show unrelated variance).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from langsamp_cli.errors import LangsampError
from langsamp_cli.languages import LANG_SCRIPT_RE
from langsamp_cli.plots import UNKNOWN_GROUP as UNKNOWN

COLOR_BY = ("script", "family", "head_tail")
CSV_COLUMNS = ("table", "label", "lang_script", "x", "y", "script", "family", "head_tail")


@dataclass
class Points:
    """Rows of one embedding table, with what the plot colours by."""

    table: str  # "language" or "script"
    labels: list[str]
    vectors: np.ndarray
    lang_scripts: list[str | None]
    scripts: list[str]
    families: list[str]
    head_tail: list[str]
    skipped: dict[str, str] = field(default_factory=dict)

    def group(self, color_by: str) -> list[str]:
        return {"script": self.scripts, "family": self.families, "head_tail": self.head_tail}[color_by]


# ---------------------------------------------------------------------------- language metadata
def _lang_script_of(key: str, table_scripts: Sequence[str] = ()) -> str | None:
    """``key`` as a ``lang_Script`` id: its main script, or the alias whose script the checkpoint's
    script table has (the official table has ``Hang``, not ``Kore``, so ``kor`` is ``kor_Hang``)."""
    if LANG_SCRIPT_RE.match(key):
        return key
    from langsamp_cli.languages import lang_script_aliases, parse_lang_script

    try:
        main = parse_lang_script(key).id
    except LangsampError:
        return None
    if table_scripts and main.split("_", 1)[1] not in table_scripts:
        for alias in lang_script_aliases(main):
            lang, _, script = alias.partition("_")
            if lang == key and script in table_scripts:
                return alias
    return main


def _groups(lang_script: str | None) -> dict:
    if lang_script is None:
        return {}
    from langsamp_cli.languages import groups_for

    try:
        return groups_for(lang_script)
    except LangsampError:
        return {}


def _head_tail(key: str, lang_script: str | None, groups: dict) -> str:
    """Per ISO 639-3 key: head when ANY script of the language is covered by XLM-R (e.g. srp via Cyrl or Latn)."""
    if LANG_SCRIPT_RE.match(key):
        return groups.get("head_tail") or UNKNOWN
    from langsamp_cli.languages import head_language_scripts

    if any(h.split("_", 1)[0] == key for h in head_language_scripts()):
        return "head"
    return "tail" if lang_script else UNKNOWN


def language_points(tables) -> Points:
    if tables.lang is None:
        raise LangsampError("this checkpoint has no language-embedding table (variant 'script' or 'vanilla'); "
                            "use --table script")
    keys = sorted(tables.lang2id, key=tables.lang2id.get)
    ids = [_lang_script_of(k, tuple(tables.script2id)) for k in keys]
    groups = [_groups(i) for i in ids]
    return Points(
        table="language", labels=keys, vectors=np.asarray(tables.lang[[tables.lang2id[k] for k in keys]]),
        lang_scripts=ids, scripts=[i.split("_", 1)[1] if i else UNKNOWN for i in ids],
        families=[g.get("family") or UNKNOWN for g in groups],
        head_tail=[_head_tail(k, i, g) for k, i, g in zip(keys, ids, groups)],
    )


def script_points(tables) -> Points:
    if tables.script is None:
        raise LangsampError("this checkpoint has no script-embedding table (variant 'lang' or 'vanilla'); "
                            "use --table language")
    keys = sorted(tables.script2id, key=tables.script2id.get)
    return Points(
        table="script", labels=keys, vectors=np.asarray(tables.script[[tables.script2id[k] for k in keys]]),
        lang_scripts=[None] * len(keys), scripts=keys, families=[UNKNOWN] * len(keys),
        head_tail=[UNKNOWN] * len(keys),
    )


# ---------------------------------------------------------------------------- selection
def select(points: Points, spec: str | None, tables=None) -> Points:
    """``all`` | ``head`` | ``tail`` | ``family:NAME`` (or a bare family name such as ``Indo-European``) |
    a comma list or file of ids / ISO codes."""
    spec = (spec or "all").strip()
    families = {f.lower() for f in points.families if f != UNKNOWN}
    if spec.lower() in families and spec.lower() not in ("all", "head", "tail"):
        spec = f"family:{spec}"
    if spec == "all":
        keep = list(range(len(points.labels)))
    elif spec in ("head", "tail"):
        keep = [i for i, g in enumerate(points.head_tail) if g == spec]
    elif spec.lower().startswith("family:"):
        wanted = spec.split(":", 1)[1].strip().lower()
        keep = [i for i, f in enumerate(points.families) if f.lower() == wanted]
        if not keep:
            known = sorted({f for f in points.families if f != UNKNOWN})
            raise LangsampError(f"--languages {spec}: no language of that family in the table; families: "
                                f"{', '.join(known[:15])}{' ...' if len(known) > 15 else ''}")
    else:
        keep, skipped = _listed(points, spec)
        points.skipped.update(skipped)
    if not keep:
        raise LangsampError(f"--languages {spec}: selects none of the {len(points.labels)} languages in the "
                            "table; try --languages all")
    return _subset(points, keep)


def _listed(points: Points, spec: str) -> tuple[list[int], dict[str, str]]:
    from langsamp_cli.embedding_tables import language_key
    from langsamp_cli.languages import parse_language_list

    index = {label: i for i, label in enumerate(points.labels)}
    keep, skipped = [], {}
    for lang in parse_language_list(spec) or []:
        key = language_key(lang, index) if points.table == "language" else lang.split("_")[-1]
        if key in index:
            keep.append(index[key])
        else:
            skipped[lang] = f"not in the {points.table}-embedding table"
    return list(dict.fromkeys(keep)), skipped


def _subset(points: Points, keep: list[int]) -> Points:
    def pick(values):
        return [values[i] for i in keep]

    return Points(points.table, pick(points.labels), points.vectors[keep], pick(points.lang_scripts),
                  pick(points.scripts), pick(points.families), pick(points.head_tail), dict(points.skipped))


# ---------------------------------------------------------------------------- PCA and files
def _label_matches(label: str, wanted: Sequence[str]) -> bool:
    """``eng`` matches a wanted ``eng_Latn`` (official tables are keyed by ISO code) and vice versa."""
    return any(label == w or label == w.split("_", 1)[0] or label.split("_", 1)[0] == w for w in wanted)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    """(n, 2) coordinates and the explained variance ratio of the two components."""
    from sklearn.decomposition import PCA

    if vectors.shape[0] < 3:
        raise LangsampError(f"PCA needs at least 3 embeddings to place in 2-D, got {vectors.shape[0]}; "
                            "select more languages")
    # The exact solver: scikit-learn's default ("auto") switches to a randomized SVD above 500 rows
    # (the released 610-language table), whose coordinates are only approximate.
    pca = PCA(n_components=2, svd_solver="full")
    coords = pca.fit_transform(np.asarray(vectors, dtype=np.float64))
    return coords, [float(v) for v in pca.explained_variance_ratio_]


def coordinates_csv(points: Points, coords: np.ndarray) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, label in enumerate(points.labels):
        writer.writerow([points.table, label, points.lang_scripts[i] or "", f"{coords[i, 0]:.6f}",
                         f"{coords[i, 1]:.6f}", points.scripts[i], points.families[i], points.head_tail[i]])
    return buffer.getvalue()


@dataclass
class PcaOutput:
    table: str
    n: int
    explained_variance: list[float]
    files: list[Path]
    skipped: dict[str, str]


def plot_table(points: Points, color_by: str, output_dir: Path, model_name: str,
               always_label: Sequence[str] = (), max_labels: int | None = None) -> PcaOutput:
    from langsamp_cli import plots
    from langsamp_cli.io_utils import atomic_write_text

    if color_by not in COLOR_BY:
        raise LangsampError(f"--color-by {color_by!r} is unknown; use one of {', '.join(COLOR_BY)}")
    coords, explained = pca_2d(points.vectors)
    stem = Path(output_dir) / f"{points.table}_pca"
    files = [atomic_write_text(stem.with_suffix(".csv"), coordinates_csv(points, coords))]
    groups = points.group(color_by) if points.table == "language" else points.scripts
    # Script points are labelled with their script already; a colour each only helps while colours stay distinct.
    legend = points.table == "language" or len(set(groups)) <= plots.MAX_GROUPS
    files += plots.plot_embedding_scatter(
        coords, points.labels, groups if legend else ["script"] * len(groups), stem,
        title=f"{model_name}: PCA of {points.table} embeddings (n={len(points.labels)})",
        legend_title=color_by if points.table == "language" else "script",
        always_label=[label for label in points.labels if _label_matches(label, always_label)],
        legend=legend,
        max_labels=plots.MAX_LABELS if max_labels is None else max_labels,
        axis_labels=(f"PC1 ({explained[0]:.1%})", f"PC2 ({explained[1]:.1%})"),
    )
    return PcaOutput(points.table, len(points.labels), explained, files, points.skipped)
