"""`langsamp eval <task>`: one command per registered task, its flags generated from the task's settings.

The flags are the fields of the task type's settings class (``tasks/task_settings.py``); the help shows
the task YAML's values as defaults and its ``description`` as the command's text. The command only
turns flags into a settings mapping, calls the library (``run_retrieval_task`` / ``run_transfer``) and
prints; a new task is a YAML, a reader and a registry entry, never a new function here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from langsamp_cli.settings import field_names, make_command, typer_parameters
from langsamp_cli.tasks import registry
from langsamp_cli.tasks.registry import TaskSpec
from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE


# marked like a required click option; a --config YAML may set it instead (the library says so when neither does)
_REQUIRED = {"model": "required"}
# the shared field's text speaks of fine-tuning, which retrieval does not do
_RETRIEVAL_HELP = {"source_lang": "The query side: every target language is searched with these sentences "
                                  "(English in SR-B and SR-T); nothing is fine-tuned."}


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    for spec in registry.all_tasks():
        eval_app.command(spec.name)(eval_command(spec))


def eval_command(spec: TaskSpec):
    """The `langsamp eval <spec.name>` function (Typer reads its generated signature)."""
    schema = SETTINGS_BY_TYPE[spec.type]
    shipped = _shipped_config(spec.name)
    parameters = typer_parameters(schema, spec.inputs, defaults=shipped, notes=_REQUIRED,
                                  helps=_RETRIEVAL_HELP if spec.type == "retrieval" else None)
    run_only = set(field_names(schema, run_only=True))
    doc = str(shipped.get("description") or f"{spec.label} ({spec.type}).").strip()

    def body(values: dict[str, Any]) -> None:
        from langsamp_cli.output_checks import check_output_dir

        if values.get("output_dir") is not None:  # the YAML's default is checked by the results store
            check_output_dir(values["output_dir"])
        flags = {k: v for k, v in values.items() if k not in run_only}
        options = {k: v for k, v in values.items() if k in run_only}
        (_run_retrieval if spec.type == "retrieval" else _run_transfer)(spec.name, flags, options)

    return make_command(spec.name, doc, parameters, body)


def _shipped_config(task: str) -> dict[str, Any]:
    """The task's YAML values for the help text; a broken user task folder must not break every command."""
    from langsamp_cli.errors import LangsampError
    from langsamp_cli.task_config import load_task_config

    try:
        return load_task_config(task)
    except LangsampError:
        return {}


def _run_transfer(task: str, flags: dict[str, Any], options: dict[str, Any]) -> None:
    from langsamp_cli.results import print_results
    from langsamp_cli.tasks.transfer_run import run_transfer

    console = Console(stderr=True, emoji=False)
    config = options.get("config")
    result = run_transfer(task, flags, config=Path(config) if config else None, overwrite=bool(options["overwrite"]),
                          shard=options.get("shard"), console=console)
    console.print(result.describe(), highlight=False)
    for results in result.results:
        print_results(results)


def _run_retrieval(task: str, flags: dict[str, Any], options: dict[str, Any]) -> None:
    from langsamp_cli.results import print_results
    from langsamp_cli.tasks.retrieval_run import run_retrieval_task

    console = Console(stderr=True, emoji=False)
    config, cache_dir = options.get("config"), options.get("cache_dir")
    result = run_retrieval_task(task, flags, config=Path(config) if config else None,
                                no_cache=bool(options["no_cache"]), cache_dir=Path(cache_dir) if cache_dir else None,
                                overwrite=bool(options["overwrite"]), shard=options.get("shard"), console=console)
    if not result.layers:
        console.print(result.describe(), highlight=False)
        print_results(result.results[0])
        return
    out = Console()
    out.print(f"{result.task}: {result.metric} (mean over scored languages) by layer", highlight=False)
    for layer in result.layers:
        mean = "-" if layer.mean is None else f"{100 * layer.mean:.1f}"
        mean += "" if layer.floor is None or layer.mean is None else f" (chance {100 * layer.floor:.1f})"
        out.print(f"  layer {layer.layer:>2}: {mean}  ({layer.n_languages} languages)  {layer.run_dir}",
                  highlight=False, soft_wrap=True)
    console.print(result.describe(), highlight=False)
