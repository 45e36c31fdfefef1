"""The experiment's front page: report tables + index.md, rendered to index.html with the markdown library."""

from __future__ import annotations

import html
import json
import os
import platform
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langsamp_cli.experiment.config import BASELINE, ExperimentConfig, pretrain_settings
from langsamp_cli.experiment.stages import Layout, _duration
from langsamp_cli.io_utils import atomic_write_text



def write_experiment_report(config: ExperimentConfig) -> tuple[Path, Path]:
    """report/ tables (via the report library) + index.md and index.html with tables and pictures."""
    from langsamp_cli.report import build_report, merge_pending, write_report

    layout = Layout(config.output_dir)
    report = None
    if any(layout.results.glob("**/units/*.json")):
        merge_pending([layout.results])
        report = build_report([layout.results], metric=config.report.get("metric"),
                              scale=float(config.report.get("scale", 100.0)))
        order_models(report, config.variants)
        write_report(report, layout.report, ["md", "csv", "tex"])
        print(f"wrote {layout.report}/table1.md, families.md, languages.md (+ csv, tex)")
    page = IndexPage(config, layout, report)
    md, page_html = page.markdown(), page.html()
    md_path = atomic_write_text(layout.root / "index.md", md)
    html_path = atomic_write_text(layout.root / "index.html", page_html)
    print(f"wrote {md_path} and {html_path}")
    return md_path, html_path


def order_models(report: Any, variants: list[str]) -> None:
    """Rows in the ablation's order (vanilla, lang, script, both) instead of folder order."""
    rank = {v: i for i, v in enumerate(variants)}
    for name in ("groups", "families", "languages"):
        frame = getattr(report, name)
        key = frame["model"].map(lambda m: rank.get(m, len(rank)))
        setattr(report, name, frame.assign(_rank=key).sort_values("_rank", kind="stable").drop(columns="_rank")
                .reset_index(drop=True))


@dataclass
class Section:
    title: str
    text: str = ""                                   # Markdown paragraph(s)
    table: tuple[list[str], list[list[str]]] | None = None
    images: list[tuple[str, str]] = field(default_factory=list)  # (relative path, caption)
    n_text_columns: int = 1


class IndexPage:
    """The experiment's front page, built once as sections and rendered to Markdown and HTML."""

    def __init__(self, config: ExperimentConfig, layout: Layout, report: Any) -> None:
        self.config, self.layout, self.report = config, layout, report
        self.state = json.loads(layout.state.read_text(encoding="utf-8")) if layout.state.is_file() else {}
        self.sections = [s for s in (self.scale(), self.headline(), *self.task_tables(), self.similarity(),
                                     self.embeddings(), self.pretraining(), self.stages(), self.files()) if s]

    # -- content
    def scale(self) -> Section:
        settings = pretrain_settings(self.config)
        world = _launcher_processes(self.config.pretrain.get("launcher"))
        tokens = settings.batch_size * settings.grad_accum * settings.max_seq_len * world
        corpus = settings.corpus or "the bundled demo corpus"
        params = self._parameter_count()
        text = (f"Variants {', '.join(self.config.variants)} were pretrained from the same initialisation "
                f"(model `{settings.model}`{', from scratch' if settings.is_from_scratch else ', continued'}"
                f"{f', {params / 1e6:.1f}M parameters' if params else ''}; seed {settings.seed}) on {corpus} for "
                f"{settings.max_steps:,} steps of {tokens:,} tokens ({settings.batch_size} x {settings.grad_accum} "
                f"x {world} chunks of {settings.max_seq_len}), then evaluated on "
                f"{', '.join(self.config.tasks) or 'no task'}. Total stage time: "
                f"{_duration(self._total_seconds())} on {_machine()}.")
        if self.config.description:
            text += "\n\n" + self.config.description
        return Section("Scale and what it shows", text)

    def headline(self) -> Section | None:
        if self.report is None:
            return None
        groups = self.report.groups
        models = list(dict.fromkeys(groups.model))
        rows = []
        for task in dict.fromkeys(groups.task):
            part = groups[(groups.task == task) & (groups.group == "all")].set_index("model")
            if part.empty:
                continue
            base = part["mean"].get(BASELINE)
            cells = []
            for model in models:
                if model not in part.index:
                    cells.append("-")
                    continue
                from langsamp_cli.report import cell

                text = cell(part.loc[model, "mean"], part.loc[model, "std"])
                if base is not None and model != BASELINE:
                    text += f" ({part.loc[model, 'mean'] - base:+.1f})"
                cells.append(text)
            rows.append([_task_label(task), str(part["metric"].iloc[0]), *cells])
        text = (f"Mean over all evaluated languages (x{self.report.scale:g}); in brackets the difference to "
                f"`{BASELINE}`. Per-group columns follow.") if BASELINE in models else \
            f"Mean over all evaluated languages (x{self.report.scale:g})."
        return Section("Does LangSAMP help? (all languages)", text, (["task", "metric", *models], rows),
                       n_text_columns=2)

    def task_tables(self) -> list[Section]:
        if self.report is None:
            return []
        from langsamp_cli.report import table1_cells

        columns, models, body = table1_cells(self.report)
        sections = []
        for task in dict.fromkeys(t for t, _ in columns):
            picked = [i for i, (t, _) in enumerate(columns) if t == task]
            part = self.report.groups[self.report.groups.task == task]
            counts = part.drop_duplicates("group").set_index("group")["n_languages"]
            header = ["variant", *(f"{columns[i][1]} ({int(counts.get(columns[i][1], 0))})" for i in picked)]
            rows = [[m, *(row[i] for i in picked)] for m, row in zip(models, body)]
            text = (f"{part.metric.iloc[0]} x{self.report.scale:g}, mean (std) over {part.n_seeds.max()} seed(s); "
                    "column = language group (number of languages); best per column in bold.")
            sections.append(Section(f"{_task_label(task)} by language group", text, (header, rows)))
        return sections

    def similarity(self) -> Section | None:
        rows, images = [], []
        for variant in self.config.variants:
            record = self.layout.similarity(variant) / "similarity.json"
            if not record.is_file():
                continue
            data = json.loads(record.read_text(encoding="utf-8"))
            ours, base = _mean_off_diagonal(data.get("similarity")), _mean_off_diagonal(data.get("baseline_similarity"))
            rows.append([variant, f"{ours:.3f}", f"{base:.3f}", f"{ours - base:+.3f}",
                         f"{data.get('pairs_improved', '-')} / {data.get('pairs_total', '-')}",
                         str(len(data.get("languages", []))), str(data.get("n", "-"))])
            picture = self.layout.similarity(variant) / "similarity_compare.png"
            if picture.is_file():
                images.append((self._relative(picture), f"{variant} vs {BASELINE}: centroid-subtracted cosine"))
        if not rows:
            return None
        text = ("Language neutrality (paper §5.3): mean pairwise cosine of parallel sentences after subtracting "
                "each language's centroid (layer-8 mean pooling); higher = representations less language-specific.")
        header = ["variant", "mean cosine", f"{BASELINE}", "difference", "pairs improved", "languages", "sentences"]
        return Section(f"Similarity of parallel sentences vs {BASELINE}", text, (header, rows), images)

    def embeddings(self) -> Section | None:
        images = []
        for variant in self.config.variants:
            for table in ("language", "script"):
                picture = self.layout.plots(variant) / f"{table}_pca.png"
                if picture.is_file():
                    images.append((self._relative(picture), f"{variant}: PCA of the {table} embeddings"))
        if not images:
            return None
        return Section("Learned language and script embeddings", "2-D PCA of the embedding tables (paper Figure 3).",
                       images=images)

    def pretraining(self) -> Section | None:
        rows = []
        for variant in self.config.variants:
            summary = self.layout.final_dir(variant) / "trainer_state.json"
            if not summary.is_file():
                rows.append([variant, "-", "-", "-", "-"])
                continue
            data = json.loads(summary.read_text(encoding="utf-8"))
            loss = _last_logged_loss(self.layout.run_dir(variant) / "log.jsonl")
            seconds = self.state.get("stages", {}).get(f"pretrain:{variant}", {}).get("seconds")
            rows.append([variant, f"{data.get('step', 0):,}", f"{data.get('tokens_seen', 0):,}",
                         f"{loss:.3f}" if loss is not None else "-", _duration(seconds) if seconds else "-"])
        return Section("Pretraining", "Final MLM loss = mean of the last logged window.",
                       (["variant", "steps", "tokens", "final MLM loss", "time"], rows))

    def stages(self) -> Section:
        rows = [[name, record.get("status", "-"), _duration(record["seconds"]) if record.get("seconds") else "-"]
                for name, record in self.state.get("stages", {}).items() if name != "report"]
        return Section("Stages", f"Command: `langsamp experiment {_display_source(self.config.source)}`.",
                       (["stage", "status", "time"], rows))

    def files(self) -> Section | None:
        names = [p for p in sorted(self.layout.report.glob("*.md"))] if self.layout.report.is_dir() else []
        if not names:
            return None
        links = ", ".join(f"[{p.name}]({self._relative(p)})" for p in names)
        return Section("Tables", f"All tables (Markdown, CSV, LaTeX): {links}. Per-language scores: "
                       f"[languages.md]({self._relative(self.layout.report / 'languages.md')}).")

    # -- helpers
    def _relative(self, path: Path) -> str:
        return path.relative_to(self.layout.root).as_posix()

    def _total_seconds(self) -> float:
        return sum(r.get("seconds") or 0 for r in self.state.get("stages", {}).values())

    def _parameter_count(self) -> int | None:
        for variant in self.config.variants:
            weights = self.layout.final_dir(variant) / "model.safetensors"
            if weights.is_file():
                from safetensors import safe_open

                with safe_open(str(weights), framework="numpy") as handle:
                    return sum(int(_numel(handle.get_slice(k).get_shape())) for k in handle.keys())
        return None

    # -- rendering
    def markdown(self) -> str:
        from langsamp_cli.report import markdown_table

        parts = [f"# LangSAMP experiment: {self.config.name}\n"]
        for section in self.sections:
            parts.append(f"## {section.title}\n")
            if section.text:
                parts.append(section.text + "\n")
            if section.table:
                parts.append(markdown_table(*section.table, n_text_columns=section.n_text_columns))
            parts += [f"![{caption}]({path})\n" for path, caption in section.images]
        return "\n".join(parts)

    def html(self) -> str:
        body = [f"<h1>LangSAMP experiment: {html.escape(self.config.name)}</h1>"]
        for section in self.sections:
            body.append(f"<h2>{html.escape(section.title)}</h2>")
            if section.text.strip():
                body.append(_markdown_html(section.text))
            if section.table:
                body.append(_html_table(*section.table, n_text_columns=section.n_text_columns))
            body += [f'<figure><img src="{html.escape(path)}" alt="{html.escape(caption)}">'
                     f"<figcaption>{html.escape(caption)}</figcaption></figure>" for path, caption in section.images]
        return HTML_TEMPLATE.format(title=html.escape(f"LangSAMP experiment: {self.config.name}"),
                                    body="\n".join(body))


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
th {{ background: #f3f3f3; }}
figure {{ display: inline-block; margin: 0.5em; vertical-align: top; }}
img {{ max-width: 520px; border: 1px solid #eee; }}
code {{ background: #f5f5f5; padding: 0 0.2em; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _html_table(header: list[str], rows: list[list[str]], n_text_columns: int = 1) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = "".join(f"<td{' class=num' if i >= n_text_columns else ''}>{_inline_html(c)}</td>"
                        for i, c in enumerate(row))
        lines.append(f"<tr>{cells}</tr>")
    return "\n".join([*lines, "</tbody></table>"])


def _markdown_html(text: str) -> str:
    """Markdown paragraphs -> HTML (the markdown library; the YAML's description may use any Markdown)."""
    import markdown

    return markdown.markdown(str(text), output_format="html")


def _inline_html(text: str) -> str:
    """One table cell's Markdown (**bold**, `code`, links) -> HTML without the paragraph around it."""
    rendered = _markdown_html(text)
    return rendered[3:-4] if rendered.startswith("<p>") and rendered.endswith("</p>") else rendered


def _task_label(task: str) -> str:
    from langsamp_cli.report import task_label

    return task_label(task)


def _mean_off_diagonal(matrix: dict | None) -> float:
    if not matrix:
        return float("nan")
    langs = list(matrix)
    values = [matrix[a][b] for i, a in enumerate(langs) for b in langs[i + 1:] if matrix[a].get(b) is not None]
    return sum(values) / len(values) if values else float("nan")


def _last_logged_loss(log: Path) -> float | None:
    if not log.is_file():
        return None
    losses = [json.loads(line).get("loss") for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    losses = [x for x in losses if x is not None]
    return float(losses[-1]) if losses else None


def _numel(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


def _launcher_processes(launcher: str | None) -> int:
    """Processes a launcher starts (--num_processes N / --nproc_per_node N x --nnodes M); 1 without one."""
    if not launcher:
        return 1
    tokens = shlex.split(launcher)
    values: dict[str, int] = {}
    for i, token in enumerate(tokens):
        name, _, inline = token.partition("=")
        if name in ("--num_processes", "--num-processes", "--nproc_per_node", "--nproc-per-node", "--nnodes"):
            raw = inline or (tokens[i + 1] if i + 1 < len(tokens) else "1")
            values[name.replace("-", "_")] = int(raw) if raw.isdigit() else 1
    if "__num_processes" in values:
        return values["__num_processes"]
    return values.get("__nproc_per_node", 1) * values.get("__nnodes", 1)


def _machine() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
        threads = torch.get_num_threads()
    except ImportError:
        threads = os.cpu_count() or 1
    return f"CPU ({threads} thread(s), {platform.machine()})"


def _display_source(source: str) -> str:
    path = Path(source)
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name
