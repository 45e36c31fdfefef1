"""Donor (source) language selection for crosslingual transfer (paper §5.4).

Methods, each giving a score per candidate (higher = better donor):

- ``lang``: cosine similarity of the target's and the candidate's learned language embeddings
  (the paper's method). The language table is keyed per ISO 639-3 language in the official format
  (``zho``), so ``yue_Hani`` looks up ``yue``; ids and aliases are tried in that order.
- ``script``: cosine similarity of the script embeddings (a coarse signal: every candidate with
  the same script ties). Shown beside ``lang``, used when the target has no language embedding,
  and selectable with ``--method script``.
- ``uriel``: URIEL typological similarity (see :mod:`langsamp_cli.analysis.uriel`).
- ``combined``: over the k candidates that every combined method scored, each method's rank is
  normalised to ``1 - (rank - 1) / (k - 1)`` (ties share the mean rank), and the combined score is
  the mean of those normalised ranks over ``lang`` and ``uriel`` (``script`` replaces ``lang`` when
  the target has no language embedding). Ranks rather than raw scores, because cosine and URIEL
  similarities live on different scales. A candidate one of the methods cannot score (no row in the
  language table, no URIEL entry) gets no combined score and is listed last: averaging only the
  ranks it has would let a language the model never saw outrank ones it knows.

A target outside the language-embedding vocabulary is not an error: the report says so and ranks
the candidates by script embedding and by URIEL instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from langsamp_cli.analysis.similarity import PAPER_LANGUAGES
from langsamp_cli.embedding_tables import alias_ids, language_key, script_key
from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.transfer_run import TRANSFER_TASKS

METHODS = ("lang", "script", "uriel", "combined")
PAPER_DONORS = PAPER_LANGUAGES


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    # clipped: a row against itself (same script) is 1, not 1.0000000000000002
    return float(np.clip(a @ b / norm, -1.0, 1.0)) if norm > 0 else 0.0


def embedding_scores(table: np.ndarray | None, key2id: dict[str, int], target: str, candidates: Sequence[str],
                     key_of) -> tuple[dict[str, float | None], dict[str, str], str | None]:
    """({candidate: cosine or None}, {id: table key used}, target key or None)."""
    if table is None:
        return {c: None for c in candidates}, {}, None
    target_key = key_of(target, key2id)
    keys = {c: key_of(c, key2id) for c in candidates}
    used = {c: k for c, k in keys.items() if k is not None}
    if target_key is None:
        return {c: None for c in candidates}, used, None
    target_row = np.asarray(table[key2id[target_key]], dtype=np.float64)
    scores = {c: (None if k is None else _cosine(target_row, np.asarray(table[key2id[k]], dtype=np.float64)))
              for c, k in keys.items()}
    return scores, {**used, target: target_key}, target_key


# ---------------------------------------------------------------------------- ranks
def normalised_ranks(scores: dict[str, float | None]) -> dict[str, float]:
    """1 for the best, 0 for the worst of the scored candidates (ties share the mean rank)."""
    scored = {c: s for c, s in scores.items() if s is not None}
    if len(scored) == 1:
        return {c: 1.0 for c in scored}
    values = np.array(list(scored.values()))
    ranks = {}
    for name, value in scored.items():
        better = float((values > value).sum())
        equal = float((values == value).sum())
        mean_rank = better + (equal + 1) / 2  # 1-based rank, averaged over the tie
        ranks[name] = 1.0 - (mean_rank - 1) / (len(values) - 1)
    return ranks


def combine(methods: dict[str, dict[str, float | None]], candidates: Sequence[str]) -> dict[str, float | None]:
    """Mean normalised rank over ``methods``, for the candidates every method scored (others: None)."""
    complete = [c for c in candidates if all(scores.get(c) is not None for scores in methods.values())]
    rank_tables = [normalised_ranks({c: scores[c] for c in complete}) for scores in methods.values()]
    return {c: (float(np.mean([table[c] for table in rank_tables])) if c in complete and rank_tables else None)
            for c in candidates}


def order(scores: dict[str, float | None]) -> list[str]:
    """Best first; unscored candidates last (alphabetical among themselves)."""
    return sorted(scores, key=lambda c: (scores[c] is None, -(scores[c] or 0.0), c))


def method_ranks(scores: dict[str, float | None]) -> dict[str, int]:
    """1 + the number of candidates with a strictly better score (ties share a rank); unscored ones are absent.

    Every candidate that shares the target's script has script cosine 1, so they all rank 1 by script.
    """
    scored = {c: s for c, s in scores.items() if s is not None}
    return {c: 1 + sum(other > s for other in scored.values()) for c, s in scored.items()}


# ---------------------------------------------------------------------------- the ranking
@dataclass
class DonorRanking:
    target: str
    method: str  # as requested
    ranked_by: str  # the score column the order follows
    candidates: list[str]
    scores: dict[str, dict[str, float | None]] = field(default_factory=dict)  # column -> candidate -> score
    keys: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> id -> key used
    notes: list[str] = field(default_factory=list)
    unscored: dict[str, str] = field(default_factory=dict)  # candidate -> why the ranking column lacks it

    @property
    def ranking(self) -> list[str]:
        return order(self.scores[self.ranked_by]) if self.ranked_by in self.scores else []

    @property
    def best(self) -> str | None:
        ranked = [c for c in self.ranking if self.scores[self.ranked_by][c] is not None]
        return ranked[0] if ranked else None

    def to_json(self, top: int | None = None) -> dict:
        ranked = self.ranking[:top] if top else self.ranking
        ranks = {m: method_ranks(scores) for m, scores in self.scores.items()}
        return {
            "target": self.target, "method": self.method, "ranked_by": self.ranked_by, "best": self.best,
            "candidates_total": len(self.candidates),
            "ranking": [{"candidate": c, "rank": i + 1, **{m: self.scores[m].get(c) for m in self.scores},
                         "method_ranks": {m: ranks[m].get(c) for m in self.scores}}
                        for i, c in enumerate(ranked)],
            "table_keys": self.keys, "notes": self.notes, "unscored": self.unscored,
        }


def _uriel_scores(target: str, candidates: Sequence[str], required: bool,
                  feature_sets: tuple[str, ...] | None) -> tuple[dict | None, str | None]:
    """(scores, note): scores None with a note when lang2vec is missing (an error when required)."""
    from langsamp_cli.analysis import uriel

    feature_sets = feature_sets or uriel.DEFAULT_SETS
    try:
        if not uriel.uriel_has(target, feature_sets):
            message = f"URIEL has no typological data for {target}"
            if required:
                raise LangsampError(f"{message}; use --method lang")
            return None, message
        return {c: uriel.uriel_similarity(target, c, feature_sets) for c in candidates}, None
    except LangsampError:
        if required:
            raise
        return None, f"URIEL typology unavailable (lang2vec not installed; {uriel.INSTALL_HINT})"


def rank_donors(target: str, candidates: Sequence[str], tables=None, method: str = "lang",
                uriel_features: tuple[str, ...] | None = None) -> DonorRanking:
    """Score ``candidates`` as donors for ``target``; ``tables`` is embedding_tables.EmbeddingTables (not needed for uriel)."""
    if method not in METHODS:
        raise LangsampError(f"--method {method!r} is unknown; use one of {', '.join(METHODS)}")
    same = {target, *alias_ids(target)}  # yue_Hant is the target yue_Hani under its FLORES id: not a donor
    excluded = [c for c in dict.fromkeys(candidates) if c in same]
    candidates = [c for c in dict.fromkeys(candidates) if c not in same]
    if not candidates:
        raise LangsampError(f"no candidate donors left for {target} (the target itself is not a candidate)")
    ranking = DonorRanking(target, method, method, candidates)
    if [c for c in excluded if c != target]:
        ranking.notes.append(f"not ranked: {', '.join(c for c in excluded if c != target)} (the target language "
                             "itself under another id)")
    if method != "uriel":
        _add_embedding_columns(ranking, tables)
    if method in ("uriel", "combined") or method not in ranking.scores:
        scores, note = _uriel_scores(target, candidates, method in ("uriel", "combined"), uriel_features)
        if scores is not None:
            ranking.scores["uriel"] = scores
        if note:
            ranking.notes.append(note)
    ranking.ranked_by = _ranking_column(ranking, method)
    if method == "combined":
        parts = {m: ranking.scores[m] for m in ("lang", "uriel") if m in ranking.scores}
        if "lang" not in parts and "script" in ranking.scores:
            parts["script"] = ranking.scores["script"]
        ranking.scores["combined"] = combine(parts, candidates)
        ranking.notes.append(f"combined = mean normalised rank over {', '.join(parts)}")
        partial = {c: [m for m, scores in parts.items() if scores.get(c) is None] for c in candidates}
        partial = {c: missing for c, missing in partial.items() if missing}
        if partial:
            ranking.notes.append("no combined score (listed last): " + "; ".join(
                f"{c} (no {' or '.join(missing)} score)" for c, missing in partial.items()))
    for candidate, score in ranking.scores.get(ranking.ranked_by, {}).items():
        if score is None:
            ranking.unscored[candidate] = f"no {ranking.ranked_by} score (not in that table / database)"
    return ranking


def _add_embedding_columns(ranking: DonorRanking, tables) -> None:
    if tables is None:
        raise LangsampError("this method needs a LangSAMP checkpoint's embedding tables; pass --model")
    lang_scores, lang_keys, lang_target = embedding_scores(tables.lang, tables.lang2id, ranking.target,
                                                           ranking.candidates, language_key)
    script_scores, script_keys, script_target = embedding_scores(tables.script, tables.script2id, ranking.target,
                                                                 ranking.candidates, script_key)
    if lang_target is not None:
        ranking.scores["lang"] = lang_scores
        ranking.keys["lang"] = lang_keys
    elif tables.lang is not None:
        ranking.notes.append(f"{ranking.target} is not in the language-embedding vocabulary "
                             f"({len(tables.lang2id)} languages); ranking by script embedding and URIEL typology")
    else:
        ranking.notes.append("this checkpoint has no language-embedding table; ranking by script embedding and URIEL")
    if script_target is not None:
        ranking.scores["script"] = script_scores
        ranking.keys["script"] = script_keys
    elif ranking.method == "script":
        ranking.notes.append(f"the script of {ranking.target} is not in the script-embedding table "
                             f"({', '.join(sorted(tables.script2id)) or 'none'}); ranking by another method")


def _ranking_column(ranking: DonorRanking, method: str) -> str:
    if method == "combined":
        return "combined"
    if method in ranking.scores:
        return method
    for fallback in [m for m in ("lang", "uriel", "script") if m != method]:
        if fallback in ranking.scores:
            return fallback
    raise LangsampError(f"cannot rank donors for {ranking.target}: it has no language embedding, no script "
                        f"embedding and no URIEL entry ({'; '.join(ranking.notes)})")


# ---------------------------------------------------------------------------- candidates
def all_table_languages(tables) -> list[str]:
    """Every language of the table as a ``lang_Script`` id (main script for ISO-only keys)."""
    from langsamp_cli.languages import LANG_SCRIPT_RE
    from langsamp_cli.languages import parse_lang_script

    ids = []
    for key in tables.lang2id:
        if LANG_SCRIPT_RE.match(key):
            ids.append(key)
            continue
        try:
            ids.append(parse_lang_script(key).id)
        except LangsampError:
            continue  # a code with no known script cannot be named as a donor id
    return sorted(set(ids))


def task_languages(task: str, data_dir: str | Path | None) -> tuple[list[str], Path]:
    """Languages with a train split for ``task`` (the possible sources of a transfer run)."""
    from langsamp_cli.data.parallel import check_data_dir

    from langsamp_cli.tasks import registry

    if task not in registry.transfer_names():
        raise LangsampError(f"--candidates task:{task}: unknown task; use "
                            f"{', '.join('task:' + name for name in registry.transfer_names())}")
    folder = check_data_dir(data_dir or _task_data_dir(task), flag="--data-dir")
    files = registry.train_languages(task, folder)
    langs = sorted(lang for lang, splits in files.items() if "train" in splits)
    if not langs:
        raise LangsampError(f"--candidates task:{task}: no language has a train split under {folder}")
    return langs, folder


def _task_data_dir(task: str) -> str | None:
    try:
        from langsamp_cli.task_config import load_task_config

        return load_task_config(task).get("data_dir")
    except (ImportError, LangsampError):
        return None


def parse_candidates(value: str | None, tables=None, data_dir: str | Path | None = None) -> list[str]:
    """None -> the paper's ten donors; ``all``; ``task:NAME``; a comma list or a file of ids."""
    if value is None or not value.strip():
        return list(PAPER_DONORS)
    value = value.strip()
    if value == "all":
        if tables is None or tables.lang is None:
            raise LangsampError("--candidates all needs a checkpoint with a language-embedding table (--model)")
        return all_table_languages(tables)
    if value.startswith("task:"):
        return task_languages(value.split(":", 1)[1].strip().lower(), data_dir)[0]
    from langsamp_cli.languages import parse_language_list

    parsed = parse_language_list(value, flag="--candidates")
    if not parsed:
        raise LangsampError(f"--candidates {value!r}: no language ids given")
    return parsed


# ---------------------------------------------------------------------------- --evaluate
ENGLISH = "eng_Latn"


def parse_eval_options(options: Sequence[str]) -> dict:
    """``["epochs=3", "lr=2e-5"]`` -> {"epochs": 3, "lr": 2e-05} (YAML scalars)."""
    import yaml

    parsed = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise LangsampError(f"--eval-option {option!r}: use KEY=VALUE, e.g. epochs=3")
        parsed[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return parsed


def evaluate_donor(task: str, model: str, target: str, donor: str, data_dir: str | Path | None,
                   output_dir: str | Path, options: dict | None = None, console=None) -> dict:
    """Fine-tune on English and on ``donor`` (same seed and settings), score ``target`` with each.

    One seed (the first configured one), like the paper's donor tables (Appendix E: single runs,
    same seed for every source). Settings are the task's (``langsamp_cli/task_configs/<task>.yaml``) under
    ``options``. Each source gets its own results root (``<output_dir>/donor/<target>/source-<id>``) so the two
    runs never read each other's finished units.
    """
    if task not in TRANSFER_TASKS:
        raise LangsampError(f"--evaluate {task!r}: use one of {', '.join(TRANSFER_TASKS)}")
    per_source = {}
    for source in dict.fromkeys([ENGLISH, donor]):
        root = Path(output_dir) / "donor" / target / f"source-{source}"
        per_source[source] = _transfer_scores(task, model, source, target, data_dir, root, options or {}, console)
    english, chosen = per_source[ENGLISH], per_source[donor]
    metric = english["metric"]
    return {
        "task": task, "metric": metric, "english": ENGLISH, "donor": donor,
        "per_language": {target: {"english": english["score"], "donor": chosen["score"],
                                  "english_skipped": english.get("skipped"), "donor_skipped": chosen.get("skipped")}},
        "results": {source: r["results"] for source, r in per_source.items()},
    }


def _transfer_scores(task: str, model: str, source: str, target: str, data_dir, root: Path, options: dict,
                     console) -> dict:
    from langsamp_cli.tasks.transfer_run import run_transfer

    flags = {**options, "model": model, "source_lang": source, "languages": target,
             "data_dir": str(data_dir) if data_dir else options.get("data_dir"), "output_dir": str(root)}
    run = run_transfer(task, flags, max_seeds=1, console=console, progress=False)
    seed = run.seeds[0]
    return {"metric": run.metric, "score": run.score(target), "skipped": run.skipped[seed].get(target),
            "results": str(run.results[0])}
