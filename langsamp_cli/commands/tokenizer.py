"""`langsamp tokenizer extend`: a base tokenizer plus the pieces a corpus needs (flags -> tokenizer_extend)."""

from __future__ import annotations

import typer
from rich import box
from rich.console import Console
from rich.table import Table


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    tokenizer_app = typer.Typer(help="Tokenizers for continued pretraining.", no_args_is_help=True,
                                pretty_exceptions_enable=False, rich_markup_mode=None)
    tokenizer_app.command("extend")(extend_command())
    app.add_typer(tokenizer_app, name="tokenizer")


def extend_command():
    import dataclasses

    from langsamp_cli.settings import make_command, typer_parameters
    from langsamp_cli.tokenizer_extend import ExtendSettings

    defaults = {f.name: f.default for f in dataclasses.fields(ExtendSettings) if f.default is not None}
    return make_command("extend", "Extend a SentencePiece Unigram tokenizer with pieces learned on a corpus (as "
                        "Glot500 extended XLM-R's): the base's ids are kept, new pieces are appended; prints the "
                        "fertility and <unk> rate of both per language.",
                        typer_parameters(ExtendSettings, defaults=defaults), _extend)


def _extend(values: dict) -> None:
    from langsamp_cli.languages import parse_language_list
    from langsamp_cli.model_source import resolve_model
    from langsamp_cli.settings import from_flags
    from langsamp_cli.tokenizer_extend import ExtendSettings, extend_tokenizer

    if values.get("languages") is not None:
        values["languages"] = parse_language_list(values["languages"])
    settings = from_flags(ExtendSettings, values).check()
    settings.base = resolve_model(settings.base, flag="--base", needs_config=False)
    err = Console(stderr=True, emoji=False)
    result = extend_tokenizer(settings, say=lambda text: err.print(text, highlight=False, markup=False))
    from langsamp_cli.progress import print_table

    out = Console()
    print_table(fertility_table(result), out)
    per_script = ", ".join(f"{script} {count:,}" for script, count in result.new_per_script.items()) or "none"
    out.print(f"new pieces per script: {per_script}", highlight=False, soft_wrap=True)
    short = f" (asked for {result.asked:,}; the corpus gave no more)" if result.added < result.asked else ""
    out.print(f"wrote {result.output_dir}: {result.size:,} pieces = {result.base_size:,} of the base (same ids) + "
              f"{result.added:,} new{short}", highlight=False, soft_wrap=True)
    out.print(f"next: langsamp pretrain --model MODEL --tokenizer {result.output_dir} --init-new-tokens subword "
              "--corpus CORPUS", highlight=False, soft_wrap=True)


def fertility_table(result) -> Table:
    table = Table(title="held-out lines: tokens per word and <unk> rate, worst-covered first (an <unk> run counts "
                  "as one token)", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("language", "lines", "words", "base tok/word", "extended", "change", "base <unk>", "extended <unk>"):
        table.add_column(name, justify="left" if name == "language" else "right", no_wrap=True)
    for row in result.fertility:
        change = row.extended_fertility / row.base_fertility - 1 if row.base_fertility else 0.0
        table.add_row(row.lang_script, f"{row.lines:,}", f"{row.words:,}", f"{row.base_fertility:.2f}",
                      f"{row.extended_fertility:.2f}", f"{change:+.0%}", f"{row.base_unk_rate:.1%}",
                      f"{row.extended_unk_rate:.1%}")
    return table
