"""Typer app: parses flags and hands over to one function per command; no logic lives here.

Every module in ``langsamp_cli.commands`` exposes ``register(app, eval_app)`` and is picked up
automatically, so adding a command never touches this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.console import Console
from rich.text import Text

from langsamp_cli import __version__, commands
from langsamp_cli.errors import LangsampError

app = typer.Typer(
    name="langsamp",
    help="LangSAMP: language-script aware multilingual pretraining, evaluation and analysis.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: wraps paragraphs, never cuts option names with "…" at 80 columns
)
eval_app = typer.Typer(
    help="Zero-shot crosslingual evaluation of any encoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.add_typer(eval_app, name="eval")

# Messages echo user text (paths, values): no emoji codes (':x:') and no markup ('[red]') may be interpreted in it.
_err = Console(stderr=True, emoji=False)


def _version(value: bool) -> None:
    if value:
        print(f"langsamp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors from the library's log."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also the library's debug messages."),
) -> None:
    """LangSAMP toolkit."""
    from langsamp_cli.logs import setup_logging

    if quiet and verbose:
        raise LangsampError("--quiet and --verbose: choose one")
    setup_logging("quiet" if quiet else "verbose" if verbose else "normal")


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app, eval_app)


_register_commands()

# Metavars by option name where the type alone says too little (typer would print <str>).
NAMED_METAVARS = {"model": "MODEL", "compare": "MODEL", "tokenizer": "TOKENIZER", "languages": "LANGS",
                  "candidates": "LANGS", "label": "LANGS", "target": "LANG", "source_lang": "LANG",
                  "shard": "I/N", "seeds": "SEEDS", "device": "DEVICE", "evaluate": "TASK", "eval_option": "KEY=VALUE",
                  "layers": "all|K,K,...", "layer_groups": "GROUPS"}


def readable_metavars(command) -> object:
    """README-style metavars (``--data-dir DIR``, ``--max-length N``, ``RESULT_DIR...``) on every command.

    Typer would print ``<str>``, ``<list[Path]>`` and ``{result_dirs}...``.
    """
    for param in command.params:
        if param.param_type_name == "argument":
            name = param.name.upper().removesuffix("S") if param.nargs == -1 else param.name.upper()
            param.metavar = name + ("..." if param.nargs == -1 else "")
            param._usage_display_name = lambda metavar=param.metavar: metavar  # no {braces} in the usage line
            param.display_type_rich = lambda ctx: None  # the metavar says it all; no second type column
        elif param.param_type_name == "option" and not (param.is_flag or param.count):
            param.metavar = _option_metavar(param)
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
        if sub.help and not sub.short_help:
            sub.short_help = _first_sentence(sub.help)  # click would cut it at 45 characters with '...'
    return command


def _first_sentence(text: str) -> str:
    first = " ".join(text.strip().split("\n\n")[0].split())
    return first.split(". ")[0].rstrip(".")


def _option_metavar(option) -> str:
    name = option.name or ""
    if option.metavar:  # chosen where the option is declared (e.g. the choices of a typed setting)
        return option.metavar
    if name in NAMED_METAVARS:
        return NAMED_METAVARS[name]
    if option.type_descriptor.is_choice:
        return "|".join(map(str, option.type_descriptor.choices or ()))
    kind = option.bare_type().removeprefix("list[").removesuffix("]")
    if kind == "int":
        return "N"
    if kind == "float":
        return "NUMBER"
    if kind == "Path":
        return "DIR" if name.endswith("_dir") else "PATH"
    return name.upper()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one red line and exit code 2."""
    from langsamp_cli.progress import widen_for_logs

    try:
        with widen_for_logs():  # not on a terminal: no 80-column hard wraps in logs
            readable_metavars(typer.main.get_command(app))(args=argv, standalone_mode=True)
    except LangsampError as err:
        _err.print(Text("error: ", style="bold red") + Text(" ".join(str(err).splitlines())), highlight=False,
                   soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: finished units and the last checkpoint are kept; rerun to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
