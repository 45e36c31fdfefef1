"""Typer app: parses flags and hands over to one function per command; no logic lives here.

Every module in ``langsamp_cli.commands`` exposes ``register(app, eval_app)`` and is picked up
automatically, so adding a command never touches this file.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import re
import sys
import traceback

import click
import typer
from rich.console import Console
from rich.text import Text

from langsamp_cli import __version__, commands
from langsamp_cli.errors import LangsampError
from langsamp_cli.logs import LOGGER_NAME

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
    no_args_is_help=False,  # its callback prints the help with exit status 0
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


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors from the library's log."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also the library's debug messages."),
) -> None:
    """LangSAMP toolkit."""
    from langsamp_cli.logs import setup_logging

    _help_without_a_command(ctx)
    if quiet and verbose:
        raise LangsampError("--quiet and --verbose: choose one")
    setup_logging("quiet" if quiet else "verbose" if verbose else "normal")


@eval_app.callback(invoke_without_command=True)
def _eval_root(ctx: typer.Context) -> None:
    _help_without_a_command(ctx)


def _help_without_a_command(ctx: typer.Context) -> None:
    """Bare `langsamp` (or `langsamp eval`) shows the help and succeeds, rather than 'Error: Missing command.'"""
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        print(ctx.get_help())
        raise typer.Exit(0)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app, eval_app)


_register_commands()

# Metavars by option name where the type alone says too little (typer would print <str>).
NAMED_METAVARS = {"model": "MODEL", "compare": "MODEL", "tokenizer": "TOKENIZER", "languages": "LANGS",
                  "candidates": "LANGS", "label": "LANGS", "target": "LANG", "source_lang": "LANG",
                  "shard": "I/N", "seeds": "SEEDS", "device": "DEVICE", "evaluate": "TASK", "eval_option": "KEY=VALUE",
                  "layers": "all|K,K,...", "layer_groups": "GROUPS",
                  "mixed_precision": "auto|no|bf16|fp16"}


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
        _one_default_style(param)
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
        if sub.help and not sub.short_help:
            sub.short_help = _first_sentence(sub.help)  # click would cut it at 45 characters with '...'
    return command


def _one_default_style(option) -> None:
    """Click's "  [default: x; required]" as "(default: x) (required)", the style of the generated settings' help.

    A two-name boolean's default names the flag in effect (``--include-special-tokens``), never on/off.
    """
    record = option.get_help_record

    def help_record(ctx):
        found = record(ctx)
        if found is None:
            return None
        names, text = found
        match = re.search(r"\s*\[([^\[\]]*)\]$", text)
        if not match:
            return names, text
        parts = []
        for part in match.group(1).split("; "):
            key, _, value = part.partition(": ")
            if key == "default" and getattr(option, "is_bool_flag", False) and option.secondary_opts \
                    and not value.startswith("-"):
                value = "--" + value
            parts.append(f"({key}: {value})" if value else f"({key})")
        return names, (text[:match.start()] + " " + " ".join(parts)).strip()

    option.get_help_record = help_record


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


class Interrupted(Exception):
    """Ctrl-C inside a command; typer would turn the KeyboardInterrupt into a silent exit 130."""


def _catching_interrupts(command: click.Command) -> click.Command:
    invoke = command.invoke

    def guarded(ctx: click.Context) -> object:
        try:
            return invoke(ctx)
        except KeyboardInterrupt as err:
            raise Interrupted() from err

    command.invoke = guarded
    return command


def _one_line(message: str) -> None:
    _err.print(Text("error: ", style="bold red") + Text(" ".join(message.splitlines())), highlight=False,
               soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors and failures of the machine or of a file become one red line and exit
    code 2 (the traceback of the latter with --verbose); Ctrl-C says how to continue."""
    from langsamp_cli.failures import describe_failure
    from langsamp_cli.progress import widen_for_logs
    from langsamp_cli.threads import set_thread_environment

    try:
        set_thread_environment()  # CPU threads that degrade gracefully on a busy machine (threads.py)
        with widen_for_logs():  # not on a terminal: no 80-column hard wraps in logs
            command = _catching_interrupts(readable_metavars(typer.main.get_command(app)))
            command(args=argv, standalone_mode=True)
    except LangsampError as err:
        _one_line(str(err))
        sys.exit(2)
    except (KeyboardInterrupt, Interrupted):
        _err.print("[yellow]interrupted[/]: finished units and the last checkpoint are kept; rerun to resume")
        sys.exit(130)
    except Exception as err:  # noqa: BLE001 - the last resort: known failures as one line, bugs as they are
        message = describe_failure(err)
        if message is None:
            raise
        verbose = logging.getLogger(LOGGER_NAME).isEnabledFor(logging.DEBUG)
        if verbose:
            traceback.print_exc()
        _one_line(message + ("" if verbose else " (langsamp --verbose ... shows the traceback)"))
        sys.exit(2)


if __name__ == "__main__":
    main()
