"""Sentence retrieval (SR-B, SR-T) exactly as the official Glot500/LangSAMP scripts score it.

Per language: encode both sides with the layer-k mean-pooled encoder, L2-normalise, put the
target-language sentences in a faiss ``IndexFlatL2`` and search it with the English sentences;
query i is correct at k when target i is among its k nearest. Headline metric: acc@10.
``--scoring margin|csls`` ranks the targets by another score instead (:mod:`langsamp_cli.tasks.scoring`).

The runner goes one language at a time (memory does not grow with the number of languages),
records every language that cannot be scored with its reason, and leaves finished languages
alone on a rerun. English sides shared between languages are encoded once: the encoder's disk
cache catches identical lists and its in-memory memo catches shared sentences.
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from langsamp_cli.baselines import retrieval_chance
from langsamp_cli.data.parallel import ParallelPairs
from langsamp_cli.errors import LangsampError

if TYPE_CHECKING:  # faiss and numpy load when a run scores (the registry imports this module for its plans)
    import numpy as np

    from langsamp_cli.results import ResultStore
    from langsamp_cli.tasks.scoring import Scoring
    from langsamp_cli.tasks.task_settings import RetrievalSettings

KS = (1, 5, 10)
HEADLINE_METRIC = "acc@10"


def retrieval_accuracy(target: np.ndarray, queries: np.ndarray, ks: Sequence[int] = KS) -> dict[str, float]:
    """acc@k (fractions in [0, 1]) with ``queries[i]`` aligned to ``target[i]``."""
    import faiss
    import numpy as np

    if target.shape != queries.shape:
        raise ValueError(f"target {target.shape} and queries {queries.shape} must be aligned")
    index_vectors = np.array(target, dtype=np.float32, order="C")  # copies: normalize_L2 is in place
    query_vectors = np.array(queries, dtype=np.float32, order="C")
    faiss.normalize_L2(index_vectors)
    faiss.normalize_L2(query_vectors)
    index = faiss.IndexFlatL2(index_vectors.shape[1])
    index.add(index_vectors)
    _, predictions = index.search(query_vectors, max(ks))
    hits = predictions == np.arange(len(query_vectors))[:, None]
    return {f"acc@{k}": float(hits[:, :k].any(axis=1).mean()) for k in ks}


@dataclass
class RetrievalUnit:
    """One language: ``load`` reads its pairs (raising LangsampError when they are unusable)."""

    lang_script: str
    load: Callable[[], ParallelPairs]


@dataclass
class RetrievalPlan:
    units: dict[str, RetrievalUnit] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # known before reading: unit -> reason

    def names(self) -> list[str]:
        return sorted(set(self.units) | set(self.problems))


@dataclass
class RunSummary:
    scored: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)


def run_retrieval(plan: RetrievalPlan, encoder, stores: Mapping[int, ResultStore], selected: list[str],
                  console: Console | None = None, progress: bool = False, ks: Sequence[int] = KS,
                  scoring: Scoring | None = None) -> dict[int, RunSummary]:
    """Score every selected language into ``stores[k]`` (a ResultStore per layer k); never stops half way on
    bad data. Each language is read once and encoded once (every layer from the same forward pass); a
    language already done in every layer's store is left alone."""
    console = console or Console(stderr=True)
    layers = sorted(stores)
    summaries = {k: RunSummary() for k in layers}
    for name in selected:
        todo = [k for k in layers if not stores[k].is_done(name)]
        for k in set(layers) - set(todo):
            summaries[k].already_done.append(name)
        if not todo:
            continue
        try:
            pairs = _load(plan, name)
        except LangsampError as err:
            for k in todo:
                stores[k].skip(name, str(err))
                summaries[k].skipped[name] = str(err)
            console.print(f"[yellow]skipped[/] {name}: {err}", highlight=False, soft_wrap=True)
            continue
        scores = score_pairs(pairs, encoder, todo, progress, ks, scoring)
        for k in todo:
            stores[k].write(name, n=len(pairs), metrics=scores[k], extra=pairs.record_extra(),
                            baselines=retrieval_chance(len(pairs), ks))
            summaries[k].scored.append(name)
        release_free_memory()
        _print_scores(console, name, pairs, scores, by_layer=len(layers) > 1)
    return summaries


def _print_scores(console: Console, name: str, pairs: ParallelPairs, scores: dict[int, dict[str, float]],
                  by_layer: bool) -> None:
    if by_layer:
        first = next(iter(scores.values()))
        headline = HEADLINE_METRIC if HEADLINE_METRIC in first else next(iter(first))
        console.print(f"{name}: n={len(pairs)} {headline} by layer " +
                      " ".join(f"{k}:{metrics[headline]:.4f}" for k, metrics in scores.items()),
                      highlight=False, soft_wrap=True)
        return
    [metrics] = scores.values()
    console.print(f"{name}: n={len(pairs)} " + " ".join(f"{k}={v:.4f}" for k, v in metrics.items())
                  + f" (chance acc@k = k/{len(pairs)})", highlight=False)
    if pairs.dropped_empty:
        console.print(f"[yellow]warning[/] {name}: {pairs.dropped_empty} pair(s) with an empty side left out "
                      f"({' / '.join(pairs.sources)}); recorded as dropped_empty", highlight=False, soft_wrap=True)


def score_pairs(pairs: ParallelPairs, encoder, layers: Sequence[int], progress: bool = False,
                ks: Sequence[int] = KS, scoring: Scoring | None = None) -> dict[int, dict[str, float]]:
    """{layer: acc@k} from one encoding of each side (every layer from the same forward pass)."""
    english = encoder.encode_layers(pairs.english, layers, progress=progress, remember=True)
    target = encoder.encode_layers(pairs.target, layers, progress=progress)
    return {k: english_query_accuracy(target[k], english[k], ks, scoring) for k in layers}


def english_query_accuracy(target: np.ndarray, english: np.ndarray, ks: Sequence[int] = KS,
                           scoring: Scoring | None = None) -> dict[str, float]:
    """acc@k of English queries searching the target sentences: cosine through faiss (the official
    computation, unchanged), margin / CSLS through :mod:`langsamp_cli.tasks.scoring`."""
    if scoring is None or scoring.is_cosine:
        return retrieval_accuracy(target, english, ks)
    from langsamp_cli.tasks.scoring import pair_accuracy  # torch: only when margin / CSLS is asked for

    return pair_accuracy(english, target, scoring, ks)


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc only; a no-op elsewhere).

    Every batch has its own shape, so glibc's heap fragments and the resident size creeps up by a
    few MiB per language although nothing is alive; trimming after each language keeps it flat.
    """
    global _LIBC
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else False
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


_LIBC: ctypes.CDLL | bool | None = None


def _load(plan: RetrievalPlan, name: str) -> ParallelPairs:
    if name in plan.problems:
        raise LangsampError(plan.problems[name])
    pairs = plan.units[name].load()
    if len(pairs) == 1:  # 100% by construction: it would count like a real score in every group mean
        raise LangsampError("only 1 sentence pair: retrieval among a single candidate is always right and says "
                            "nothing; add pairs to score it")
    return pairs


# ---------------------------------------------------------------------------- plans (data -> units)
def plan_from_pair_files(pair_files: dict, problems: dict[str, str], requested: list[str] | None,
                         where: str, max_pairs: int | None = None, any_script: Collection[str] = ()) -> RetrievalPlan:
    """Units for line-aligned pair files (SR-T, or SR-B in the official layout)."""
    from langsamp_cli.data.parallel import read_line_aligned

    def loader(files):
        return lambda: read_line_aligned(files).first(max_pairs)

    units = {lang: RetrievalUnit(lang, loader(files)) for lang, files in pair_files.items()}
    return restrict_plan(RetrievalPlan(units, dict(problems)), requested, where, any_script)


def plan_sr_b(settings: RetrievalSettings, flags: dict[str, Any]) -> RetrievalPlan:
    """SR-B pairs: official pair files (data_dir) or whole Bibles (bible/bible_dir + english_bible)."""
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.tasks import requested_languages

    requested, any_script = requested_languages(settings.languages)
    named = settings.bible or []
    if not (settings.bible_dir or settings.english_bible or named):
        return plan_sr_b_pairs(check_data_dir(settings.data_dir), requested, settings.pairs, any_script)
    if flags.get("data_dir") is not None:
        raise LangsampError("use either --data-dir (pair files) or --bible/--bible-dir + --english-bible "
                            "(whole Bibles), not both")
    if not settings.english_bible:
        raise LangsampError("--bible/--bible-dir need --english-bible PATH (the English whole Bible to pair with)")
    if not (settings.bible_dir or named):
        raise LangsampError("--english-bible needs target Bibles: --bible FILE (repeatable) or --bible-dir DIR")
    bibles = check_data_dir(settings.bible_dir, "--bible-dir") if settings.bible_dir else None
    return plan_sr_b_bibles(bibles, Path(settings.english_bible), requested, settings.pairs,
                            bible_files=[Path(p) for p in named], any_script=any_script)


def plan_sr_t(settings: RetrievalSettings, flags: dict[str, Any]) -> RetrievalPlan:
    """SR-T pairs: Tatoeba files (ours or the LASER layout) under data_dir."""
    from langsamp_cli.data.parallel import check_data_dir
    from langsamp_cli.data.tatoeba import discover_tatoeba
    from langsamp_cli.tasks import requested_languages

    requested, any_script = requested_languages(settings.languages)
    data_dir = check_data_dir(settings.data_dir)
    pairs, problems = discover_tatoeba(data_dir)
    return plan_from_pair_files(pairs, problems, requested, str(data_dir), settings.pairs, any_script)


def plan_sr_b_pairs(data_dir, requested: list[str] | None, max_pairs: int | None = None,
                    any_script: Collection[str] = ()) -> RetrievalPlan:
    from langsamp_cli.data.parallel import discover_official_pairs

    return plan_from_pair_files(discover_official_pairs(data_dir, "bible"), {}, requested, str(data_dir), max_pairs,
                                any_script)


def plan_sr_b_bibles(bible_dir, english_bible, requested: list[str] | None, n_pairs: int,
                     bible_files: list | None = None, any_script: Collection[str] = ()) -> RetrievalPlan:
    """Units that pair each whole Bible in ``bible_dir`` (and each of ``bible_files``) with ``english_bible``.

    A Bible named in ``bible_files`` is used for its language instead of one found in ``bible_dir``
    (the folder's file is noted as an unused edition); two named files of one language are an error.
    """
    from langsamp_cli.data.bible import BibleCollection, bible_language, bible_pairs, discover_bibles, read_bible
    from langsamp_cli.data.parallel import ENGLISH

    english_path = Path(english_bible)
    english = read_bible(english_path)  # a broken English Bible stops the run: nothing can be scored
    collection = discover_bibles(bible_dir, exclude=english_path) if bible_dir is not None else BibleCollection()
    named: dict[str, Path] = {}
    for path in map(Path, bible_files or []):
        if not path.is_file():
            raise LangsampError(f"--bible {path}: file not found")
        lang = bible_language(path)
        if lang in named:
            raise LangsampError(f"--bible {path}: {lang} is already given by --bible {named[lang]}; "
                                "pass one Bible per language")
        named[lang] = path
        if lang in collection.files and collection.files[lang].resolve() != path.resolve():
            collection.other_editions.setdefault(lang, []).insert(0, collection.files[lang])
        collection.files[lang] = path
    problems = {unit_name(name): reason for name, reason in collection.problems.items()}
    if ENGLISH in collection.files:
        problems[ENGLISH] = f"{collection.files.pop(ENGLISH).name}: English is the query side; not scored as a target"

    def loader(lang: str, path: Path):
        def load() -> ParallelPairs:
            pairs = bible_pairs(lang, read_bible(path), english, n_pairs, sources=[str(path), str(english_path)])
            unused = collection.other_editions.get(lang)
            if unused:
                pairs.notes["unused_editions"] = [p.name for p in unused]
            return pairs
        return load

    units = {lang: RetrievalUnit(lang, loader(lang, path)) for lang, path in collection.files.items()}
    where = str(bible_dir) if bible_dir is not None else "--bible"
    return restrict_plan(RetrievalPlan(units, problems), requested, where, any_script)


def unit_name(text: str) -> str:
    """A file name made safe as a result-unit name (letters, digits, _ . + -)."""
    return re.sub(r"[^\w.+-]", "_", text).lstrip(".") or "_"


def restrict_plan(plan: RetrievalPlan, requested: list[str] | None, where: str,
                  any_script: Collection[str] = ()) -> RetrievalPlan:
    """Keep the requested languages (aliases allowed); requested ones with no data become problems.

    ``any_script``: requested ids that were given without a script (see ``match_requested``).
    """
    if requested is None:
        if not plan.names():
            raise LangsampError(f"{where}: no data files for this task found; check --data-dir and the file names")
        return plan
    from langsamp_cli.data.parallel import restrict_requested

    units, problems = restrict_requested(plan.units, plan.problems, requested, any_script,
                                         lambda wanted: f"{where}: no data files for {wanted}")
    return RetrievalPlan({name: RetrievalUnit(name, unit.load) for name, unit in units.items()}, problems)
