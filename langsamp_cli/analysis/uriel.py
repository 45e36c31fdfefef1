"""URIEL typological similarity, read straight from the ``.npz`` files that lang2vec ships.

lang2vec itself is never imported: its module does ``import pkg_resources``, which current
setuptools no longer provides. We locate the installed package folder with
``importlib.util.find_spec`` (which does not run the package) and load ``data/*.npz`` ourselves.

Similarity of two languages = the mean, over the chosen feature sets, of the cosine between
their feature vectors restricted to the features both languages have (URIEL marks a missing value
with -1). Distance = 1 - similarity.

The default is ``syntax_knn`` alone (103 kNN-imputed syntactic features, no gaps). Checked on
pairs with an obvious answer among the paper's ten donors (por -> spa, yue -> zho, urd -> hin,
deu -> eng), it ranks the related language first in all four; averaging in ``phonology_knn``
(28 features) and ``inventory_knn`` (158 sound-inventory features) ranks rus first for por.
Other sets can be chosen (``--uriel-features syntax_knn,phonology_knn,inventory_knn``).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from langsamp_cli.errors import LangsampError

# No square brackets (an extra such as langsamp-cli[uriel]): rich would read them as markup and drop them.
INSTALL_HINT = "pip install lang2vec"
# feature set -> (file, source, feature-name prefix), as lang2vec defines them.
FEATURE_SETS = {
    "syntax_knn": ("feature_predictions.npz", "predicted", "S_"),
    "phonology_knn": ("feature_predictions.npz", "predicted", "P_"),
    "inventory_knn": ("feature_predictions.npz", "predicted", "INV_"),
    "syntax_wals": ("features.npz", "WALS", "S_"),
    "phonology_wals": ("features.npz", "WALS", "P_"),
    "syntax_average": ("feature_averages.npz", "avg", "S_"),
    "phonology_average": ("feature_averages.npz", "avg", "P_"),
    "inventory_average": ("feature_averages.npz", "avg", "INV_"),
    "fam": ("family_features.npz", "FAM", ""),
    "geo": ("geocoord_features.npz", "GEOCOORDS", ""),
}
DEFAULT_SETS = ("syntax_knn",)


def _candidate_dirs() -> list[Path]:
    """Folders that may hold lang2vec's ``data/*.npz``, without importing lang2vec.

    ``find_spec`` alone is not enough: lang2vec also installs a script ``bin/lang2vec.py``, and when
    ``langsamp`` runs as a console script ``bin/`` is ``sys.path[0]``, so ``find_spec("lang2vec")``
    returns that plain module (no package folder). The installed distribution's file list and the
    other ``sys.path`` entries are searched too. ``find_spec`` returning None means not installed.
    """
    import sys

    spec = importlib.util.find_spec("lang2vec")
    if spec is None:
        return []
    folders = [Path(location) / "data" for location in (spec.submodule_search_locations or [])]
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        folders.append(Path(distribution("lang2vec").locate_file("lang2vec/data")))
    except (PackageNotFoundError, ImportError, OSError, TypeError):
        pass
    folders += [Path(entry or ".") / "lang2vec" / "data" for entry in sys.path]
    return list(dict.fromkeys(folders))


def uriel_data_dir() -> Path:
    """The ``lang2vec/data`` folder of the installed package, or a one-line install hint."""
    for folder in _candidate_dirs():
        if (folder / "feature_predictions.npz").is_file():
            return folder
    raise LangsampError(f"URIEL typology needs the lang2vec data files, which are not installed; run {INSTALL_HINT}")


def uriel_available() -> bool:
    """Whether the URIEL data can be read (lang2vec installed with its data files)."""
    try:
        uriel_data_dir()
    except LangsampError:
        return False
    return True


@dataclass(frozen=True)
class _FeatureSet:
    languages: dict[str, int]
    values: np.ndarray  # (languages, features); -1 = missing


def parse_feature_sets(value: str | None) -> tuple[str, ...]:
    """``"syntax_knn,fam"`` -> ("syntax_knn", "fam"); None -> the default."""
    if not value:
        return DEFAULT_SETS
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in FEATURE_SETS]
    if unknown or not names:
        raise LangsampError(f"--uriel-features {value!r}: unknown set(s) {', '.join(unknown) or '(none)'}; "
                            f"use some of {', '.join(FEATURE_SETS)}")
    return names


@lru_cache(maxsize=None)
def _load_set(name: str) -> _FeatureSet:
    if name not in FEATURE_SETS:
        raise LangsampError(f"unknown URIEL feature set {name!r}; use some of {', '.join(FEATURE_SETS)}")
    filename, source, prefix = FEATURE_SETS[name]
    with np.load(uriel_data_dir() / filename, allow_pickle=False) as database:
        features = [i for i, f in enumerate(database["feats"]) if str(f).startswith(prefix)]
        source_index = int(np.flatnonzero(database["sources"] == source)[0])
        values = np.asarray(database["data"][:, features, source_index], dtype=np.float64)
        languages = {str(code): i for i, code in enumerate(database["langs"])}
    return _FeatureSet(languages, values)


def uriel_code(lang_script: str, known: dict[str, int]) -> str | None:
    """The ISO 639-3 code URIEL knows for a ``lang_Script`` id (or an alias of it), or None."""
    candidates = [lang_script.split("_", 1)[0]]
    try:
        from langsamp_cli.languages import lang_script_aliases

        candidates += [alias.split("_", 1)[0] for alias in lang_script_aliases(lang_script)]
    except (ImportError, LangsampError):
        pass
    return next((code for code in candidates if code in known), None)


def _cosine_on_shared(a: np.ndarray, b: np.ndarray) -> float | None:
    present = (a >= 0) & (b >= 0)
    if not present.any():
        return None
    a, b = a[present], b[present]
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else None


def uriel_similarity(lang_a: str, lang_b: str, feature_sets: tuple[str, ...] = DEFAULT_SETS) -> float | None:
    """Mean cosine over the feature sets both languages have; None when URIEL lacks either language."""
    scores = []
    for name in feature_sets:
        table = _load_set(name)
        code_a, code_b = uriel_code(lang_a, table.languages), uriel_code(lang_b, table.languages)
        if code_a is None or code_b is None:
            continue
        score = _cosine_on_shared(table.values[table.languages[code_a]], table.values[table.languages[code_b]])
        if score is not None:
            scores.append(score)
    return float(np.mean(scores)) if scores else None


def uriel_distance(lang_a: str, lang_b: str, feature_sets: tuple[str, ...] = DEFAULT_SETS) -> float | None:
    similarity = uriel_similarity(lang_a, lang_b, feature_sets)
    return None if similarity is None else 1.0 - similarity


def uriel_has(lang_script: str, feature_sets: tuple[str, ...] = DEFAULT_SETS) -> bool:
    return any(uriel_code(lang_script, _load_set(name).languages) is not None for name in feature_sets)
