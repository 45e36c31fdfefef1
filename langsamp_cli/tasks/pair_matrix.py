"""The all-pairs retrieval matrix from an sr-pairs results.json: CSV files, a heatmap, a one-line summary.

Written next to results.json (and rebuilt whenever the units change, so shards leave a complete
matrix once the last one finishes; rows of query languages not yet scored are empty):

- ``matrix_acc@k.csv`` per recorded k and ``matrix_xsim_error.csv``: rows = query language,
  columns = target language, in heatmap order (script, then family, then id); the diagonal is empty;
- ``languages.csv``: per language its mean as query and as target, and the English row/column
  (``to_eng``: the language's sentences searching English; ``from_eng``: English searching it, the
  direction of SR-T/SR-B) for every metric, so the English-centric number sits beside the others;
- ``heatmap_acc@1.png`` / ``.svg`` (acc@1, or the smallest recorded k).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from langsamp_cli.io_utils import atomic_write_text

ENGLISH = "eng_Latn"


def is_pairs_result(results: dict) -> bool:
    """True for a results.json whose units carry an all-pairs row."""
    return any("row" in (r.get("extra") or {}) for r in results.get("languages", []))


def matrices(results: dict) -> dict[str, pd.DataFrame]:
    """metric -> square frame (query x target, heatmap order) with NaN where nothing was scored."""
    records = [r for r in results["languages"] if "row" in (r.get("extra") or {})]
    config = (results.get("provenance") or {}).get("config") or {}
    names = list(config.get("targets") or [])
    seen = {t for r in records for t in r["extra"]["row"]} | {r["lang_script"] for r in records}
    names += sorted(seen - set(names))
    order = heatmap_order(names)
    ks = records[0]["extra"]["ks"] if records else []
    position = {lang: i for i, lang in enumerate(order)}
    cells = np.full((len(ks), len(order), len(order)), np.nan)
    for r in records:
        for target, values in r["extra"]["row"].items():
            cells[:, position[r["lang_script"]], position[target]] = values
    out = {f"acc@{k}": pd.DataFrame(cells[i], index=order, columns=order) for i, k in enumerate(ks)}
    if "acc@1" in out:
        out["xsim_error"] = 1.0 - out["acc@1"]
    for frame in out.values():
        frame.index.name = "query\\target"
    return out


def heatmap_order(languages: list[str]) -> list[str]:
    """Grouped by script, then family (unknown last), then id."""
    from langsamp_cli.results import language_groups

    def key(lang: str) -> tuple[str, str, str]:
        script = lang.partition("_")[2]
        return script, language_groups(lang).get("family") or "~", lang

    return sorted(languages, key=key)


def language_table(frames: dict[str, pd.DataFrame], english: str = ENGLISH) -> pd.DataFrame:
    """Per language: mean as query, mean as target, to/from English, for every metric."""
    first = next(iter(frames.values()))
    table = pd.DataFrame(index=first.index)
    table.index.name = "lang_script"
    table["script"] = [lang.partition("_")[2] for lang in first.index]
    for metric, frame in frames.items():
        table[f"as_query_{metric}"] = frame.mean(axis=1, skipna=True)
        table[f"as_target_{metric}"] = frame.mean(axis=0, skipna=True)
        if english in frame.index:
            table[f"to_eng_{metric}"] = frame[english]
            table[f"from_eng_{metric}"] = frame.loc[english]
    table["queries_scored_against"] = first.notna().sum(axis=1)
    return table


def write_matrix(results_json: Path) -> list[Path]:
    """Write the matrix CSVs, languages.csv and the heatmap next to ``results_json``; [] if nothing scored."""
    from langsamp_cli.plots import plot_pair_matrix
    from langsamp_cli.results import load_results

    results_json = Path(results_json)
    results = load_results(results_json)
    if not is_pairs_result(results):
        return []
    folder = results_json.parent
    frames = matrices(results)
    english = (results.get("provenance") or {}).get("config", {}).get("source_lang") or ENGLISH
    written = [atomic_write_text(folder / f"matrix_{metric}.csv", frame.to_csv(float_format="%.6g"))
               for metric, frame in frames.items()]
    written.append(atomic_write_text(folder / "languages.csv", language_table(frames, english)
                                     .to_csv(float_format="%.6g")))
    shown = "acc@1" if "acc@1" in frames else next(iter(frames))
    frame = frames[shown]
    scoring = (results.get("provenance") or {}).get("config", {}).get("scoring", "cosine")
    title = (f"{results['task']}: {shown} ({scoring}), {frame.notna().any(axis=1).sum()} query x "
             f"{len(frame.columns)} target languages")
    written += plot_pair_matrix(frame.to_numpy(dtype=float), list(frame.index),
                                [lang.partition("_")[2] for lang in frame.index], folder / f"heatmap_{shown}",
                                title, highlight=english)
    return written


def summary(results: dict) -> str | None:
    """One line for `langsamp report`: size, all-pairs means, and the English-centric numbers beside them."""
    if not is_pairs_result(results):
        return None
    frames = matrices(results)
    english = (results.get("provenance") or {}).get("config", {}).get("source_lang") or ENGLISH
    first = next(iter(frames.values()))
    parts = [f"{results['task']} {results['model']}: {int(first.notna().any(axis=1).sum())} query x "
             f"{len(first.columns)} target languages"]
    for metric, frame in frames.items():
        if metric == "xsim_error":
            continue
        text = f"{metric} all pairs {100 * np.nanmean(frame.to_numpy(dtype=float)):.1f}"
        if english in frame.index and frame.loc[english].notna().any():
            text += f", from {english} {100 * np.nanmean(frame.loc[english].to_numpy(dtype=float)):.1f}"
        if english in frame.columns and frame[english].notna().any():
            text += f", to {english} {100 * np.nanmean(frame[english].to_numpy(dtype=float)):.1f}"
        parts.append(text)
    return "; ".join(parts) + " (matrix_*.csv, languages.csv, heatmap next to its results.json)"
