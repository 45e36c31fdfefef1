"""The evaluated test items of a task, read with the task's own registered reader (a new task needs no code here).

``--against TASK=PATH``: PATH is what ``langsamp eval TASK --data-dir`` takes. What is checked per task type:

- retrieval (SR-T, SR-B): the sentences of every pair the task scores (its ``pairs`` cap applied), target side
  under its language and the English side under ``eng_Latn``; SR-B also takes a folder of whole Bibles (verse-id
  TSV / CES XML) holding one English Bible, paired as ``eval sr-b --bible-dir --english-bible`` pairs them.
- transfer (Taxi1500, SIB-200, NER, POS): the ``test`` split of every language (the split zero-shot transfer is
  scored on); tagged sentences are their tokens joined by spaces (spaces do not count when matching).

Verses (SR-B, Taxi1500) are items one by one, each with its verse id.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from langsamp_cli.contamination.index import TestItem
from langsamp_cli.errors import LangsampError


@dataclass
class TestSets:
    """Every test item of one ``--against``, by language, and what could not be read (one line each)."""

    task: str
    path: Path
    items: dict[str, list[TestItem]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)

    _seen: dict[str, set[tuple[str, str]]] = field(default_factory=dict, repr=False)

    def add(self, lang_script: str, source: str, texts: list[str], ids: list[str]) -> None:
        bucket = self.items.setdefault(lang_script, [])
        seen = self._seen.setdefault(lang_script, set())
        for item_id, text in zip(ids, texts):
            if (item_id, text) not in seen:
                seen.add((item_id, text))
                bucket.append(TestItem(self.task, lang_script, item_id, text))
        self.sources.setdefault(lang_script, source)


def parse_against(value: str) -> tuple[str, Path]:
    """``TASK=PATH`` -> (task, path); the task must be a registered one."""
    from langsamp_cli.tasks import registry

    task, sep, path = value.partition("=")
    if not sep or not task.strip() or not path.strip():
        raise LangsampError(f"--against {value}: expected TASK=PATH, e.g. sr-t=../shared/data/tatoeba/v1 "
                            f"(tasks: {', '.join(registry.names())})")
    registry.get(task.strip())
    return task.strip(), Path(path.strip()).expanduser()


def load_test_sets(task: str, path: Path) -> TestSets:
    """Read the test items of ``task`` from ``path``; a broken language is a problem, a broken layout an error."""
    from langsamp_cli.tasks import registry

    if not path.exists():
        raise LangsampError(f"--against {task}={path}: not found; pass what `langsamp eval {task} --data-dir` takes")
    spec = registry.get(task)
    found = TestSets(task, path)
    if spec.is_transfer:
        _transfer_sets(found)
    else:
        _retrieval_sets(found)
    if not found.items:
        reasons = "; ".join(f"{k}: {v}" for k, v in list(found.problems.items())[:3])
        raise LangsampError(f"--against {task}={path}: no readable {task} test set there"
                            f"{' (' + reasons + ')' if reasons else ''}; check the folder and its layout")
    return found


def _retrieval_sets(found: TestSets) -> None:
    from langsamp_cli.data.parallel import ENGLISH

    plan = _retrieval_plan(found.task, found.path)
    found.problems.update(plan.problems)
    for lang, unit in sorted(plan.units.items()):
        try:
            pairs = unit.load()
        except (LangsampError, OSError, UnicodeDecodeError) as err:
            found.problems[lang] = str(err)
            continue
        ids = [str(v) for v in pairs.ids] if pairs.ids is not None else [f"pair {i + 1}" for i in range(len(pairs))]
        source = " + ".join(pairs.sources) or str(found.path)
        found.add(lang, source, pairs.target, ids)
        english_ids = ids if pairs.ids is not None else [f"{lang} pair {i + 1}" for i in range(len(pairs))]
        found.add(ENGLISH, f"English side of the {found.task} pairs in {found.path}", pairs.english, english_ids)


def _retrieval_plan(task: str, path: Path):
    from langsamp_cli.data.bible import discover_bibles
    from langsamp_cli.data.parallel import ENGLISH
    from langsamp_cli.task_config import load_settings
    from langsamp_cli.tasks import registry

    spec = registry.get(task)
    if not path.is_dir():
        raise LangsampError(f"--against {task}={path}: not a folder; pass the folder `langsamp eval {task} "
                            "--data-dir` takes")
    settings = load_settings(task, {"data_dir": str(path)})
    try:
        plan = spec.data(settings, {"data_dir": str(path)})
    except LangsampError:
        if "bible_dir" not in spec.inputs:
            raise
        plan = None
    if (plan is not None and plan.units) or "bible_dir" not in spec.inputs:
        return plan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        english = discover_bibles(path).files.get(ENGLISH)
    if english is None:
        raise LangsampError(f"--against {task}={path}: neither {task} pair files nor whole Bibles with an English "
                            "one (eng_Latn) to pair with; check the folder")
    settings = load_settings(task, {"bible_dir": str(path), "english_bible": str(english)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return spec.data(settings, {})


def _transfer_sets(found: TestSets) -> None:
    from langsamp_cli.task_config import load_settings
    from langsamp_cli.tasks.transfer_inputs import build_transfer_data

    if not found.path.is_dir():
        raise LangsampError(f"--against {found.task}={found.path}: not a folder; pass the folder "
                            f"`langsamp eval {found.task} --data-dir` takes")
    quiet = Console(file=io.StringIO(), emoji=False)  # its "not used" lines come back as problems below
    settings = load_settings(found.task, {"data_dir": str(found.path)})
    try:
        data = build_transfer_data(found.task, settings, quiet)
    except LangsampError:
        # Only the test splits are read here: a folder without the source language's train/dev (UNER English,
        # whose train file is not released) is still checked, with any file standing in for the unread splits.
        stand_in = _any_file(found.task, found.path)
        if stand_in is None:
            raise
        settings = load_settings(found.task, {"data_dir": str(found.path), "train_file": str(stand_in),
                                          "dev_file": str(stand_in)})
        data = build_transfer_data(found.task, settings, quiet)
    found.problems.update(data.problems)
    for lang, load in sorted(data.targets.items()):
        try:
            texts, ids, source = _texts(load(), found.task)
        except (LangsampError, OSError, UnicodeDecodeError) as err:
            found.problems[lang] = str(err)
            continue
        found.add(lang, source, texts, ids)


def _any_file(task: str, folder: Path) -> Path | None:
    from langsamp_cli.tasks import registry

    spec = registry.get(task)
    if spec.files is None or "train_file" not in spec.inputs:
        return None
    splits = next(iter(spec.files(folder).values()), {})
    return next(iter(splits.values()), None)


def _texts(test, task: str) -> tuple[list[str], list[str], str]:
    """Texts and ids of a test split, whichever reader made it (labelled texts or tagged sentences)."""
    if hasattr(test, "texts"):
        return list(test.texts), [str(i) for i in test.ids], str(test.source)
    if hasattr(test, "tokens"):
        lines = test.lines or list(range(1, len(test.tokens) + 1))
        return [" ".join(tokens) for tokens in test.tokens], [f"{test.source}:{n}" for n in lines], str(test.source)
    raise LangsampError(f"{task}: its reader returned {type(test).__name__}, which has neither texts nor tokens; "
                        "contamination cannot read this task's test items")
