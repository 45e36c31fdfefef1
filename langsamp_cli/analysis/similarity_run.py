"""Library entry point of `langsamp similarity`: check inputs -> sample, encode, score -> files -> typed summary.

``similarity_report(settings)`` is what `langsamp similarity` does (the command only turns flags into
:class:`SimilaritySettings`, calls it and prints the matrices); the experiment's ``similarity:<variant>`` stages
build the same settings from their YAML section and call it too.
The numbers and files come from :mod:`langsamp_cli.analysis.similarity`.
"""

from __future__ import annotations

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
from langsamp_cli.settings import setting


@dataclass
class SimilaritySettings:
    """The settings of one `langsamp similarity` run (each field is a flag and a key of the experiment's
    ``similarity:`` section)."""

    model: str = setting("Encoder: our checkpoint dir, any HF model name or path.", "--model", "-m")
    data_dir: str = setting("Multi-parallel data: SIB-200/FLORES folders, Bibles (verse-id TSV / CES XML) or "
                            "line-aligned <lang_Script>.txt files.", path=True)
    compare: str | None = setting("Baseline model: adds side-by-side heatmaps and the per-pair difference ours - "
                                  "baseline.")
    languages: list[str] | None = setting("Comma list or a file of ids (default: the paper's ten).")
    n: int = setting("Parallel sentences sampled per language.", default=DEFAULT_N)
    layer: int = setting("hidden_states index to mean-pool (8 = output of block 8).", default=DEFAULT_LAYER)
    layers: str | list[int] | None = setting("Every layer from one pass: 'all' (0..depth) or a comma list such as "
                                             "4,6,8; writes layer<k>/ per layer plus layers.csv/.json/.png/.svg "
                                             "(mean similarity against layer).")
    seed: int = setting("Seed of the sentence sample.", default=DEFAULT_SEED, non_negative=True,
                        maximum=2**31 - 1)
    output_dir: str = setting("Where CSV/PNG/SVG/JSON go.", default="results/similarity", path=True)
    batch_size: int = setting("Sentences per forward pass.", default=32)
    max_length: int | None = setting("Tokens per sentence incl. <s> </s> (default 512, or less when the model has "
                                     "fewer positions).")
    device: str | None = setting("cpu, cuda, cuda:N (default: cuda when available).")
    no_cache: bool = setting("Neither read nor write the embedding cache.", "--no-cache", default=False)


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


def similarity_report(settings: SimilaritySettings) -> SimilarityReport:
    """Language neutrality of ``settings.model`` (and of the ``compare`` baseline) on parallel data; writes the files.

    ``languages``: ids or a file of ids (default: the paper's ten). ``layers``: 'all' or several layers
    (``layer<k>/`` per layer plus layers.csv/.json/.png/.svg); otherwise the one ``layer``.
    """
    from langsamp_cli.analysis.similarity import (
        run_similarity,
        run_similarity_layers,
        write_layer_outputs,
        write_outputs,
    )
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.model_source import require_tokenizer, resolve_model

    n, seed = settings.n, settings.seed
    if n < 2:
        raise LangsampError(f"--n {n}: need at least 2 sentences per language (each language's mean vector is "
                            "subtracted, so one sentence leaves only zeros); use --n 2 or more")
    requested = _languages(settings.languages)
    data_dir, output_dir = Path(settings.data_dir), Path(settings.output_dir)
    check_data_dir(data_dir)
    model = resolve_model(settings.model)
    compare = resolve_model(settings.compare, flag="--compare") if settings.compare else None
    for name, flag in ((model, "--model"), (compare, "--compare")):
        if name:
            require_tokenizer(name, flag)
    options = {"batch_size": settings.batch_size, "max_length": settings.max_length, "device": settings.device,
               "use_cache": not settings.no_cache}
    if settings.layers:
        from langsamp_cli.encode import model_depth, parse_layers

        chosen = parse_layers(settings.layers, model_depth(model))
        if compare:
            chosen = parse_layers(chosen, min(model_depth(model), model_depth(compare)))
        by_layer, data = run_similarity_layers(model, data_dir, requested, chosen, n=n, seed=seed, compare=compare,
                                               **options)
        report = SimilarityReport(model, compare, output_dir, n, data, layers=by_layer)
        _log_data_notes(report)
        report.files = write_layer_outputs(by_layer, output_dir)
        return report
    result, data = run_similarity(model, data_dir, requested, n=n, layer=settings.layer, seed=seed, compare=compare,
                                  **options)
    report = SimilarityReport(model, compare, output_dir, n, data, result=result)
    _log_data_notes(report)
    report.files = write_outputs(result, output_dir)
    return report


def _log_data_notes(report: SimilarityReport) -> None:
    log = get_logger()
    for kind, text in report.data_notes():
        (log.warning if kind else log.info)(_plain(kind, text))


def _languages(value: list[str] | None) -> list[str] | None:
    """The ids asked for: a comma list's items or one file of ids (default: the paper's ten)."""
    from langsamp_cli.languages import parse_language_list

    if not value:
        return list(PAPER_LANGUAGES)
    return parse_language_list(",".join(value))
