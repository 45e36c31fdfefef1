"""Centroid-subtracted pairwise cosine similarity of parallel sentences (paper §5.3, Figures 4/5).

For every language, N parallel sentences are encoded (mean pooling of layer ``k``); each
language's centroid (the mean of its N vectors) is subtracted from its vectors, which removes the
language-specific offset; the score of a language pair (A, B) is the mean over i of
``cos(a_i - mean(a), b_i - mean(b))``, i.e. translation pairs only. The matrix is symmetric and
its diagonal is 1 (a sentence against itself).

With a second model (``--compare``) the per-pair difference ``ours - baseline`` is shown (tables,
heatmaps), where *ours* is ``--model`` and *baseline* is the ``--compare`` checkpoint. The paper's
Figure 4 uses the relative improvement ``(ours - baseline) / |baseline| * 100``; it is kept in the files,
but only where ``|baseline| >= MIN_PERCENT_BASE``: a centroid-subtracted cosine near zero (common for
small models) would turn a tiny difference into a five-digit percentage. Those pairs are left empty.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from langsamp_cli.errors import LangsampError
from langsamp_cli.protocol import PAPER_LAYER

PAPER_LANGUAGES = ("eng_Latn", "rus_Cyrl", "zho_Hani", "arb_Arab", "hin_Deva",
                   "jpn_Jpan", "tur_Latn", "spa_Latn", "ind_Latn", "swa_Latn")
DEFAULT_N = 100
DEFAULT_LAYER = PAPER_LAYER
DEFAULT_SEED = 1
MIN_PERCENT_BASE = 0.05  # |baseline| below this: no relative improvement (it would explode)
_EPS = 1e-12


# ---------------------------------------------------------------------------- the numbers
def subtract_centroid(vectors: np.ndarray) -> np.ndarray:
    """Rows minus their mean row (the language centroid)."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors - vectors.mean(axis=0, keepdims=True)


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, _EPS)


def pairwise_similarity(vectors: dict[str, np.ndarray], languages: Sequence[str] | None = None) -> np.ndarray:
    """(L, L) matrix of mean translation-pair cosine after centroid subtraction.

    ``vectors[lang]`` is (n, d) with row i of every language being the same sentence.
    """
    languages = list(languages or vectors)
    shapes = {vectors[lang].shape for lang in languages}
    if len(shapes) != 1:
        raise LangsampError(f"parallel vectors must all have the same shape, got {sorted(shapes)}")
    units = np.stack([_unit_rows(subtract_centroid(vectors[lang])) for lang in languages])  # (L, n, d)
    # Row-wise dot products for every language pair, averaged over the n translation pairs.
    return np.einsum("and,bnd->ab", units, units) / units.shape[1]


def improvement_percent(ours: np.ndarray, baseline: np.ndarray, min_base: float = MIN_PERCENT_BASE) -> np.ndarray:
    """``(ours - baseline) / |baseline| * 100``; NaN where ``|baseline| < min_base`` (near zero: meaningless)."""
    ours, baseline = np.asarray(ours, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (ours - baseline) / np.abs(baseline) * 100.0
    out[np.abs(baseline) < max(min_base, _EPS)] = np.nan
    return out


def difference(ours: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """``ours - baseline``, pair by pair (what tables and heatmaps show)."""
    return np.asarray(ours, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)


def near_zero_pairs(result: "SimilarityResult") -> int:
    """Off-diagonal pairs whose baseline is too close to zero for a relative improvement."""
    if result.compare_matrix is None:
        return 0
    pairs = off_diagonal_pairs(result.languages)
    return int(sum(abs(result.compare_matrix[i, j]) < MIN_PERCENT_BASE for i, j in pairs))


def off_diagonal_pairs(languages: Sequence[str]) -> list[tuple[int, int]]:
    return [(i, j) for i in range(len(languages)) for j in range(i + 1, len(languages))]


# ---------------------------------------------------------------------------- the run
@dataclass
class SimilarityResult:
    languages: list[str]
    matrix: np.ndarray
    model: str
    n: int
    compare_model: str | None = None
    compare_matrix: np.ndarray | None = None
    improvement: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def improved_pairs(self) -> tuple[int, int]:
        """(pairs where ours > baseline, all off-diagonal pairs)."""
        if self.compare_matrix is None:
            return 0, 0
        pairs = off_diagonal_pairs(self.languages)
        better = sum(self.matrix[i, j] > self.compare_matrix[i, j] for i, j in pairs)
        return int(better), len(pairs)


def model_max_length(model: str, wanted: int = 512) -> int:
    """``wanted`` capped at the model's usable positions (small demo models have 128)."""
    from langsamp_cli.model import model_usable_positions

    limit = model_usable_positions(model)  # None: the encoder reports an unloadable model with its own message
    return wanted if limit is None else min(wanted, limit)


def encode_sample(model: str, texts: dict[str, list[str]], layer: int, **encoder_options) -> dict[str, np.ndarray]:
    """Layer-``layer`` mean-pooled vectors per language, from the toolkit's one sentence encoder."""
    from langsamp_cli.encode import SentenceEncoder

    if encoder_options.get("max_length") is None:
        encoder_options = {**encoder_options, "max_length": model_max_length(model)}
    encoder = SentenceEncoder(model, layer=layer, **encoder_options)
    return {lang: encoder.encode(sentences) for lang, sentences in texts.items()}


def run_similarity(model: str, data_dir: Path, languages: Sequence[str], n: int = DEFAULT_N,
                   layer: int = DEFAULT_LAYER, seed: int = DEFAULT_SEED, compare: str | None = None,
                   **encoder_options) -> tuple[SimilarityResult, dict]:
    """Sample, encode and score; returns the result and the data bookkeeping (aliases, missing, dropped)."""
    texts, bookkeeping = _parallel_sample(data_dir, languages, n, seed)
    usable = list(texts)
    matrix = pairwise_similarity(encode_sample(model, texts, layer, **encoder_options), usable)
    result = SimilarityResult(usable, matrix, model, len(bookkeeping["sentence_ids"]))
    if compare:
        result.compare_model = compare
        result.compare_matrix = pairwise_similarity(encode_sample(compare, texts, layer, **encoder_options), usable)
        result.improvement = improvement_percent(matrix, result.compare_matrix)
    result.provenance = _provenance(result, layer, seed, n, bookkeeping)
    return result, bookkeeping


def encode_sample_layers(model: str, texts: dict[str, list[str]], layers: Sequence[int],
                         **encoder_options) -> dict[int, dict[str, np.ndarray]]:
    """``{layer: {language: vectors}}`` from one forward pass per batch (``SentenceEncoder.encode_layers``)."""
    from langsamp_cli.encode import SentenceEncoder

    if encoder_options.get("max_length") is None:
        encoder_options = {**encoder_options, "max_length": model_max_length(model)}
    encoder = SentenceEncoder(model, layer=max(layers), **encoder_options)
    by_language = {lang: encoder.encode_layers(sentences, layers) for lang, sentences in texts.items()}
    return {k: {lang: vectors[k] for lang, vectors in by_language.items()} for k in sorted(set(layers))}


def run_similarity_layers(model: str, data_dir: Path, languages: Sequence[str], layers: Sequence[int],
                          n: int = DEFAULT_N, seed: int = DEFAULT_SEED, compare: str | None = None,
                          **encoder_options) -> tuple[dict[int, SimilarityResult], dict]:
    """``run_similarity`` at every layer in ``layers`` from one encoding pass per model: {layer: result}."""
    texts, bookkeeping = _parallel_sample(data_dir, languages, n, seed)
    usable = list(texts)
    ours = encode_sample_layers(model, texts, layers, **encoder_options)
    theirs = encode_sample_layers(compare, texts, layers, **encoder_options) if compare else {}
    results = {}
    for k, vectors in ours.items():
        result = SimilarityResult(usable, pairwise_similarity(vectors, usable), model, len(bookkeeping["sentence_ids"]))
        if compare:
            result.compare_model = compare
            result.compare_matrix = pairwise_similarity(theirs[k], usable)
            result.improvement = improvement_percent(result.matrix, result.compare_matrix)
        result.provenance = _provenance(result, k, seed, n, bookkeeping)
        results[k] = result
    return results, bookkeeping


def _parallel_sample(data_dir: Path, languages: Sequence[str], n: int,
                     seed: int) -> tuple[dict[str, list[str]], dict]:
    """The sampled parallel sentences of every usable language (request order) and the data bookkeeping."""
    import warnings

    from langsamp_cli.data.multiparallel import load_multiparallel, sample_parallel

    with warnings.catch_warnings(record=True) as caught:  # reader notes (e.g. a second Bible of one language)
        warnings.simplefilter("always")
        data = load_multiparallel(data_dir, languages)
    sample = sample_parallel(data, n, seed)
    usable = [lang for lang in languages if lang in sample.texts]
    if len(usable) < 2:
        reasons = "; ".join(f"{k}: {v}" for k, v in {**data.missing, **sample.dropped}.items())
        raise LangsampError(f"--data-dir {data_dir}: need parallel data for at least 2 languages, "
                            f"found {len(usable)} ({reasons or 'none requested'})")
    if len(sample.ids) < 2:
        raise LangsampError(f"--data-dir {data_dir}: the languages share {len(sample.ids)} parallel sentence(s); "
                            "need at least 2 (each language's mean vector is subtracted)")
    texts = {lang: sample.texts[lang] for lang in usable}
    bookkeeping = {
        "format": data.format,
        "data_dir": str(data.data_dir),
        "used_ids": {lang: data.used[lang] for lang in usable},
        "aliased": {k: v for k, v in data.aliased().items() if k in usable},
        "missing": data.missing,
        "dropped": sample.dropped,
        "sources": {lang: data.sources[lang] for lang in usable},
        "notes": list(dict.fromkeys(str(w.message) for w in caught)),
        "shared_sentences": sample.shared_available,
        "sentence_ids": sample.ids,
    }
    return texts, bookkeeping


def _provenance(result: SimilarityResult, layer: int, seed: int, n_requested: int, bookkeeping: dict) -> dict:
    from langsamp_cli import __version__
    from langsamp_cli.checkpoint_info import model_adjustments

    record = {
        "toolkit_version": __version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": result.model,
        "model_fingerprint": _fingerprint(result.model),
        "model_adjustments": model_adjustments(result.model),  # e.g. a zero token-type table (official format)
        "layer": layer,
        "pooling": "mean (special tokens included), centroid subtracted per language",
        "seed": seed,
        "n_requested": n_requested,
        "n_used": result.n,
    }
    if result.compare_model:
        record["compare_model"] = result.compare_model
        record["compare_model_fingerprint"] = _fingerprint(result.compare_model)
        record["compare_model_adjustments"] = model_adjustments(result.compare_model)
    return {**record, "data": bookkeeping}


def _fingerprint(model: str) -> str | None:
    try:
        from langsamp_cli.model import model_fingerprint

        return model_fingerprint(model)
    except (ImportError, LangsampError, OSError):
        return None


# ---------------------------------------------------------------------------- files
def matrix_csv(matrix: np.ndarray, languages: Sequence[str], fmt: str = "{:.6f}") -> str:
    lines = [",".join(["language", *languages])]
    for lang, row in zip(languages, matrix):
        lines.append(",".join([lang, *("" if np.isnan(v) else fmt.format(v) for v in row)]))
    return "\n".join(lines) + "\n"


def write_outputs(result: SimilarityResult, output_dir: Path) -> list[Path]:
    """similarity.csv/.png/.svg/.json (+ baseline and improvement files with --compare)."""
    from langsamp_cli import plots
    from langsamp_cli.io_utils import atomic_write_json, atomic_write_text

    output_dir = Path(output_dir)
    written = [atomic_write_text(output_dir / "similarity.csv", matrix_csv(result.matrix, result.languages))]
    ours_name, baseline_name = display_names(result.model, result.compare_model)
    written += plots.plot_similarity_heatmap(result.matrix, result.languages, output_dir / "similarity",
                                             title=f"{ours_name}: centroid-subtracted cosine (n={result.n})")
    if result.compare_matrix is not None and result.improvement is not None:
        better, total = result.improved_pairs()
        written.append(atomic_write_text(output_dir / "similarity_baseline.csv",
                                         matrix_csv(result.compare_matrix, result.languages)))
        written.append(atomic_write_text(output_dir / "difference.csv",
                                         matrix_csv(difference(result.matrix, result.compare_matrix),
                                                    result.languages)))
        written.append(atomic_write_text(output_dir / "improvement_percent.csv",
                                         matrix_csv(result.improvement, result.languages, "{:.4f}")))
        written += plots.plot_similarity_comparison(
            result.matrix, result.compare_matrix, difference(result.matrix, result.compare_matrix), result.languages,
            (baseline_name, ours_name), output_dir / "similarity_compare",
            suptitle=f"centroid-subtracted cosine, n={result.n}: {better} of {total} language pairs improved")
    json_path = output_dir / "similarity.json"
    result.files = [*written, json_path]
    atomic_write_json(json_path, to_json(result))
    return result.files


def layer_summary(results: dict[int, SimilarityResult]) -> list[dict]:
    """Per layer: mean / min / max off-diagonal similarity (and the baseline's mean, pairs improved)."""
    rows = []
    for k, result in sorted(results.items()):
        pairs = off_diagonal_pairs(result.languages)
        values = np.array([result.matrix[i, j] for i, j in pairs])
        row = {"layer": k, "languages": len(result.languages), "pairs": len(pairs), "n": result.n,
               "mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}
        if result.compare_matrix is not None:
            baseline = np.array([result.compare_matrix[i, j] for i, j in pairs])
            row.update({"baseline_mean": float(baseline.mean()), "pairs_improved": result.improved_pairs()[0]})
        rows.append(row)
    return rows


def write_layer_outputs(results: dict[int, SimilarityResult], output_dir: Path) -> list[Path]:
    """``layer<k>/`` with every single-layer file per layer, plus layers.csv/.json and a layers.png/.svg plot."""
    from langsamp_cli import plots
    from langsamp_cli.io_utils import atomic_write_json, atomic_write_text

    output_dir = Path(output_dir)
    written = []
    for k, result in sorted(results.items()):
        written += write_outputs(result, output_dir / f"layer{k}")
    rows = layer_summary(results)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = [",".join(columns)] + [",".join(_csv_value(row.get(c)) for c in columns) for row in rows]
    written.append(atomic_write_text(output_dir / "layers.csv", "\n".join(lines) + "\n"))
    first = next(iter(results.values()))
    ours_name, baseline_name = display_names(first.model, first.compare_model)
    layers = [row["layer"] for row in rows]
    lines_by_model = {(ours_name, "all pairs"): (layers, [r["mean"] for r in rows], [math.nan] * len(rows))}
    if first.compare_model:
        lines_by_model[(baseline_name, "all pairs")] = (layers, [r["baseline_mean"] for r in rows],
                                                        [math.nan] * len(rows))
    written += plots.plot_metric_by_layer({f"centroid-subtracted cosine (n={first.n})": lines_by_model},
                                          output_dir / "layers", ylabel="mean similarity of language pairs")
    json_path = output_dir / "layers.json"
    atomic_write_json(json_path, {"layers": rows, "files": [str(p) for p in written]})
    return [*written, json_path]


def _csv_value(value) -> str:
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)


def to_json(result: SimilarityResult) -> dict:
    def as_dict(matrix: np.ndarray | None) -> dict | None:
        if matrix is None:
            return None
        return {a: {b: (None if np.isnan(v) else float(v)) for b, v in zip(result.languages, row)}
                for a, row in zip(result.languages, matrix)}

    record = {"languages": result.languages, "n": result.n, "similarity": as_dict(result.matrix)}
    if result.compare_matrix is not None:
        better, total = result.improved_pairs()
        record.update({
            "baseline": (f"the --compare model; difference = ours - baseline; improvement_percent = (ours - baseline) "
                         f"/ |baseline| * 100, empty (null) where |baseline| < {MIN_PERCENT_BASE}"),
            "baseline_similarity": as_dict(result.compare_matrix),
            "difference": as_dict(difference(result.matrix, result.compare_matrix)),
            "improvement_percent": as_dict(result.improvement),
            "improvement_percent_skipped_pairs": near_zero_pairs(result),
            "pairs_improved": better,
            "pairs_total": total,
        })
    record["files"] = [str(p) for p in result.files]
    record["provenance"] = result.provenance
    return record


_GENERIC_NAMES = {"final", "best", "model", "checkpoint", "ckpt", "output", "snapshot"}


def _short(model: str, parts: int = 1) -> str:
    """The last ``parts`` components of a path (a hub name ``org/name`` stays whole)."""
    pieces = [p for p in Path(model).parts if p not in ("/", "")]
    return "/".join(pieces[-parts:]) if pieces else model


def display_names(model: str, compare: str | None = None) -> tuple[str, str | None]:
    """Short names for figure titles that still tell the models apart.

    ``runs/pretrain-demo/final`` and ``runs/pretrain-vanilla/final`` are both "final" by their last
    component, so a generic last component (``final``, ``checkpoint-500``) or two equal names take
    one more component (``pretrain-demo/final``) until they differ.
    """
    def generic(name: str) -> bool:
        last = name.rsplit("/", 1)[-1].lower()
        return last in _GENERIC_NAMES or last.startswith(("checkpoint-", "step-", "step_"))

    models = [m for m in (model, compare) if m]
    parts = 1
    while parts < 4:
        names = [_short(m, parts) for m in models]
        clash = len(set(names)) < len(names)
        if not clash and not any(generic(n) and "/" not in n for n in names):
            break
        parts += 1
    names = [_short(m, parts) for m in models]
    return names[0], (names[1] if compare else None)
