"""Every matplotlib figure of the toolkit, in one place (Agg backend: no display needed).

Each function takes plain arrays and labels, writes ``<stem>.png`` and ``<stem>.svg`` atomically
and returns the written paths. Nothing here computes a number that a table does not also hold.
Similarity heatmaps grey out the diagonal (1 by construction) so the colour scale shows the pairs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from langsamp_cli.io_utils import atomic_write_bytes  # noqa: E402

FORMATS = ("png", "svg")
DPI = 150
# Above this many points only a selection is labelled, so the scatter stays readable.
MAX_LABELS = 60




def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``stem.<fmt>`` for each format (atomically) and close it."""
    stem = Path(stem)
    written = []
    try:
        for fmt in formats:
            buffer = io.BytesIO()
            fig.savefig(buffer, format=fmt, dpi=DPI, bbox_inches="tight")
            written.append(atomic_write_bytes(stem.with_name(f"{stem.name}.{fmt}"), buffer.getvalue()))
    finally:
        plt.close(fig)
    return written


# ---------------------------------------------------------------------------- heatmaps
def _draw_heatmap(ax, matrix: np.ndarray, labels: Sequence[str], title: str, fmt: str, cmap: str,
                  vmin: float | None = None, vmax: float | None = None, center_zero: bool = False):
    """Annotated heatmap; NaN cells (e.g. a masked diagonal) are drawn light grey and left blank."""
    if center_zero:
        bound = _robust_bound(matrix)
        vmin, vmax = -bound, bound
    colours = plt.get_cmap(cmap).with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=colours, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(len(labels)), labels=labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    ax.set_title(title, fontsize=10)
    norm = image.norm
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            value = matrix[i, j]
            if np.isnan(value):
                continue
            ax.text(j, i, format(value, fmt), ha="center", va="center", fontsize=6.5,
                    color=_text_colour(colours(norm(value))))
    return image


def _robust_bound(matrix: np.ndarray) -> float:
    """Colour limit for a signed matrix: the 90th percentile of |value|, so one pair with a near-zero
    baseline (a huge percentage) does not wash out the rest; the printed numbers stay exact."""
    finite = np.abs(matrix[np.isfinite(matrix)])
    if finite.size == 0:
        return 1.0
    return float(np.percentile(finite, 90)) or 1.0


def _text_colour(rgba: tuple) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell colour)."""
    red, green, blue = rgba[:3]
    return "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.45 else "white"


def _off_diagonal(matrix: np.ndarray) -> np.ndarray:
    """A copy with the diagonal set to NaN: self-similarity is 1 by construction and would flatten the scale."""
    out = np.array(matrix, dtype=np.float64, copy=True)
    np.fill_diagonal(out, np.nan)
    return out


def _cell_size(n: int) -> float:
    return max(4.0, 0.62 * n + 1.5)


def plot_similarity_heatmap(matrix: np.ndarray, labels: Sequence[str], stem: str | Path,
                            title: str = "Pairwise cosine similarity (centroid-subtracted)") -> list[Path]:
    """One annotated similarity matrix (paper Figure 5, one side)."""
    size = _cell_size(len(labels))
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = _draw_heatmap(ax, _off_diagonal(matrix), labels, title, ".2f", "viridis")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return save_figure(fig, stem)


def plot_similarity_comparison(ours: np.ndarray, baseline: np.ndarray, difference: np.ndarray,
                               labels: Sequence[str], names: tuple[str, str], stem: str | Path,
                               suptitle: str | None = None) -> list[Path]:
    """Baseline | ours (shared colour scale) | the absolute difference ours - baseline (paper Figures 4 and 5).

    The paper's third panel is a percentage; over a near-zero baseline that explodes, so this one is absolute.
    """
    baseline_name, ours_name = names
    size = _cell_size(len(labels))
    fig, axes = plt.subplots(1, 3, figsize=(3 * size + 3, size))
    ours, baseline = _off_diagonal(ours), _off_diagonal(baseline)
    both = np.concatenate([ours[np.isfinite(ours)], baseline[np.isfinite(baseline)]])
    vmin, vmax = (float(both.min()), float(both.max())) if both.size else (0.0, 1.0)
    _draw_heatmap(axes[0], baseline, labels, f"baseline: {baseline_name}", ".2f", "viridis", vmin, vmax)
    image = _draw_heatmap(axes[1], ours, labels, f"ours: {ours_name}", ".2f", "viridis", vmin, vmax)
    fig.colorbar(image, ax=axes[:2].tolist(), fraction=0.023, pad=0.02)
    diff = _draw_heatmap(axes[2], _off_diagonal(difference), labels, "difference (ours - baseline)", "+.2f",
                         "RdBu", center_zero=True)
    fig.colorbar(diff, ax=axes[2], fraction=0.046, pad=0.04)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return save_figure(fig, stem)


# ---------------------------------------------------------------------------- scatter
UNKNOWN_GROUP = "unknown"
OTHER_GROUP = "other"
_GREYS = {UNKNOWN_GROUP: (0.75, 0.75, 0.75, 1.0), OTHER_GROUP: (0.45, 0.45, 0.45, 1.0)}
# Qualitative colours without the palettes' grey (kept for 'unknown' / 'other'). With more than
# nine groups tab20 is used with its dark shades first: its neighbours are light/dark pairs of one
# hue, and giving two groups of a few points such a pair would make them look like one.
_TAB10 = [i for i in range(10) if i != 7]
_TAB20 = [i for i in range(0, 20, 2) if i != 14] + [i for i in range(1, 20, 2) if i != 15]
MAX_GROUPS = len(_TAB20)


def limit_groups(groups: Sequence[str], limit: int = MAX_GROUPS) -> list[str]:
    """The ``limit`` largest groups keep their names (ties by name); the rest become 'other'."""
    counts: dict[str, int] = {}
    for group in groups:
        if group not in _GREYS:
            counts[group] = counts.get(group, 0) + 1
    if len(counts) <= limit:
        return list(groups)
    keep = {g for g, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]}
    return [g if g in keep or g == UNKNOWN_GROUP else OTHER_GROUP for g in groups]


def _colour_map(groups: Sequence[str]) -> dict[str, tuple]:
    """One distinct colour per named group (sorted); 'other' and 'unknown' are greys, listed last."""
    names = sorted(set(groups) - set(_GREYS))
    palette, order = (plt.get_cmap("tab10"), _TAB10) if len(names) <= len(_TAB10) else (plt.get_cmap("tab20"), _TAB20)
    colours = {name: palette(order[i % len(order)]) for i, name in enumerate(names)}
    for grey in (OTHER_GROUP, UNKNOWN_GROUP):
        if grey in groups:
            colours[grey] = _GREYS[grey]
    return colours


def _labelled_indices(coords: np.ndarray, labels: Sequence[str], always: set[str], limit: int) -> list[int]:
    """All points when few; otherwise the requested ones plus the points farthest from the centre."""
    if len(labels) <= limit:
        return list(range(len(labels)))
    chosen = [i for i, label in enumerate(labels) if label in always]
    distance = np.linalg.norm(coords - coords.mean(axis=0), axis=1)
    for i in np.argsort(-distance):
        if len(chosen) >= limit:
            break
        if int(i) not in chosen:
            chosen.append(int(i))
    return chosen


def plot_embedding_scatter(coords: np.ndarray, labels: Sequence[str], groups: Sequence[str], stem: str | Path,
                           title: str, legend_title: str = "", always_label: Sequence[str] = (),
                           max_labels: int = MAX_LABELS, axis_labels: tuple[str, str] = ("PC1", "PC2"),
                           legend: bool = True) -> list[Path]:
    """2-D scatter coloured by group; labels placed by adjustText so they do not pile up.

    More than :data:`MAX_GROUPS` groups: the largest keep a colour, the rest are pooled as 'other'.
    """
    from adjustText import adjust_text

    shown_groups = limit_groups(groups)
    pooled = len(set(groups) - set(_GREYS)) - len(set(shown_groups) - set(_GREYS))
    colours = _colour_map(shown_groups)
    fig, ax = plt.subplots(figsize=(9, 7))
    handles = {}
    # Greys first so the coloured points are drawn on top of them; the legend keeps the greys last.
    for name in sorted(colours, key=lambda g: g not in _GREYS):
        rows = [i for i, g in enumerate(shown_groups) if g == name]
        handles[name] = ax.scatter(coords[rows, 0], coords[rows, 1], s=22, color=colours[name], label=name,
                                   alpha=0.85, edgecolors="none")
    shown = _labelled_indices(coords, labels, set(always_label), max_labels)
    texts = [ax.text(coords[i, 0], coords[i, 1], labels[i], fontsize=7) for i in shown]
    if texts:
        adjust_text(texts, ax=ax, x=coords[:, 0], y=coords[:, 1],
                    arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.5})
    ax.set_title(title if len(shown) == len(labels) else f"{title} ({len(shown)} of {len(labels)} labelled)",
                 fontsize=10)
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    legend_names = list(colours)
    labels_in_legend = [f"{OTHER_GROUP} ({pooled} smaller groups)" if n == OTHER_GROUP and pooled else n
                        for n in legend_names]
    if legend:
        ax.legend([handles[n] for n in legend_names], labels_in_legend, title=legend_title or None, fontsize=7,
                  title_fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return save_figure(fig, stem)


def plot_loss_curve(train: Sequence[tuple[int, float]], heldout: Sequence[tuple[int, float]], stem: str | Path,
                    title: str = "pretraining loss", formats: Sequence[str] = ("png",)) -> list[Path]:
    """MLM loss against step: the training loss (log.jsonl ``loss``) and, when evaluated, the held-out loss."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        steps, losses = zip(*train)
        ax.plot(steps, losses, color="tab:blue", lw=1.2, marker="." if len(train) < 30 else None, label="training")
    if heldout:
        steps, losses = zip(*heldout)
        ax.plot(steps, losses, color="tab:orange", lw=1.2, marker="o", ms=3, label="held-out")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("MLM loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if train and heldout:
        ax.legend(frameon=False)
    return save_figure(fig, stem, formats)


# ---------------------------------------------------------------------------- metric by layer
_LINE_STYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def plot_metric_by_layer(panels: dict[str, dict[tuple[str, str], tuple[Sequence[int], Sequence[float],
                                                                          Sequence[float]]]],
                         stem: str | Path, ylabel: str = "score", group_order: Sequence[str] = (),
                         formats: Sequence[str] = FORMATS) -> list[Path]:
    """A metric against the encoder layer: one panel per task, one line per (model, group).

    ``panels[task][(model, group)] = (layers, means, stds)``; a finite std draws a band of +-1 std.
    With one model the colour tells the groups apart; with several, the colour is the model and the
    line style (and marker) the group, so two models compare on one figure.
    """
    models = list(dict.fromkeys(m for lines in panels.values() for m, _ in lines))
    groups = list(dict.fromkeys([*group_order, *(g for lines in panels.values() for _, g in lines)]))
    groups = [g for g in groups if any(g == key[1] for lines in panels.values() for key in lines)]
    palette = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False, sharey=True)
    for ax, (task, lines) in zip(axes[0], panels.items()):
        for (model, group), (layers, means, stds) in lines.items():
            colour_index = groups.index(group) if len(models) == 1 else models.index(model)
            style_index = 0 if len(models) == 1 else groups.index(group)
            label = group if len(models) == 1 else f"{model} · {group}"
            colour = palette(colour_index % 10)
            ax.plot(layers, means, color=colour, ls=_LINE_STYLES[style_index % len(_LINE_STYLES)],
                    marker=_MARKERS[style_index % len(_MARKERS)], ms=3.5, lw=1.4, label=label)
            low = [m - s for m, s in zip(means, stds) if np.isfinite(s)]
            if len(low) == len(means):
                ax.fill_between(layers, low, [m + s for m, s in zip(means, stds)], color=colour, alpha=0.12, lw=0)
        ax.set_title(task, fontsize=10)
        ax.set_xlabel("layer (0 = embeddings)")
        all_layers = sorted({k for layers, _, _ in lines.values() for k in layers})
        ax.set_xticks(all_layers)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return save_figure(fig, stem, formats)


# ---------------------------------------------------------------------------- all-pairs retrieval matrix
def plot_pair_matrix(matrix: np.ndarray, labels: Sequence[str], groups: Sequence[str], stem: str | Path,
                     title: str, highlight: str | None = None) -> list[Path]:
    """Query languages (rows) x target languages (columns), languages already in group order.

    ``groups[i]`` (the script) is drawn as a band of separators and a label; ``highlight`` (English) is in
    bold red. Cells carry their value up to 30 languages; beyond that the size grows with the count
    (about 0.11 inch per language, 4.5-point labels) so 205 x 205 stays legible, zoomed in the SVG.
    """
    n = len(labels)
    annotate = n <= 30
    inch = 0.5 if annotate else 0.11
    side = max(4.0, inch * n + 1.5)
    fig, ax = plt.subplots(figsize=(side + 1.4, side))
    colours = plt.get_cmap("viridis").with_extremes(bad="#e6e6e6")
    image = ax.imshow(np.ma.masked_invalid(matrix), cmap=colours, vmin=0.0, vmax=1.0, interpolation="nearest")
    size = 7 if annotate else 4.5
    ax.set_xticks(range(n), labels=labels, rotation=90, fontsize=size)
    ax.set_yticks(range(n), labels=labels, fontsize=size)
    for tick in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        if tick.get_text() == highlight:
            tick.set_color("#c00000")
            tick.set_fontweight("bold")
    starts = [i for i in range(n) if i == 0 or groups[i] != groups[i - 1]]
    for start, stop in zip(starts, [*starts[1:], n]):
        if start:
            ax.axhline(start - 0.5, color="white", lw=0.6)
            ax.axvline(start - 0.5, color="white", lw=0.6)
        if stop - start >= (1 if annotate else 3):
            ax.text(n - 0.3, (start + stop - 1) / 2, f" {groups[start]}", fontsize=size + 1, va="center",
                    ha="left", clip_on=False)
    if annotate:
        for i in range(n):
            for j in range(n):
                if np.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=5.5,
                            color=_text_colour(colours(image.norm(matrix[i, j]))))
    ax.set_xlabel("target language")
    ax.set_ylabel("query language")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.08)
    return save_figure(fig, stem)
