"""Rows of the language/script tables for languages and scripts the initial checkpoint lacks.

Continued pretraining (``--model CKPT``, ours or the official format) copies every row the checkpoint and
the corpus share (``model._remapped``). A corpus language-script the checkpoint has no row for gets one of
(``--init-new-languages``):

- ``random`` (default): the model's normal initialisation, as before.
- ``mean``: the mean of the rows of the checkpoint's languages whose usual script (CLDR, via
  :func:`langsamp_cli.languages.main_script`) is the new language's corpus script; when none writes it,
  the mean of all the checkpoint's language rows.
- ``donor``: the mean of the rows of its ``DONOR_COUNT`` best donors among the checkpoint's languages, ranked
  by :func:`langsamp_cli.analysis.donor.rank_donors` with URIEL typology (the language has no row to compare
  by cosine). Without lang2vec, or when URIEL does not know the language, ``mean`` is used and a note says so.

A new *script* row is, for ``donor`` and ``mean`` alike, the mean of all the checkpoint's script rows: a script
table has few rows and no typology to rank them by.

What each new row was initialised from is printed and kept in ``model.initialised_rows``, which
``save_checkpoint`` writes into ``langsamp.json`` (``initialised_rows``) of every checkpoint of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.pretrain.config import INIT_METHODS

DONOR_COUNT = 3
SHOWN_SOURCES = 5   # a printed line names at most this many source rows


def extend_maps(lang2id: dict[str, int], script2id: dict[str, int], lang_script_ids: Iterable[str]
                ) -> tuple[dict[str, int], dict[str, int]]:
    """The checkpoint's maps with the missing languages and scripts appended (sorted) after its last id."""
    lang2id, script2id = dict(lang2id), dict(script2id)
    ids = sorted(set(lang_script_ids))
    langs, scripts = [i.split("_", 1)[0] for i in ids], [i.split("_", 1)[1] for i in ids]
    for mapping, codes in ((lang2id, langs), (script2id, scripts)):
        for code in sorted(set(codes) - set(mapping)):
            mapping[code] = max(mapping.values(), default=-1) + 1
    return lang2id, script2id


def corpus_scripts(sources: dict[str, Any]) -> dict[str, str]:
    """language -> the corpus script it has the most training lines in (``Corpus.sources`` values)."""
    best: dict[str, tuple[int, str]] = {}
    for source in sorted(sources.values(), key=lambda s: s.lang_script):
        lines = getattr(source, "lines", 0)
        if source.lang not in best or lines > best[source.lang][0]:
            best[source.lang] = (lines, source.script)
    return {lang: script for lang, (_, script) in best.items()}


def initialise_from_checkpoint(model: Any, initial_model: str, lang_map: str | None, method: str,
                               lang_scripts: dict[str, str], say: Callable[[str], Any] = print) -> dict[str, Any]:
    """Load ``initial_model``'s tables and initialise ``model``'s new rows from them (see the module doc)."""
    from langsamp_cli.embedding_tables import load_embedding_tables

    if not model.has_tables:
        return {}
    try:
        source = load_embedding_tables(initial_model, lang_map=lang_map)
    except LangsampError:
        return {}  # a plain masked LM: every table row is new, there is nothing to copy or average
    return initialise_new_rows(model, source, method, lang_scripts, say)


def initialise_new_rows(model: Any, source: Any, method: str, lang_scripts: dict[str, str],
                        say: Callable[[str], Any] = print) -> dict[str, Any]:
    """Fill ``model``'s rows that ``source`` (embedding_tables.EmbeddingTables) lacks; returns and keeps the record."""
    if method not in INIT_METHODS:
        raise LangsampError(f"--init-new-languages {method}: choose one of {', '.join(INIT_METHODS)}")
    record: dict[str, Any] = {}
    lang_rows = _new_keys(model.lang_embeddings, model.lang2id, source.lang, source.lang2id)
    script_rows = _new_keys(model.script_embeddings, model.script2id, source.script, source.script2id)
    if lang_rows:
        record["lang"] = {key: _lang_rule(key, lang_scripts.get(key), source, method) for key in lang_rows}
        _apply(model.lang_embeddings, model.lang2id, source.lang, source.lang2id, record["lang"])
    if script_rows:
        record["script"] = {key: _script_rule(source, method) for key in script_rows}
        _apply(model.script_embeddings, model.script2id, source.script, source.script2id, record["script"])
    for table, rows in record.items():
        for key, rule in rows.items():
            say(f"new {table} row {key}: {describe(rule)}")
    if record:
        model.initialised_rows = {"method": method, **record}
    return record


def describe(rule: dict[str, Any]) -> str:
    sources = rule["from"]
    if rule["method"] == "random":
        text = "random (the model's normal initialisation)"
    else:
        shown = ", ".join(sources[:SHOWN_SOURCES]) + (f", ... ({len(sources)} rows)" if len(sources) > SHOWN_SOURCES
                                                       else "")
        text = f"{rule['method']} of {shown}"
    return text + (f" ({rule['note']})" if rule.get("note") else "")


def _new_keys(table: Any, target_ids: dict[str, int], source: np.ndarray | None, source_ids: dict[str, int]
              ) -> list[str]:
    """Codes of the model's table that were not copied from ``source`` (none when there is nothing to copy from)."""
    if table is None or source is None or source.shape[1] != table.weight.shape[1]:
        return []
    return sorted(code for code in target_ids if code not in _usable(source, source_ids))


def _usable(source: np.ndarray, source_ids: dict[str, int]) -> dict[str, int]:
    return {code: i for code, i in source_ids.items() if 0 <= i < source.shape[0]}


def _lang_rule(lang: str, script: str | None, source: Any, method: str) -> dict[str, Any]:
    if method == "random":
        return {"method": "random", "from": []}
    note = None
    if method == "donor":
        donors, note = _donors(lang, script, source)
        if donors:
            return {"method": "donor", "from": donors, "ranked_by": "uriel"}
    rule = _same_script_mean(script, source)
    if note:
        rule["note"] = f"{note}; used the mean"
    return rule


def _same_script_mean(script: str | None, source: Any) -> dict[str, Any]:
    from langsamp_cli.languages import main_script

    keys = sorted(_usable(source.lang, source.lang2id))
    same = [key for key in keys if _script_of(key, main_script) == script] if script else []
    if same:
        return {"method": "mean", "from": same}
    return {"method": "mean", "from": keys,
            "note": f"no checkpoint language writes {script or 'this script'}: mean of all language rows"}


def _script_of(key: str, main_script: Callable[[str], str | None]) -> str | None:
    if "_" in key:  # a table keyed by lang_Script ids
        return key.split("_", 1)[1]
    return main_script(key)


def _script_rule(source: Any, method: str) -> dict[str, Any]:
    if method == "random":
        return {"method": "random", "from": []}
    return {"method": "mean", "from": sorted(_usable(source.script, source.script2id))}


def _donors(lang: str, script: str | None, source: Any) -> tuple[list[str], str | None]:
    """(the best DONOR_COUNT checkpoint languages by URIEL typology, note); ([], why) when they cannot be ranked."""
    from langsamp_cli.analysis.donor import rank_donors
    from langsamp_cli.languages import main_script

    target = f"{lang}_{script or main_script(lang) or 'Zyyy'}"
    key_of = {}
    for key in sorted(_usable(source.lang, source.lang2id)):
        key_of[key if "_" in key else f"{key}_{main_script(key) or 'Zyyy'}"] = key
    try:
        ranking = rank_donors(target, list(key_of), method="uriel")
    except LangsampError as err:
        return [], _first_sentence(str(err))
    scores = ranking.scores.get("uriel", {})
    best = [candidate for candidate in ranking.ranking if scores.get(candidate) is not None][:DONOR_COUNT]
    if not best:
        return [], f"URIEL scores none of the checkpoint's languages against {target}"
    return [key_of[candidate] for candidate in best], None


def _first_sentence(message: str) -> str:
    return message.split(";", 1)[0].strip()


def _apply(table: torch.nn.Embedding, target_ids: dict[str, int], source: np.ndarray, source_ids: dict[str, int],
           rules: dict[str, dict[str, Any]]) -> None:
    """Write the mean of each rule's source rows (in float64, then the table's dtype) into the new rows."""
    with torch.no_grad():
        for key, rule in rules.items():
            if not rule["from"]:
                continue
            rows = np.asarray([source[source_ids[code]] for code in rule["from"]], dtype=np.float64)
            value = torch.from_numpy(rows.mean(axis=0))
            table.weight[target_ids[key]] = value.to(device=table.weight.device, dtype=table.weight.dtype)
