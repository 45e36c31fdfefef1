"""Validation behind the CLI's bad-input errors: task names as folder names, the keys each task type takes,
and file:line in tagging errors."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from langsamp_cli.data.conll import normalize_ner, read_tagged_file
from langsamp_cli.data.conllu import read_conllu
from langsamp_cli.errors import LangsampError
from langsamp_cli.results import ResultStore, task_dir_name
from langsamp_cli.settings import field_names
from langsamp_cli.task_config import available_tasks, load_task_config
from langsamp_cli.tasks import registry
from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE

RUN_ONLY_FLAGS = {"overwrite", "shard", "config", "no_cache", "cache_dir"}  # steer one run, never task settings


@pytest.mark.parametrize("name", registry.names())
def test_every_flag_of_an_eval_command_is_a_key_its_task_type_takes(name) -> None:
    from langsamp_cli.commands.eval_tasks import eval_command

    spec = registry.get(name)
    flags = set(inspect.signature(eval_command(spec)).parameters) - RUN_ONLY_FLAGS
    keys = set(field_names(SETTINGS_BY_TYPE[spec.type], run_only=False))
    assert flags <= keys, sorted(flags - keys)
    assert set(spec.inputs) <= flags  # the task's optional inputs are flags of its own command


def test_every_shipped_task_loads_and_sets_every_required_key() -> None:
    for task in available_tasks():
        config = load_task_config(task)  # convert_all(required=True) raises on a missing key
        assert config["task"] == task and config["type"] in SETTINGS_BY_TYPE


def _yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["../../escaped", "/abs/path", "a/b", "..", ".hidden", "-dash", "x..y", "a\\b", ""])
def test_a_task_name_that_is_not_a_plain_folder_name_is_refused(tmp_path: Path, name: str) -> None:
    config = _yaml(tmp_path / "t.yaml", f"include: sr-t\ntask: '{name}'\n")
    with pytest.raises(LangsampError) as info:
        load_task_config("sr-t", config_file=config)
    assert "key 'task'" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(LangsampError, match="task name"):
        task_dir_name(name)


def test_a_non_string_task_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LangsampError, match="key 'task' is '5'"):
        load_task_config(_yaml(tmp_path / "t.yaml", "include: sr-t\ntask: 5\n"))


def test_result_store_keeps_plain_task_names_under_the_output_dir(tmp_path: Path) -> None:
    store = ResultStore(tmp_path / "out", "tatoeba-mini_v1.2", "some/model", None, {}, "acc@10")
    assert store.run_dir.parent.parent == tmp_path / "out" / "tatoeba-mini_v1.2"
    with pytest.raises(LangsampError, match="task name '../x'"):
        ResultStore(tmp_path / "out", "../x", "m", None, {}, "acc@10")


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("include: sr-t\npairz: 10\n", "retrieval", "unknown key 'pairz' for a retrieval task; did you mean 'pairs'?"),
    ("include: ner\nlearning_rate: 0.1\n", "tagging", "unknown key 'learning_rate'"),
    ("include: sib200\nfrobnicate: 1\n", "classification", "unknown key 'frobnicate' for a classification task; "
                                                             "known keys: adam_epsilon, batch_size"),
    ("include: sr-t\nseeds: [1, 2]\n", "retrieval", "unknown key 'seeds' for a retrieval task"),  # no fine-tuning
])
def test_unknown_keys_are_refused_with_close_matches(tmp_path: Path, text: str, kind: str, message: str) -> None:
    path = _yaml(tmp_path / "typo.yaml", text)
    with pytest.raises(LangsampError) as info:
        load_task_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_unknown_flag_style_override_is_refused() -> None:
    with pytest.raises(LangsampError, match=r"^flags: unknown key 'layr' for a retrieval task; did you mean 'layer'"):
        load_task_config("sr-b", {"layr": 3})


def test_a_bad_ner_tag_names_its_own_line(tmp_path: Path) -> None:
    path = _yaml(tmp_path / "test.txt", "John\tB-PER\nlives\tO\nParis\tX-LOC\n\nMary\tB-PER\n")
    sentences = read_tagged_file(path)
    with pytest.raises(LangsampError, match=r"test.txt:3: tag 'X-LOC' is neither O nor"):
        normalize_ner(sentences)
    iob2 = _yaml(tmp_path / "x-ud-test.iob2", "# sent_id = 1\n# text = a b\n1\ta\tO\t-\t-\n1-2\tab\t_\t-\t-\n"
                                               "2\tb\tQ-PER\t-\t-\n")
    with pytest.raises(LangsampError, match=r"x-ud-test.iob2:5: tag 'Q-PER'"):
        normalize_ner(read_tagged_file(iob2))


def test_conllu_tokens_know_their_lines(tmp_path: Path) -> None:
    rows = ["# sent_id = 1", "1\tIn\t_\tADP\t_\t_\t0\tdep\t_\t_", "2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_",
            "2\tde\t_\tADP\t_\t_\t0\tdep\t_\t_", "3\tel\t_\tDET\t_\t_\t0\tdep\t_\t_"]
    path = _yaml(tmp_path / "t.conllu", "\n".join(rows) + "\n\n# sent_id = 2\n1\tX\t_\tNOUN\t_\t_\t0\tdep\t_\t_\n")
    data = read_conllu(path, "syntactic")
    assert [data.where(0, i) for i in range(3)] == [f"{path}:2", f"{path}:4", f"{path}:5"]
    assert data.where(1, 0) == f"{path}:8" and data.where(1) == f"{path}:7"  # sentence start: its first line
    assert data.head(1).tag_lines == [[2, 4, 5]]


def test_a_tag_outside_the_label_set_names_its_own_line(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from langsamp_cli.tasks.tagging import TaggingTask

    rows = ["# sent_id = 1", "1\tIn\t_\tADP\t_\t_\t0\tdep\t_\t_", "2\tthe\t_\tDET\t_\t_\t0\tdep\t_\t_",
            "3\tbeginning\t_\tNOUN\t_\t_\t0\tdep\t_\t_"]
    data = read_conllu(_yaml(tmp_path / "t.conllu", "\n".join(rows) + "\n"))
    task = TaggingTask("pos", max_length=64)
    task.labels = ["ADP", "DET"]  # NOUN (line 4) is not a label
    with pytest.raises(LangsampError, match=r"t.conllu:4: tag 'NOUN' is not in the label set"):
        task.train_loader(data, AutoTokenizer.from_pretrained(str(tiny_model_dir)), batch_size=2, seed=1)
