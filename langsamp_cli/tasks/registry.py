"""The one list of built-in tasks: name -> :class:`TaskSpec`.

Eval commands, the transfer runner, the report, experiments and the donor study read their task
names, labels, order and headline metrics from here. Adding a dataset is a YAML under
``task_configs/``, a reader under ``data/`` and one entry below. A task defined by a YAML alone
(``--config`` with ``task: my-task``) is not listed: it is reported under its own name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from langsamp_cli.errors import LangsampError
from langsamp_cli.tasks.all_pairs import run_all_pairs
from langsamp_cli.tasks.retrieval import plan_sr_b, plan_sr_t
from langsamp_cli.tasks.task_settings import TaskType
from langsamp_cli.tasks.transfer_inputs import ner_data, pos_data, sib200_data, taxi1500_data


@dataclass(frozen=True)
class TaskSpec:
    name: str                 # the CLI command (`langsamp eval <name>`) and the task_configs/<name>.yaml stem
    type: TaskType            # picks the runner: retrieval, or transfer with a classification/tagging head
    label: str                # the column/row label in reports
    data: Callable[..., Any] | None = None  # builds the data from the typed settings: the TransferData (transfer
    #                           tasks, f(task, settings, console)) or the retrieval plan (f(settings, flags))
    inputs: tuple[str, ...] = ()  # optional data inputs this task's command takes (settings fields such as
    #                               bible, bible_dir, train_file); their flags appear only on its command
    files: Callable[[Path], dict] | None = None  # transfer: data folder -> language -> split -> file
    runner: Callable[..., object] | None = None  # retrieval: runs the task itself from its typed settings
    #   (f(settings, scoring, **run options) -> RetrievalRunResult); None: the English-centric runner over `data`
    # Every other setting (metric, labels, lr, ...) lives in task_configs/<name>.yaml, not here.

    @property
    def is_transfer(self) -> bool:
        return self.type != "retrieval"


def _ner_files(folder: Path) -> dict:
    from langsamp_cli.data.conll import discover_tagging

    return discover_tagging(folder, extensions=("iob2",)).files


def _pos_files(folder: Path) -> dict:
    from langsamp_cli.data.conllu import discover_treebanks

    return discover_treebanks(folder).files


def _sib200_files(folder: Path) -> dict:
    from langsamp_cli.data.sib200 import discover_sib200

    return discover_sib200(folder)[0]


def _taxi1500_files(folder: Path) -> dict:
    from langsamp_cli.data.taxi1500 import discover_taxi1500

    return discover_taxi1500(folder)[0]


_BIBLES = ("bible", "bible_dir")
_TASKS = (  # in report order
    TaskSpec("sr-b", "retrieval", "SR-B", plan_sr_b, inputs=(*_BIBLES, "english_bible")),
    TaskSpec("sr-t", "retrieval", "SR-T", plan_sr_t),
    TaskSpec("sr-pairs", "retrieval", "SR-pairs", inputs=("pivots", "split", "store_dtype"), runner=run_all_pairs),
    TaskSpec("taxi1500", "classification", "Taxi1500", taxi1500_data, _BIBLES, _taxi1500_files),
    TaskSpec("sib200", "classification", "SIB200", sib200_data, files=_sib200_files),
    TaskSpec("ner", "tagging", "NER", ner_data, ("train_file", "dev_file"), _ner_files),
    TaskSpec("pos", "tagging", "POS", pos_data, ("train_file", "dev_file", "ud_preparation"), _pos_files),
)
REGISTRY: Mapping[str, TaskSpec] = MappingProxyType({spec.name: spec for spec in _TASKS})
SAMPLE_TASK = "sr-t"  # the task of the bundled sample data (langsamp_cli/samples/<name>)


def all_tasks() -> Iterator[TaskSpec]:
    """Every built-in task, in report order."""
    return iter(_TASKS)


def names() -> list[str]:
    return [spec.name for spec in _TASKS]


def transfer_names() -> list[str]:
    return [spec.name for spec in _TASKS if spec.is_transfer]


def retrieval_names() -> list[str]:
    return [spec.name for spec in _TASKS if not spec.is_transfer]


def get(name: str) -> TaskSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise LangsampError(f"{name}: unknown task; use one of {', '.join(names())}") from None


def label(name: str) -> str:
    """The report label of ``name`` (a task defined by a YAML alone keeps its own name)."""
    spec = REGISTRY.get(name)
    return spec.label if spec else name


def train_languages(name: str, folder: Path) -> dict[str, dict[str, Path]]:
    """language -> split -> file of a transfer task's data folder (the donor study's source candidates)."""
    spec = get(name)
    if spec.files is None:
        raise LangsampError(f"--candidates task:{name}: not a transfer task; use "
                            f"{', '.join('task:' + n for n in transfer_names())}")
    return spec.files(folder)
