"""Retrieval between every ordered pair of languages of a multi-parallel set (`eval sr-pairs`).

Every language is encoded once (or read from the embedding cache) and kept as unit rows in one
``(languages, sentences, dim)`` tensor on the scoring device, float32 or, with ``store_dtype:
float16``, half that. Each query language is then scored against the target languages in blocks
(:func:`langsamp_cli.tasks.scoring.block_accuracy`): at most two ``(block, n, n)`` float32 score
tensors live at a time, ``block`` chosen so each stays under :data:`BLOCK_BYTES`.

A query language is one result unit: its metrics are its means over every other target language,
its ``extra.row`` holds acc@k against each target. So a killed run resumes at the first unfinished
query language, ``--shard i/N`` splits the query languages across machines, and ``--pivots``
restricts the queries while every language stays a target. The matrix, the heatmap and the
per-language table are rebuilt from the unit files after every run (:mod:`langsamp_cli.tasks.pair_matrix`).

Sentences: the first ``--pairs`` ids every language shares (SIB-200 / FLORES ``split:index_id``,
Bible verse ids, line numbers); a language whose coverage would shrink that set below ``--pairs``
is left out as a skipped unit, as are requested languages without data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.scoring import Scoring

if TYPE_CHECKING:
    import torch

    from langsamp_cli.tasks.retrieval_run import RetrievalRunResult
    from langsamp_cli.tasks.task_settings import RetrievalSettings

BLOCK_BYTES = 256 * 2**20  # one (block, n, n) float32 score tensor; two are alive at a time
XSIM = "xsim_error"        # 1 - acc@1 with the chosen scoring (the xsim error rate)


@dataclass
class PairsPlan:
    """The aligned sentences of every usable language and the query languages of this run."""

    ids: list[str]
    texts: dict[str, list[str]]                              # language -> sentences, aligned by ids
    queries: list[str]                                       # query units (incl. those skipped below)
    problems: dict[str, str] = field(default_factory=dict)   # language -> why it is not scored
    sources: dict[str, list[str]] = field(default_factory=dict)
    format: str = ""

    @property
    def targets(self) -> list[str]:
        return list(self.texts)


# ---------------------------------------------------------------------------- data
def plan_pairs(settings: RetrievalSettings) -> PairsPlan:
    """Read the multi-parallel set under ``data_dir``: the shared sentences, the targets and the queries."""
    from langsamp_cli.data.multiparallel import available_languages, first_shared, load_multiparallel
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.tasks import requested_languages

    data_dir = check_data_dir(settings.data_dir)
    requested, _ = requested_languages(settings.languages)
    languages = requested if requested is not None else available_languages(data_dir)
    data = load_multiparallel(data_dir, languages)
    if settings.split is not None:
        data.keep_split(settings.split)
    if len(data.sentences) < 2:
        found = ", ".join(data.sentences) or "none"
        raise LangsampError(f"--data-dir {data_dir}: sr-pairs needs at least 2 languages with data (found {found})")
    sample = first_shared(data, int(settings.pairs))
    if not sample.ids:
        raise LangsampError(f"--data-dir {data_dir}: the languages share no sentence id; check that the files are "
                            "one multi-parallel set")
    problems = {**data.missing, **sample.dropped}
    queries = _queries(settings, [*sample.texts, *problems])
    return PairsPlan(sample.ids, sample.texts, queries, problems, data.sources, data.format)


def _queries(settings: RetrievalSettings, languages: list[str]) -> list[str]:
    from langsamp_cli.tasks import requested_languages

    pivots, _ = requested_languages(settings.pivots)
    if pivots is None:
        return sorted(languages)
    unknown = [p for p in pivots if p not in languages]
    if unknown:
        raise LangsampError(f"--pivots {', '.join(unknown)}: not among the languages of this run "
                            f"({len(languages)} from --languages / --data-dir); add them to --languages")
    return sorted(pivots)


# ---------------------------------------------------------------------------- vectors
def encode_all(plan: PairsPlan, encoder, layers: list[int], store_dtype: str, device,
               progress: bool = False) -> dict[int, torch.Tensor]:
    """layer -> ``(languages, n, dim)`` unit rows (languages in ``plan.targets`` order), each language encoded once."""
    import torch

    from langsamp_cli.tasks.scoring import normalise

    dtype = torch.float16 if store_dtype == "float16" else torch.float32
    vectors: dict[int, torch.Tensor] = {}
    for i, lang in enumerate(plan.targets):
        encoded = encoder.encode_layers(plan.texts[lang], layers, progress=progress)
        for k in layers:
            rows = torch.from_numpy(normalise(encoded[k]))
            if k not in vectors:
                vectors[k] = torch.empty((len(plan.targets), *rows.shape), dtype=dtype, device=device)
            vectors[k][i] = rows.to(device=device, dtype=dtype)
    return vectors


def block_languages(n_sentences: int, budget: int = BLOCK_BYTES) -> int:
    """Target languages per score block so one ``(block, n, n)`` float32 tensor stays within ``budget`` bytes."""
    return max(1, budget // (4 * n_sentences * n_sentences))


def score_row(vectors: torch.Tensor, query: int, scoring: Scoring, ks: list[int],
              block: int | None = None) -> torch.Tensor:
    """acc@k of query language ``query`` against every language: ``(languages, len(ks))`` on the CPU
    (the query's own row, which would be trivially 1, is NaN)."""
    import torch

    from langsamp_cli.tasks.scoring import block_accuracy

    n_languages, n = vectors.shape[0], vectors.shape[1]
    block = block or block_languages(n)
    out = torch.empty((n_languages, len(ks)), dtype=torch.float64)
    for start in range(0, n_languages, block):
        stop = min(start + block, n_languages)
        out[start:stop] = block_accuracy(vectors[query], vectors[start:stop], scoring, ks).cpu()
    out[query] = float("nan")
    return out


def memory_bytes(n_languages: int, n_sentences: int, dim: int, store_dtype: str = "float32",
                 budget: int = BLOCK_BYTES) -> dict[str, int]:
    """What a run holds: the vectors of every language and two score blocks (docs/all-pairs.md)."""
    vectors = n_languages * n_sentences * dim * (2 if store_dtype == "float16" else 4)
    block = min(block_languages(n_sentences, budget), n_languages) * n_sentences * n_sentences * 4
    return {"vectors": vectors, "score_blocks": 2 * block, "total": vectors + 2 * block}


# ---------------------------------------------------------------------------- the run
def run_all_pairs(settings: RetrievalSettings, scoring: Scoring, *, name: str, explicit_max_length: bool = False,
                  no_cache: bool = False, cache_dir: Path | None = None, overwrite: bool = False,
                  shard: str | None = None, console: Console | None = None,
                  progress: bool = False) -> RetrievalRunResult:
    """Score every ordered language pair into one result unit per query language, then write the matrix."""
    from langsamp_cli.results import parse_shard, select_shard
    from langsamp_cli.tasks import check_model
    from langsamp_cli.tasks.retrieval_run import RetrievalRunResult, encoder_for, requested_layers

    console = console or Console(stderr=True, emoji=False)
    plan = plan_pairs(settings)
    selected = select_shard(plan.queries, parse_shard(shard))
    settings, model_config = check_model(settings, explicit_max_length)
    layers = requested_layers(settings, model_config)
    encoder = encoder_for(settings, model_config, layers, cache_dir, no_cache)
    layers = layers or [settings.layer]
    stores = _stores(settings, scoring, plan, encoder, layers, name, overwrite)
    result = RetrievalRunResult(name, settings.metric, selected)
    todo = {q: [k for k in layers if not stores[k].is_done(q)] for q in selected}
    result.already_done = [q for q in selected if not todo[q]]
    scorable = [q for q in selected if todo[q] and q not in plan.problems]
    for q in (q for q in selected if todo[q] and q in plan.problems):
        for k in todo[q]:
            stores[k].skip(q, plan.problems[q])
        result.newly_skipped.append(q)
        console.print(f"[yellow]skipped[/] {q}: {plan.problems[q]}", highlight=False, soft_wrap=True)
    if scorable:
        vectors = encode_all(plan, encoder, layers, settings.store_dtype or "float32", encoder.device, progress)
        result.sentences_encoded = encoder.sentences_encoded
        for q in scorable:
            _score_query(q, plan, vectors, todo[q], stores, scoring, [int(k) for k in settings.top_k], console)
            result.newly_scored.append(q)
    _finish(result, settings, stores, layers)
    return result


def _stores(settings: RetrievalSettings, scoring: Scoring, plan: PairsPlan, encoder, layers: list[int], name: str,
            overwrite: bool) -> dict:
    from langsamp_cli.results import ResultStore, layer_task_name
    from langsamp_cli.tasks.retrieval_run import retrieval_record

    base = retrieval_record(settings, scoring, exclude=("pivots",))
    stores = {}
    for k in layers:
        config = {**base, "layer": k, "pooling": encoder.pooling,
                  "encoder_key": encoder.fingerprint_for(k), "targets": plan.targets, "n_sentences": len(plan.ids)}
        task = name if k == settings.layer else layer_task_name(name, k)
        stores[k] = ResultStore(Path(settings.output_dir), task, settings.model, None, config, settings.metric,
                                overwrite=overwrite, fingerprint=encoder.model_fingerprint)
    return stores


def _score_query(query: str, plan: PairsPlan, vectors: dict, layers: list[int], stores: dict, scoring: Scoring,
                 ks: list[int], console: Console) -> None:
    from langsamp_cli.baselines import retrieval_chance
    from langsamp_cli.tasks.retrieval import release_free_memory

    index = plan.targets.index(query)
    for k in layers:
        row = score_row(vectors[k], index, scoring, ks).numpy()
        others = [i for i in range(len(plan.targets)) if i != index]
        means = row[others].mean(axis=0)
        metrics = {f"acc@{top}": float(v) for top, v in zip(ks, means)}
        if 1 in ks:
            metrics[XSIM] = 1.0 - metrics["acc@1"]
        extra = {"ks": ks, "row": {plan.targets[i]: [float(v) for v in row[i]] for i in others},
                 "sources": plan.sources.get(query, [])}
        stores[k].write(query, n=len(plan.ids), metrics=metrics, extra=extra,
                        baselines=retrieval_chance(len(plan.ids), ks))
    release_free_memory()
    shown = " ".join(f"{m}={v:.4f}" for m, v in metrics.items())
    console.print(f"{query}: as query over {len(plan.targets) - 1} targets, n={len(plan.ids)} {shown}",
                  highlight=False)


def _finish(result: RetrievalRunResult, settings: RetrievalSettings, stores: dict, layers: list[int]) -> None:
    """Merge each layer's units, rebuild its matrix files, and fill the run summary."""
    from langsamp_cli.results import load_results
    from langsamp_cli.tasks.pair_matrix import write_matrix
    from langsamp_cli.tasks.retrieval_run import LayerResult

    for k in layers:
        path = Path(stores[k].finalize())
        result.outputs += write_matrix(path)
        loaded = load_results(path)
        if k == settings.layer:
            result.results.insert(0, path)
            result.scores = {r["lang_script"]: dict(r["metrics"]) for r in loaded["languages"]}
            result.skipped = {r["lang_script"]: str(r.get("reason", "")) for r in loaded["skipped"]}
        else:
            result.results.append(path)
        if len(layers) > 1:
            values = [r["metrics"][result.metric] for r in loaded["languages"] if result.metric in r["metrics"]]
            result.layers.append(LayerResult(k, stores[k].task, sum(values) / len(values) if values else None,
                                             len(values), Path(stores[k].run_dir), path))
