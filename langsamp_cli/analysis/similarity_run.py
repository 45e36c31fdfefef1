"""Library entry point of `langsamp similarity`: check inputs -> sample, encode, score -> files -> typed summary.

``similarity_report(model, data_dir, ...)`` is what `langsamp similarity` does (the command only parses
flags, calls it and prints the matrices); the experiment's ``similarity:<variant>`` stages call it too.
The numbers and files come from :mod:`langsamp_cli.analysis.similarity`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from langsamp_cli.analysis.similarity import (
    DEFAULT_LAYER,
    DEFAULT_N,
    DEFAULT_SEED,
    PAPER_LANGUAGES,
    SimilarityResult,
    layer_summary,
)
from langsamp_cli.errors import LangsampError
from langsamp_cli.logs import get_logger

DEFAULT_OUTPUT_DIR = Path("results/similarity")


@dataclass
class SimilarityReport:
    """What one `langsamp similarity` run computed and wrote."""

    model: str                                    # resolved --model
    compare: str | None                           # resolved --compare (the baseline), if any
    output_dir: Path
    n_requested: int
    data: dict                                    # data bookkeeping: format, aliased, missing, dropped, notes ...
    files: list[Path] = field(default_factory=list)
    result: SimilarityResult | None = None        # the one layer (None when several layers were asked for)
    layers: dict[int, SimilarityResult] = field(default_factory=dict)  # layer -> result (--layers runs only)

    @property
    def results(self) -> list[SimilarityResult]:
        return [self.result] if self.result is not None else [self.layers[k] for k in sorted(self.layers)]

    @property
    def languages(self) -> list[str]:
        return self.results[0].languages

    @property
    def n(self) -> int:
        """Parallel sentences used per language (fewer than asked when fewer are shared)."""
        return self.results[0].n

    def summary(self) -> list[dict]:
        """Per layer: mean / min / max off-diagonal similarity (+ baseline mean and pairs improved)."""
        return layer_summary({r.provenance.get("layer", DEFAULT_LAYER): r for r in self.results})

    def data_notes(self) -> list[tuple[str, str]]:
        """(kind, text) lines about the data: kind '' (plain), 'note' or 'not used'."""
        data = self.data
        lines = [("", f"data: {data['format']} in {data['data_dir']}; {self.n} parallel sentences per language "
                      f"(pool of {data['shared_sentences']} shared)")]
        lines += [("", f"{wanted}: using the data of {used}") for wanted, used in data["aliased"].items()]
        lines += [("note", note) for note in data.get("notes", [])]
        lines += [("not used", f"{lang}: {reason}") for lang, reason in {**data["missing"], **data["dropped"]}.items()]
        if self.n < self.n_requested:
            lines.append(("note", f"only {self.n} sentences are shared by all languages (asked for "
                                  f"{self.n_requested})"))
        return lines

    def wrote_line(self) -> str:
        if self.layers:
            return f"wrote {len(self.files)} files under {self.output_dir} (layers.csv: the summary)"
        return "wrote " + ", ".join(str(p) for p in self.files)

    def describe(self) -> str:
        """Plain lines: mean similarity per layer (and against the baseline), files (the data notes are logged)."""
        lines = []
        for row in self.summary():
            line = (f"layer {row['layer']}: mean similarity of {row['pairs']} language pairs {row['mean']:.3f} "
                    f"(min {row['min']:.3f}, max {row['max']:.3f})")
            if "baseline_mean" in row:
                line += (f"; baseline {row['baseline_mean']:.3f}; {row['pairs_improved']} of {row['pairs']} pairs "
                         f"improved over the baseline ({self.compare})")
            lines.append(line)
        return "\n".join([*lines, self.wrote_line()])


def _plain(kind: str, text: str) -> str:
    return f"{kind}: {text}" if kind == "note" else f"{kind} {text}" if kind else text


def similarity_report(model: str, data_dir: Path | str, *, compare: str | None = None,
                      languages: str | Sequence[str] | None = None, n: int = DEFAULT_N,
                      layer: int = DEFAULT_LAYER, layers: str | Sequence[int] | None = None,
                      seed: int = DEFAULT_SEED, output_dir: Path | str = DEFAULT_OUTPUT_DIR,
                      batch_size: int = 32, max_length: int | None = None, device: str | None = None,
                      use_cache: bool = True) -> SimilarityReport:
    """Language neutrality of ``model`` (and of the ``compare`` baseline) on parallel data; writes the files.

    ``languages``: ids, a comma list or a file of ids (default: the paper's ten). ``layers``: 'all' or
    several layers (``layer<k>/`` per layer plus layers.csv/.json/.png/.svg); otherwise one ``layer``.
    """
    from langsamp_cli.analysis.similarity import (
        run_similarity,
        run_similarity_layers,
        write_layer_outputs,
        write_outputs,
    )
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.model_source import require_tokenizer, resolve_model

    if n < 2:
        raise LangsampError(f"--n {n}: need at least 2 sentences per language (each language's mean vector is "
                            "subtracted, so one sentence leaves only zeros); use --n 2 or more")
    requested = _languages(languages)
    data_dir, output_dir = Path(data_dir), Path(output_dir)
    check_data_dir(data_dir)
    model = resolve_model(model)
    compare = resolve_model(compare, flag="--compare") if compare else None
    for name, flag in ((model, "--model"), (compare, "--compare")):
        if name:
            require_tokenizer(name, flag)
    options = {"batch_size": batch_size, "max_length": max_length, "device": device, "use_cache": use_cache}
    if layers:
        from langsamp_cli.encode import model_depth, parse_layers

        chosen = parse_layers(_layer_spec(layers), model_depth(model))
        if compare:
            chosen = parse_layers(chosen, min(model_depth(model), model_depth(compare)))
        by_layer, data = run_similarity_layers(model, data_dir, requested, chosen, n=n, seed=seed, compare=compare,
                                               **options)
        report = SimilarityReport(model, compare, output_dir, n, data, layers=by_layer)
        _log_data_notes(report)
        report.files = write_layer_outputs(by_layer, output_dir)
        return report
    result, data = run_similarity(model, data_dir, requested, n=n, layer=layer, seed=seed, compare=compare,
                                  **options)
    report = SimilarityReport(model, compare, output_dir, n, data, result=result)
    _log_data_notes(report)
    report.files = write_outputs(result, output_dir)
    return report


def _log_data_notes(report: SimilarityReport) -> None:
    log = get_logger()
    for kind, text in report.data_notes():
        (log.warning if kind else log.info)(_plain(kind, text))


def _languages(value: str | Sequence[str] | None) -> list[str] | None:
    from langsamp_cli.languages import parse_language_list

    if not value:
        return list(PAPER_LANGUAGES)
    return parse_language_list(value if isinstance(value, str) else ",".join(map(str, value)))


def _layer_spec(value: str | Sequence[int]) -> str | list[int]:
    return value if isinstance(value, str) else [int(k) for k in value]
