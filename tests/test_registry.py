"""The task registry is the one list of task names; everything else reads it."""

from __future__ import annotations

import ast
from pathlib import Path

import langsamp_cli
from langsamp_cli.report import build_report, table1_markdown, task_label
from langsamp_cli.tasks import registry
from helpers import ENGLISH_WORDS, OTHER_WORDS, run_cli, sentences, write_lines

PACKAGE = Path(langsamp_cli.__file__).parent
# The same strings meaning something other than a task (module relative to the package, value).
OTHER_MEANINGS = {
    ("pretrain/checkpoints.py", "pos"),    # the position in numpy's RNG state
    ("data/multiparallel.py", "sib200"),   # the SIB-200 folder layout as a pretraining corpus format
}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _help_texts(tree: ast.AST) -> set[int]:
    return {id(kw.value) for node in ast.walk(tree) if isinstance(node, ast.Call)
            for kw in node.keywords if kw.arg == "help" and isinstance(kw.value, ast.Constant)}


def test_task_names_are_written_only_in_the_registry():
    names = set(registry.names())
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == "tasks/registry.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree) | _help_texts(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and node.value in names and id(node) not in skip
                    and (module, node.value) not in OTHER_MEANINGS):
                found.append(f"{module}:{node.lineno}: {node.value!r}")
    assert found == [], "task names outside tasks/registry.py:\n" + "\n".join(found)


def test_every_registered_task_is_an_eval_command_and_nothing_else():
    from langsamp_cli.cli import eval_app

    assert sorted(command.name for command in eval_app.registered_commands) == sorted(registry.names())


def test_report_order_and_labels_come_from_the_registry_and_defaults_from_the_yaml():
    from langsamp_cli.report import TASK_ORDER
    from langsamp_cli.task_config import load_task_config

    assert TASK_ORDER == [spec.name for spec in registry.all_tasks()]
    assert [task_label(name) for name in TASK_ORDER] == [spec.label for spec in registry.all_tasks()]
    for name in registry.transfer_names():
        spec = registry.get(name)
        config = load_task_config(name)
        assert config["type"] == spec.type
        assert config["lr"] == {"classification": 1e-5, "tagging": 2e-5}[spec.type]  # paper, Appendix A
    assert task_label("my-own-task") == "my-own-task"


def test_headline_metrics_in_the_yaml_are_the_ones_the_runners_score():
    from langsamp_cli.task_config import load_task_config
    from langsamp_cli.tasks.classification import ClassificationTask
    from langsamp_cli.tasks.tagging import TaggingTask

    runner_metric = {"classification": ClassificationTask.headline, "tagging": TaggingTask.headline}
    for spec in registry.all_tasks():
        config = load_task_config(spec.name)
        expected = runner_metric.get(spec.type, f"acc@{max(config.get('top_k') or [0])}")
        assert config["metric"] == expected, spec.name


def test_a_yaml_defined_task_is_reported_under_its_own_name(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "tatoeba"
    data.mkdir()
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.deu_Latn", sentences(OTHER_WORDS["deu_Latn"], 12, seed=6))
    write_lines(data / "tatoeba.deu_Latn-eng_Latn.eng_Latn", sentences(ENGLISH_WORDS, 12, seed=5))
    task_file = tmp_path / "mini.yaml"
    task_file.write_text("include: sr-t\ntask: tatoeba-mini\npairs: 10\n", encoding="utf-8")
    out = tmp_path / "results"
    common = ["--model", str(tiny_model_dir), "--data-dir", str(data), "--output-dir", str(out)]
    assert run_cli(["eval", "sr-t", "--config", str(task_file), *common]) == 0
    assert run_cli(["eval", "sr-t", *common]) == 0
    report = build_report([out])
    assert list(dict.fromkeys(report.groups.task)) == ["sr-t", "tatoeba-mini"]  # registered tasks first
    row_labels = [line.split("|")[1].strip() for line in table1_markdown(report).splitlines()[2:]]
    assert row_labels == ["SR-T", "tatoeba-mini"]
