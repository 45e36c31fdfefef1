"""A Hugging Face model card (``README.md``) for every checkpoint ``langsamp pretrain`` finishes.

The card has YAML front matter (``language`` tags: ISO 639-1 where one exists, else ISO 639-3;
``library_name: transformers``; ``pipeline_tag: fill-mask``; ``tags``; the licence is left to the user as a
comment) and a Markdown body: the variant, the corpus languages with their training lines and the chunks trained,
the settings (``run.json``), the loss curve (``loss.png`` beside the card, from ``log.jsonl``) and how to load it.

``langsamp report --model-card DIR RESULTS...`` fills the section between :data:`EVAL_START` and
:data:`EVAL_END` with the evaluation tables of that model; a rerun replaces it, never duplicates it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from langsamp_cli.errors import LangsampError
from langsamp_cli.io_utils import atomic_write_text

CARD_FILE = "README.md"
LOSS_PLOT = "loss.png"
EVAL_START = "<!-- langsamp:evaluation:start -->"
EVAL_END = "<!-- langsamp:evaluation:end -->"
VARIANT_TEXT = {"both": "language and script embeddings", "lang": "language embeddings only",
                "script": "script embeddings only", "vanilla": "no language or script embeddings (plain MLM)"}
LICENSE_COMMENT = ("# license: choose one before publishing (e.g. apache-2.0); the licences of the initial model "
                   "and of the corpus apply")


# ---------------------------------------------------------------------------- language tags
def language_tag(lang: str) -> str:
    """ISO 639-1 where the language has one, else its ISO 639-3 code (``eng`` -> ``en``, ``yue`` -> ``yue``)."""
    import langcodes

    try:
        return langcodes.Language.get(lang).language or lang
    except (LookupError, ValueError):
        return lang


def language_name(lang: str) -> str:
    import langcodes

    try:
        name = langcodes.Language.get(lang).display_name()
    except (LookupError, ValueError, ImportError):
        return lang
    return "" if name.startswith("Unknown language") else name


# ---------------------------------------------------------------------------- reading the run
def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _log_records(path: Path) -> list[dict[str, Any]]:
    records = []
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a kill
        if isinstance(record, dict):
            records.append(record)
    return records


def loss_points(records: list[dict[str, Any]]) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(training (step, loss), held-out (step, eval_loss)) from log.jsonl records."""
    train = [(int(r["step"]), float(r["loss"])) for r in records if "loss" in r and "step" in r]
    heldout = [(int(r["step"]), float(r["eval_loss"])) for r in records if "eval_loss" in r and "step" in r]
    return train, heldout


# ---------------------------------------------------------------------------- the card
def front_matter(lang_scripts: list[str], variant: str, model_type: str | None) -> str:
    languages = list(dict.fromkeys(language_tag(ls.split("_", 1)[0]) for ls in sorted(lang_scripts)))
    tags = ["langsamp", f"langsamp-{variant}", *([model_type] if model_type else []), "masked-lm"]
    if len(languages) > 1:
        tags.append("multilingual")
    data = {"language": languages, "library_name": "transformers", "pipeline_tag": "fill-mask",
            "tags": list(dict.fromkeys(tags))}
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + LICENSE_COMMENT + "\n---\n"


def _table(header: list[str], rows: list[list[Any]], n_text: int = 1) -> str:
    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    align = ["---"] * n_text + ["---:"] * (len(header) - n_text)
    return "\n".join([line(header), "| " + " | ".join(align) + " |", *map(line, rows)]) + "\n"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "-"
    return f"`{value}`" if isinstance(value, str) and value else str(value)


def corpus_section(lang_scripts: list[str], lines: dict[str, int], chunks: dict[str, int]) -> str:
    total = sum(chunks.values())
    rows = [[ls, language_name(ls.split("_", 1)[0]), f"{lines[ls]:,}" if ls in lines else "-",
             f"{chunks.get(ls, 0):,}", f"{chunks.get(ls, 0) / total:.1%}" if total else "-"]
            for ls in lang_scripts]
    return ("## Training corpus\n\n"
            f"{len(lang_scripts)} language-scripts; lines = training lines of the corpus (held-out lines excluded), "
            "chunks = training chunks drawn over the whole run.\n\n"
            + _table(["language-script", "language", "lines", "chunks trained", "share"], rows, 2))


def contamination_section(run: dict[str, Any]) -> str:
    """Whether the corpus was cleaned of test-set text (``run.json``'s record of `contamination --write-clean`)."""
    if not run:
        return ""
    from langsamp_cli.contamination.record import describe_clean_record

    record = run.get("contamination")
    text = (f"The corpus was {describe_clean_record(record)}." if isinstance(record, dict) else
            "The corpus carried no record of a test-set contamination check (`langsamp contamination "
            "--write-clean` writes one); evaluation items may occur in it.")
    return f"## Test-set contamination\n\n{text}\n"


def settings_section(config: dict[str, Any], summary: dict[str, Any]) -> str:
    if not config:
        return "## Settings\n\nNo `run.json` was found beside this checkpoint.\n"
    done = [f"{summary['step']:,} optimiser steps" if summary.get("step") is not None else None,
            f"{summary['tokens_seen']:,} tokens" if summary.get("tokens_seen") is not None else None,
            "stopped early" if summary.get("stopped_early") else None]
    done_text = "; ".join(d for d in done if d)
    rows = [[key, _value(value)] for key, value in config.items()]
    return ("## Settings\n\n" + (f"Trained for {done_text}.\n\n" if done_text else "")
            + "Every setting of the run (`run.json`):\n\n" + _table(["setting", "value"], rows, 2))


def initialised_section(initialised: dict[str, Any]) -> str:
    if not initialised:
        return ""
    rows = []
    for table in ("lang", "script"):
        for key, rule in (initialised.get(table) or {}).items():
            sources = rule.get("from") or []
            shown = ", ".join(sources[:8]) + (f", ... ({len(sources)})" if len(sources) > 8 else "")
            rows.append([table, key, rule.get("method", "-"), shown or "-", rule.get("note", "")])
    return ("## Rows new to the initial model\n\n"
            f"Initialised with `--init-new-languages {initialised.get('method', '?')}` (also in `langsamp.json`):\n\n"
            + _table(["table", "row", "method", "from", "note"], rows, 5))


def vocabulary_section(transfer: dict[str, Any] | None) -> str:
    """How the model was moved to another tokenizer (``pretrain --tokenizer`` when continuing), if it was."""
    if not transfer:
        return ""
    made = ", ".join(f"{count:,} by `{method}`" for method, count in (transfer.get("initialised_rows") or {}).items())
    layout = ("a strict extension: every kept row at its old id" if transfer.get("strict_extension")
              else "rows matched by piece; some moved to new ids")
    return ("## Vocabulary\n\n"
            f"Continued with the tokenizer `{transfer.get('tokenizer', '?')}`: "
            f"{transfer.get('old_vocab_size', 0):,} -> {transfer.get('new_vocab_size', 0):,} pieces, "
            f"{transfer.get('kept_rows', 0):,} trained rows kept ({layout}); the new rows were initialised with "
            f"`--init-new-tokens {transfer.get('init_new_tokens', '?')}` ({made or 'none'}). Every new row and "
            "its sources: `vocab_transfer.tsv` in the run folder.\n")


def loading_section(model_ref: str) -> str:
    return f"""## How to load

With `transformers` (the backbone and its MLM head; the language/script tables are not part of it):

```python
from transformers import AutoModelForMaskedLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{model_ref}")
model = AutoModelForMaskedLM.from_pretrained("{model_ref}")
```

With `langsamp` (the LangSAMP model with its language and script embedding tables):

```python
from langsamp_cli.embedding_tables import load_embedding_tables
from langsamp_cli.model import load_checkpoint

# LangSAMPForMaskedLM: the backbone, the tables and their lang2id/script2id maps
model = load_checkpoint("{model_ref}")
# only the tables (numpy arrays) and the id maps
tables = load_embedding_tables("{model_ref}")
```

or on the command line, e.g. `langsamp eval sr-t --model {model_ref} ...` and `langsamp donor --model {model_ref} ...`.
"""


def placeholder_evaluation(model_ref: str) -> str:
    return (f"{EVAL_START}\n## Evaluation\n\nNot evaluated yet: run `langsamp eval ...` on this model, then "
            f"`langsamp report RESULTS_DIR --model-card {model_ref}` to add the tables here.\n{EVAL_END}\n")


def build_card(checkpoint_dir: Path, run_dir: Path | None = None, corpus_lines: dict[str, int] | None = None,
               summary: dict[str, Any] | None = None, model_ref: str | None = None,
               loss_plot: bool = False) -> str:
    """The card's text for ``checkpoint_dir`` (its langsamp.json/config.json) of the run in ``run_dir``."""
    meta = _read_json(checkpoint_dir / "langsamp.json")
    model_config = _read_json(checkpoint_dir / "config.json")
    run = _read_json(run_dir / "run.json") if run_dir else {}
    records = _log_records(run_dir / "log.jsonl") if run_dir else []
    chunks = next((r["chunks_per_language"] for r in reversed(records)
                   if isinstance(r.get("chunks_per_language"), dict)), {})
    lines = dict(corpus_lines or {})
    lang_scripts = sorted(set(lines) | set(chunks)) or sorted(meta.get("lang2id") or {})
    variant = meta.get("variant", "vanilla")
    config = run.get("config") or {}
    model_ref = model_ref or str(checkpoint_dir)
    title = "/".join(part for part in (Path(model_ref).parent.name, Path(model_ref).name) if part)
    intro = (f"# LangSAMP model `{title}`\n\nA masked language model pretrained with `langsamp pretrain` "
             f"(variant **{variant}**: {VARIANT_TEXT.get(variant, variant)}), "
             + (f"from `{config['model']}`{' (random initialisation)' if config.get('from_scratch') else ''}, "
                if config.get("model") else "")
             + f"on {len(lang_scripts)} language-scripts. Its tables hold "
             f"{len(meta.get('lang2id') or {})} languages and {len(meta.get('script2id') or {})} scripts.\n")
    curve = ("## Loss curve\n\n![MLM loss against optimiser step](loss.png)\n" if loss_plot
             else "## Loss curve\n\nNo loss was logged for this checkpoint.\n")
    parts = [front_matter(lang_scripts, variant, model_config.get("model_type")), intro,
             corpus_section(lang_scripts, lines, chunks) if lang_scripts else "", contamination_section(run),
             settings_section(config, summary or {}), curve, initialised_section(meta.get("initialised_rows") or {}),
             vocabulary_section(meta.get("vocab_transfer")),
             loading_section(model_ref), placeholder_evaluation(model_ref)]
    return "\n".join(part for part in parts if part)


def write_model_card(checkpoint_dir: str | Path, run_dir: str | Path | None = None,
                     corpus_lines: dict[str, int] | None = None, summary: dict[str, Any] | None = None,
                     model_ref: str | None = None) -> Path:
    """Write ``README.md`` (and ``loss.png`` when the run logged a loss) into ``checkpoint_dir``."""
    from langsamp_cli.plots import plot_loss_curve

    checkpoint_dir = Path(checkpoint_dir)
    run_dir = Path(run_dir) if run_dir else None
    train, heldout = loss_points(_log_records(run_dir / "log.jsonl")) if run_dir else ([], [])
    if train or heldout:
        plot_loss_curve(train, heldout, checkpoint_dir / Path(LOSS_PLOT).stem)
    text = build_card(checkpoint_dir, run_dir, corpus_lines, summary, model_ref, loss_plot=bool(train or heldout))
    return atomic_write_text(checkpoint_dir / CARD_FILE, text)


# ---------------------------------------------------------------------------- parsing and evaluation tables
def split_card(text: str) -> tuple[dict[str, Any], str]:
    """(front matter as a dict, Markdown body); a LangsampError when the front matter is missing or broken."""
    match = re.match(r"\A---\n(.*?\n)---\n(.*)\Z", text, flags=re.DOTALL)
    if not match:
        raise LangsampError("model card: no YAML front matter between '---' lines at the top")
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        raise LangsampError(f"model card: unreadable YAML front matter ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise LangsampError("model card: the front matter is not a mapping")
    return data, match.group(2)


def replace_evaluation(text: str, section: str) -> str:
    """``text`` with the marked evaluation section replaced by ``section`` (appended when there is none)."""
    block = f"{EVAL_START}\n{section.rstrip()}\n{EVAL_END}\n"
    pattern = re.compile(re.escape(EVAL_START) + r".*?" + re.escape(EVAL_END) + r"\n?", flags=re.DOTALL)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + "\n\n" + block


def _same_model(results: dict[str, Any], card_dir: Path, fingerprint: Any) -> bool:
    model = results.get("model")
    if isinstance(model, str) and Path(model).expanduser().resolve() == card_dir.resolve():
        return True
    saved = (results.get("provenance") or {}).get("model_fingerprint")
    return bool(saved) and saved == fingerprint()


def results_of_model(result_dirs: list[Path], card_dir: Path) -> list[Path]:
    """The results.json files under ``result_dirs`` made with the model in ``card_dir`` (path or fingerprint)."""
    from functools import lru_cache

    from langsamp_cli.model import model_fingerprint
    from langsamp_cli.report import find_results
    from langsamp_cli.results import load_results

    fingerprint = lru_cache(maxsize=1)(lambda: model_fingerprint(card_dir))
    return [path for path in find_results(result_dirs) if _same_model(load_results(path), card_dir, fingerprint)]


def evaluation_section(report: Any, sources: list[Path]) -> str:
    from langsamp_cli.report import markdown_table, side_by_side, table1_markdown, task_label

    metrics = report.groups.drop_duplicates("task")[["task", "metric", "n_seeds"]]
    described = "; ".join(f"{task_label(t)}: {m}" for t, m, _ in metrics.itertuples(index=False))
    seeds = int(report.groups.n_seeds.max())
    lang_header, lang_rows = side_by_side(report.languages, ["task", "lang_script", "head_tail", "script_group"])
    parts = ["## Evaluation", "",
             f"Scores x{report.scale:g} ({described}), mean (std) over {seeds} seed(s); written by "
             f"`langsamp report --model-card` from {len(sources)} results file(s).", "",
             "### By language group", "", table1_markdown(report),
             "### Per language", "", markdown_table(lang_header, lang_rows, 4)]
    if report.notes:
        parts += ["Notes:", "", *(f"- {note}" for note in report.notes), ""]
    return "\n".join(parts)


def add_evaluation(card_dir: str | Path, result_dirs: list[Path], metric: str | None = None, scale: float = 100.0,
                   allow_mixed: bool = False) -> Path:
    """Put the evaluation tables of the model in ``card_dir`` into its README.md (built first when missing)."""
    from langsamp_cli.report import build_report

    card_dir = Path(card_dir)
    if not (card_dir / "config.json").is_file():
        raise LangsampError(f"--model-card {card_dir}: not a model directory (no config.json); pass the checkpoint "
                            "folder, e.g. runs/pretrain-demo/final")
    sources = results_of_model(result_dirs, card_dir)
    if not sources:
        raise LangsampError(f"--model-card {card_dir}: none of the results under {', '.join(map(str, result_dirs))} "
                            "was made with this model; pass the results folders of its `langsamp eval` runs")
    report = build_report(sources, metric=metric, scale=scale, allow_mixed=allow_mixed)
    card = card_dir / CARD_FILE
    if card.is_file():
        text = card.read_text(encoding="utf-8")
    else:
        run_dir = card_dir.parent if (card_dir.parent / "run.json").is_file() else None
        text = build_card(card_dir, run_dir, loss_plot=(card_dir / LOSS_PLOT).is_file())
    return atomic_write_text(card, replace_evaluation(text, evaluation_section(report, sources)))
