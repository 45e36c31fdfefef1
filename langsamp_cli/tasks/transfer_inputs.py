"""Input assembly for the transfer tasks: discover each dataset's files and build a TransferData plan.

Readers (``data/taxi1500.py``, ``data/sib200.py``, ``data/conll.py``, ``data/conllu.py``) parse one
file each; this module picks the files of a ``--data-dir``, joins Taxi1500's official English test
labels onto other Bibles, and reports every file it could not use (``not used name: why``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from langsamp_cli.errors import LangsampError

if TYPE_CHECKING:
    from langsamp_cli.tasks.task_settings import ClassificationSettings, TaggingSettings, TransferSettings
    from langsamp_cli.tasks.transfer import TransferData


def build_transfer_data(task: str, settings: TransferSettings, console: Console,
                        bibles: list[Path] | None = None, bible_dir: Path | None = None) -> TransferData:
    """The task's TransferData from ``settings`` (data_dir, source_lang, train_file/dev_file, labels...)."""
    from langsamp_cli.tasks import registry

    spec = registry.get(task)
    if not spec.is_transfer:
        raise LangsampError(f"{task}: not a transfer task; use one of {', '.join(registry.transfer_names())}")
    if "bible" in spec.inputs:
        return spec.data(task, settings, console, bibles, bible_dir)
    if bibles or bible_dir:
        raise LangsampError(f"--bible/--bible-dir: only Taxi1500 takes Bible targets, not {task}")
    return spec.data(task, settings, console)


def taxi1500_data(task: str, settings: ClassificationSettings, console: Console, bibles: list[Path] | None = None,
                  bible_dir: Path | None = None) -> TransferData:
    from langsamp_cli.data.taxi1500 import discover_taxi1500, read_taxi1500_tsv
    from langsamp_cli.tasks.transfer import add_bible_targets, plan_from_files

    data_dir = _data_dir(settings)
    files, problems = discover_taxi1500(data_dir)
    print_problems(problems, console)
    data = plan_from_files(task, files, read_taxi1500_tsv, settings.source_lang, str(data_dir))
    from_folder, named = bible_dir_files(bible_dir, console), named_bibles(bibles)
    if from_folder or named:
        official = files.get("eng_Latn", {}).get("test")
        if official is None:
            raise LangsampError(f"{data_dir}: Bible targets need the official eng_test.tsv (its verse ids and labels)")
        add_bible_targets(data, from_folder, official, replace=False, console=console)
        add_bible_targets(data, named, official, replace=True, console=console)
    return data


def bible_dir_files(bible_dir: Path | None, console: Console) -> dict[str, Path]:
    from langsamp_cli.data.bible import discover_bibles

    if bible_dir is None:
        return {}
    if not Path(bible_dir).is_dir():
        raise LangsampError(f"--bible-dir {bible_dir} is not a directory")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # other editions are printed below
        collection = discover_bibles(bible_dir)
    print_problems(collection.problems, console)
    for lang, extra in collection.other_editions.items():
        print_problems({p.name: f"{lang} already comes from {collection.files[lang].name}" for p in extra}, console)
    return dict(collection.files)


def named_bibles(bibles: list[Path] | None) -> dict[str, Path]:
    from langsamp_cli.data.bible import bible_language

    found: dict[str, Path] = {}
    for path in bibles or []:
        if not Path(path).is_file():
            raise LangsampError(f"--bible {path}: file not found")
        found[bible_language(path)] = Path(path)
    return found


def sib200_data(task: str, settings: ClassificationSettings, console: Console) -> TransferData:
    from langsamp_cli.data.sib200 import discover_sib200, read_labels_file, read_sib200_tsv
    from langsamp_cli.tasks.transfer import plan_from_files

    data_dir = _data_dir(settings)
    files, problems = discover_sib200(data_dir)
    print_problems(problems, console)

    def read(path: Path):
        return read_sib200_tsv(path, read_labels_file(path.parent))

    return plan_from_files(task, files, read, settings.source_lang, str(data_dir))


def ner_data(task: str, settings: TaggingSettings, console: Console) -> TransferData:
    from langsamp_cli.data.conll import discover_tagging, normalize_ner, read_tagged_file
    from langsamp_cli.tasks.transfer import plan_from_files

    if settings.ud_preparation is not None:
        raise LangsampError(f"ud_preparation: {settings.ud_preparation}: only POS reads UD treebanks; remove the "
                            f"key from the {task} config")
    data_dir = _data_dir(settings)
    found = discover_tagging(data_dir, extensions=("iob2",))
    print_problems(found.problems, console)
    entity_types = list(settings.entity_types)

    def read(path: Path):
        return normalize_ner(read_tagged_file(path), entity_types)

    return plan_from_files(task, found.files, read, settings.source_lang, str(data_dir),
                           settings.train_file, settings.dev_file)


def pos_data(task: str, settings: TaggingSettings, console: Console) -> TransferData:
    """UD treebanks prepared as ``ud_preparation`` says (glot500: every treebank of a language, one after
    the other; syntactic: the first). The preparation is a recorded setting, so it is in every unit."""
    from langsamp_cli.data.conllu import discover_treebanks, read_pos_files
    from langsamp_cli.tasks.transfer import plan_from_files

    preparation = settings.ud_preparation or "glot500"
    data_dir = _data_dir(settings)
    found = discover_treebanks(data_dir, combine=preparation == "glot500")
    print_problems(found.problems, console)
    if preparation == "syntactic":
        _check_conllu_only(found.files, settings)
    groups = {found.files[lang][split]: found.split_files(lang, split)
              for lang, splits in found.files.items() for split in splits}

    def read(path: Path):
        return read_pos_files(groups.get(Path(path), [Path(path)]), preparation)

    data = plan_from_files(task, found.files, read, settings.source_lang, str(data_dir),
                           settings.train_file, settings.dev_file)
    data.source_files = [str(p) for path in data.source_files for p in groups.get(Path(path), [Path(path)])]
    return data


def _check_conllu_only(files: dict[str, dict[str, Path]], settings: TaggingSettings) -> None:
    """--ud-preparation syntactic acts on CoNLL-U only; an already prepared word<TAB>tag file cannot honour it."""
    given = [Path(name) for name in (settings.train_file, settings.dev_file) if name]
    for path in [*given, *(p for splits in files.values() for p in splits.values())]:
        if path.suffix.lower() != ".conllu":
            raise LangsampError(f"--ud-preparation syntactic: {path} is not a CoNLL-U treebank (.conllu) but an "
                                "already prepared word<TAB>tag file; use --ud-preparation glot500 or .conllu files")


def _data_dir(settings: TransferSettings) -> Path:
    from langsamp_cli.data.parallel import check_data_dir

    return check_data_dir(settings.data_dir)


def print_problems(problems: dict[str, str], console: Console) -> None:
    for name, reason in problems.items():
        console.print(f"[yellow]not used[/] {escape(f'{name}: {reason}')}", highlight=False, soft_wrap=True, emoji=False)
