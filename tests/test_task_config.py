"""Task YAMLs: shipped protocol numbers, include:, overrides, a user file, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from langsamp_cli.errors import LangsampError
from langsamp_cli.task_config import available_tasks, config_dir, load_task_config

TASKS = ["ner", "pos", "sib200", "sr-b", "sr-pairs", "sr-t", "taxi1500"]


def _yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_tasks_load_with_paper_numbers():
    assert available_tasks() == TASKS
    configs = {t: load_task_config(t) for t in TASKS}
    assert all(c["task"] == t and c["source_lang"] == "eng_Latn" for t, c in configs.items())
    for task in ("sr-b", "sr-t"):
        c = configs[task]
        assert (c["type"], c["layer"], c["max_length"], c["top_k"], c["metric"]) == \
            ("retrieval", 8, 512, [1, 5, 10], "acc@10")
    assert configs["sr-b"]["pairs"] == 500 and configs["sr-t"]["pairs"] == 1000
    for task, labels in (("taxi1500", 6), ("sib200", 7)):
        c = configs[task]
        assert (c["type"], c["lr"], c["epochs"], c["batch_size"], c["grad_accum"], c["metric"], len(c["labels"])) == \
            ("classification", 1e-5, 40, 8, 2, "macro_f1", labels)
        assert len(c["labels"]) == labels and c["seeds"] == [1, 2, 3, 4, 5]
    for task in ("ner", "pos"):
        c = configs[task]
        assert (c["type"], c["lr"], c["epochs"], c["batch_size"], c["grad_accum"], c["max_length"], c["metric"]) == \
            ("tagging", 2e-5, 10, 8, 4, 256, "f1")
    assert configs["ner"]["entity_types"] == ["PER", "ORG", "LOC"] and len(configs["ner"]["labels"]) == 7
    assert len(configs["pos"]["labels"]) == 18 and configs["pos"]["labels"][0] == "O"  # official get_labels
    assert configs["pos"]["ud_preparation"] == "glot500"
    assert "include" not in configs["ner"]


def test_overrides_win_and_none_is_ignored():
    config = load_task_config("sr-b", {"layer": 6, "max_length": None, "model": "m"})
    assert config["layer"] == 6 and config["max_length"] == 512 and config["model"] == "m"


def test_user_yaml_path_with_recursive_include(tmp_path):
    _yaml(tmp_path / "common.yaml", "include: _retrieval.yaml\nlayer: 4\n")  # a shipped template
    _yaml(tmp_path / "mid.yaml", "include: common.yaml\nmax_length: 128\npairs: 10\nlayer: 5\n")
    path = _yaml(tmp_path / "my-task.yaml", "include: mid.yaml\ntask: my-task\nmetric: acc@5\nlayer: 7\n")
    config = load_task_config(str(path))
    assert (config["task"], config["layer"], config["max_length"], config["pairs"]) == ("my-task", 7, 128, 10)
    assert (config["metric"], config["top_k"], config["output_dir"]) == ("acc@5", [1, 5, 10], "results")
    assert config["config_files"] == [str(path)]


def test_nested_mappings_merge_key_by_key():
    from langsamp_cli.task_config import deep_merge

    assert deep_merge({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"y": 3}, "b": None}) == {"a": {"x": 1, "y": 3}, "b": 1}


def test_user_yaml_can_include_a_shipped_task(tmp_path):
    path = _yaml(tmp_path / "quick.yaml", "include: sib200\nepochs: 2\n")
    config = load_task_config(path)
    assert (config["task"], config["epochs"], config["lr"]) == ("sib200", 2, 1e-5)


def test_config_file_between_task_and_flags(tmp_path):
    user = _yaml(tmp_path / "c.yaml", "epochs: 3\nlr: 3.0e-5\n")
    config = load_task_config("ner", {"lr": 4e-5}, config_file=user)
    assert (config["epochs"], config["lr"], config["grad_accum"]) == (3, 4e-5, 4)
    wrong = _yaml(tmp_path / "w.yaml", "task: pos\n")
    with pytest.raises(LangsampError, match="task 'pos' does not match 'ner'"):
        load_task_config("ner", config_file=wrong)


def test_env_var_moves_the_config_folder(tmp_path, monkeypatch):
    # a user's task folder may build on the shipped templates (found when not beside the file)
    _yaml(tmp_path / "toy.yaml", "include: _classification.yaml\ntask: toy\nmax_length: 32\nlabels: [a, b, c]\n")
    monkeypatch.setenv("LANGSAMP_TASK_CONFIGS", str(tmp_path))
    assert config_dir() == tmp_path and available_tasks() == ["toy"]
    config = load_task_config("toy")
    assert (config["labels"], config["lr"], config["max_length"]) == (["a", "b", "c"], 1e-5, 32)
    _yaml(tmp_path / "bare.yaml", "task: bare\ntype: classification\nmetric: macro_f1\nlr: 0.001\n")
    with pytest.raises(LangsampError, match="bare.yaml: missing required key 'source_lang' for a classification"):
        load_task_config("bare")


def test_unknown_task_lists_available():
    with pytest.raises(LangsampError, match=r"unknown task 'sr-x': available tasks are ner, pos, sib200, sr-b"):
        load_task_config("sr-x")


@pytest.mark.parametrize(("text", "message"), [
    ("type: retrieval\nmetric: acc@10\n", "missing required key 'task'"),
    ("task: t\ntype: ranking\nmetric: m\n", "key 'type' is 'ranking'; use one of retrieval, classification, tagging"),
    ("include: sr-b\nlayer: eight\n", "layer: 'eight' is not a whole number; fix the value"),
    ("include: sr-b\nmetric: acc@3\n", "a retrieval metric is acc@k with k in top_k"),
    ("include: sib200\nlr: fast\n", "lr: 'fast' is not a number; fix the value"),
    ("include: sib200\nlr: 0\n", "lr: 0 must be greater than 0"),
    ("include: sib200\nmixed_precision: fp8\n", "mixed_precision: 'fp8' is not one of auto, no, bf16, fp16"),
    ("include: sib200\nnum_labels: 7\n", "unknown key 'num_labels' for a classification task"),  # labels say it
    ("include: sr-t\ntop_k: [1, 0]\n", "top_k: [1, 0] must be greater than 0"),
    ("include: ner\nlabels: null\n", None),  # None never replaces a value
    ("task: t\ntype: tagging\nmetric: f1\nlr: 0.1\n", "missing required key 'source_lang' for a tagging task"),
])
def test_validation_errors_name_file_and_key(tmp_path, text, message):
    path = _yaml(tmp_path / "bad.yaml", text)
    if message is None:
        assert len(load_task_config(path)["labels"]) == 7
        return
    with pytest.raises(LangsampError) as err:
        load_task_config(path)
    assert message in str(err.value) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_bad_override_names_flags():
    with pytest.raises(LangsampError, match=r"^--layer: -1 must be 0 or more; fix the value$"):
        load_task_config("sr-b", {"layer": -1})


def test_include_cycle_and_missing_include(tmp_path):
    _yaml(tmp_path / "a.yaml", "include: b.yaml\n")
    _yaml(tmp_path / "b.yaml", "include: a.yaml\n")
    with pytest.raises(LangsampError, match=r"include cycle \(a.yaml -> b.yaml -> a.yaml\)"):
        load_task_config(tmp_path / "a.yaml")
    _yaml(tmp_path / "c.yaml", "include: nowhere.yaml\n")
    with pytest.raises(LangsampError, match="include 'nowhere.yaml' not found"):
        load_task_config(tmp_path / "c.yaml")


def test_broken_yaml_names_the_line(tmp_path):
    path = _yaml(tmp_path / "broken.yaml", "task: t\ntype: [retrieval\nmetric: x\n")
    with pytest.raises(LangsampError, match=r"broken.yaml:\d+: invalid YAML"):
        load_task_config(path)
    with pytest.raises(LangsampError, match="config file not found"):
        load_task_config(tmp_path / "missing.yaml")
    _yaml(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(LangsampError, match="expected a mapping"):
        load_task_config(tmp_path / "list.yaml")


def test_a_yaml_defines_a_new_task_of_the_same_type(tmp_path):
    new = _yaml(tmp_path / "mini.yaml", "include: sr-t\ntask: tatoeba-mini\npairs: 50\n")
    config = load_task_config("sr-t", config_file=new)
    assert (config["task"], config["base_task"], config["pairs"], config["layer"]) == ("tatoeba-mini", "sr-t", 50, 8)
    other_type = _yaml(tmp_path / "tag.yaml", "include: ner\ntask: my-ner\n")
    with pytest.raises(LangsampError, match="'my-ner' is a tagging task, not retrieval"):
        load_task_config("sr-t", config_file=other_type)
