"""How a query sentence ranks the candidate sentences: cosine, ratio margin or CSLS.

Every retrieval task (SR-T, SR-B, the all-pairs task) scores through this module. Inputs are
L2-normalised float32 matrices with ``queries[i]`` aligned to ``targets[i]``; similarities are
computed as a tensor of shape ``(..., n_queries, n_targets)`` so one call can score a block of
several language pairs at once (on the GPU when the tensors live there).

- ``cosine``: cos(x, y).
- ``margin``: the ratio margin of Artetxe & Schwenk (2019), cos(x, y) divided by the mean of
  r_T(x) and r_S(y), where r_T(x) is x's mean cosine to its k nearest targets and r_S(y) is y's
  mean cosine to its k nearest queries (k = ``margin_k``, default 4).
- ``csls``: 2 cos(x, y) - r_T(x) - r_S(y) with the same neighbourhoods (Conneau et al., 2018;
  k = ``csls_k``, default 10).

A neighbourhood larger than the candidate list is cut to the list. Query i is right at k when
fewer than k candidates score strictly higher than its own translation (a tie counts for the
query), so one pass over the scores gives every acc@k.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from langsamp_cli.errors import LangsampError

if TYPE_CHECKING:  # the Scoring choice is torch-free; only the functions that score import torch and numpy
    import numpy as np
    import torch

ScoringName = Literal["cosine", "margin", "csls"]
SCORINGS: tuple[str, ...] = ("cosine", "margin", "csls")
DEFAULT_K = {"margin": 4, "csls": 10}


@dataclass(frozen=True)
class Scoring:
    """One scoring function and its neighbourhood size (``k`` is unused by cosine)."""

    method: ScoringName = "cosine"
    k: int = 0

    def __post_init__(self) -> None:
        if self.method not in SCORINGS:
            raise LangsampError(f"--scoring {self.method}: use one of {', '.join(SCORINGS)}")
        if self.method != "cosine" and self.k < 1:
            raise LangsampError(f"--{self.method}-k {self.k}: the neighbourhood must hold at least 1 sentence")

    @property
    def is_cosine(self) -> bool:
        return self.method == "cosine"

    def record(self) -> dict[str, object]:
        """The settings that change a number: nothing for cosine (its results stay those of the plain runs)."""
        return {} if self.is_cosine else {"scoring": self.method, f"{self.method}_k": self.k}


def scoring_from(settings) -> Scoring:
    """The Scoring of a settings object or mapping (fields ``scoring``, ``margin_k``, ``csls_k``)."""
    get = settings.get if isinstance(settings, dict) else lambda key, default=None: getattr(settings, key, default)
    method = get("scoring") or "cosine"
    if method == "cosine":
        return Scoring()
    if method not in SCORINGS:
        raise LangsampError(f"--scoring {method}: use one of {', '.join(SCORINGS)}")
    k = get(f"{method}_k")
    return Scoring(method, int(DEFAULT_K[method] if k is None else k))


def normalise(vectors: np.ndarray) -> np.ndarray:
    """A float32 C-contiguous copy with unit rows (faiss' normalisation, as the official scripts use)."""
    import faiss
    import numpy as np

    out = np.array(vectors, dtype=np.float32, order="C")
    faiss.normalize_L2(out)
    return out


def knn_mean(similarity: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Mean of the ``k`` largest values along ``dim`` (all of them when fewer than ``k``)."""
    k = min(k, similarity.shape[dim])
    return similarity.topk(k, dim=dim).values.mean(dim=dim)


def rescore(similarity: torch.Tensor, scoring: Scoring) -> torch.Tensor:
    """Scores from cosine similarities ``(..., n_queries, n_targets)``; cosine returns its input."""
    if scoring.is_cosine:
        return similarity
    r_target = knn_mean(similarity, scoring.k, dim=-1).unsqueeze(-1)  # r_T(x): x's k nearest targets
    r_source = knn_mean(similarity, scoring.k, dim=-2).unsqueeze(-2)  # r_S(y): y's k nearest queries
    import torch

    if scoring.method == "margin":  # in place, so a block never needs a third (n, n) tensor
        out = torch.add(r_target, r_source).mul_(0.5)
        return torch.div(similarity, out, out=out)
    return torch.mul(similarity, 2).sub_(r_target).sub_(r_source)


def gold_ranks(scores: torch.Tensor) -> torch.Tensor:
    """How many candidates beat each query's aligned target: ``(..., n)`` from square ``(..., n, n)`` scores."""
    gold = scores.diagonal(dim1=-2, dim2=-1).unsqueeze(-1)
    return (scores > gold).sum(dim=-1)


def accuracy_from_ranks(ranks: torch.Tensor, ks: Sequence[int]) -> torch.Tensor:
    """acc@k for every k, over the last dimension: ``(..., len(ks))`` float64 fractions."""
    import torch

    return torch.stack([(ranks < k).double().mean(dim=-1) for k in ks], dim=-1)


def pair_accuracy(queries: np.ndarray, targets: np.ndarray, scoring: Scoring, ks: Sequence[int]) -> dict[str, float]:
    """acc@k of one aligned pair of sides (any scoring; SR-T/SR-B use faiss for cosine)."""
    if queries.shape != targets.shape:
        raise ValueError(f"queries {queries.shape} and targets {targets.shape} must be aligned")
    import torch

    q, t = torch.from_numpy(normalise(queries)), torch.from_numpy(normalise(targets))
    ranks = gold_ranks(rescore(q @ t.T, scoring))
    values = accuracy_from_ranks(ranks, ks).tolist()
    return {f"acc@{k}": float(v) for k, v in zip(ks, values)}


def block_accuracy(queries: torch.Tensor, targets: torch.Tensor, scoring: Scoring,
                   ks: Sequence[int]) -> torch.Tensor:
    """acc@k of one query language against a block of target languages.

    ``queries``: ``(n, d)`` unit rows; ``targets``: ``(b, n, d)`` unit rows of b languages. Returns
    ``(b, len(ks))``. Holds two ``(b, n, n)`` float32 tensors at a time: similarities and scores.
    """
    import torch

    similarity = torch.matmul(queries.float(), targets.float().transpose(-1, -2))  # (b, n, n)
    scores = rescore(similarity, scoring)
    del similarity
    return accuracy_from_ranks(gold_ranks(scores), ks)
