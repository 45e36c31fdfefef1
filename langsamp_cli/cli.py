"""Typer app: parses flags and hands over to one function per command; no logic lives here.

Every module in ``langsamp_cli.commands`` exposes ``register(app, eval_app)`` and is picked up
automatically, so adding a command never touches this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer
from rich.markup import escape
from rich.console import Console

from langsamp_cli import __version__, commands
from langsamp_cli.errors import LangsampError

app = typer.Typer(
    name="langsamp",
    help="LangSAMP: language-script aware multilingual pretraining, evaluation and analysis.",
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)
eval_app = typer.Typer(
    help="Zero-shot crosslingual evaluation of any encoder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(eval_app, name="eval")

_err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"langsamp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """LangSAMP toolkit."""


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(app, eval_app)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one red line and exit code 2."""
    try:
        app(args=argv, standalone_mode=True)
    except LangsampError as err:
        _err.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        _err.print("[yellow]interrupted[/]: finished units and the last checkpoint are kept; rerun to resume")
        sys.exit(130)


if __name__ == "__main__":
    main()
