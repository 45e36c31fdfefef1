"""Rules that used to be written twice, pinned where they now live once."""

from pathlib import Path

import pytest
import torch

from langsamp_cli.errors import LangsampError
from langsamp_cli.languages import LANG_SCRIPT_RE
from langsamp_cli.model import build_model, save_checkpoint, usable_positions
from langsamp_cli.pretrain.config import PretrainConfig
from langsamp_cli.pretrain.corpus import language_id_from_name
from langsamp_cli.pretrain.model_setup import prepare_model

LANG2ID = {"eng": 0, "deu": 1}
SCRIPT2ID = {"Latn": 0}


@pytest.mark.parametrize(("name", "is_id"), [("eng_Latn", True), ("zho_Hani", True), ("en_Latn", False),
                                             ("engl_Latn", False), ("eng_latn", False), ("eng_Latn_x", False)])
def test_one_language_script_pattern_for_readers_and_corpus(name: str, is_id: bool) -> None:
    assert bool(LANG_SCRIPT_RE.match(name)) is is_id
    assert (language_id_from_name(f"{name}.txt.gz") == name) is is_id


def test_usable_positions_by_family() -> None:
    from transformers import BertConfig, RobertaConfig, XLMRobertaConfig

    assert usable_positions(BertConfig(max_position_embeddings=512)) == 512
    assert usable_positions(RobertaConfig(max_position_embeddings=514)) == 512
    assert usable_positions(XLMRobertaConfig(max_position_embeddings=514)) == 512
    assert usable_positions(object()) is None


def _tiny_bert(folder: Path) -> Path:
    from transformers import BertConfig

    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    return save_checkpoint(build_model("unused", LANG2ID, SCRIPT2ID, from_scratch_config=config), None, folder)


def test_pretraining_length_limit_follows_the_same_rule(tmp_path: Path, short_model_dir: Path) -> None:
    # BERT: all 64 positions usable; XLM-R family (short_model_dir has 34): two go to the padding offset.
    for model_dir, limit in ((_tiny_bert(tmp_path / "bert"), 64), (short_model_dir, 32)):
        prepare_model(PretrainConfig(model=str(model_dir), max_seq_len=limit), None, LANG2ID, SCRIPT2ID, None)
        with pytest.raises(LangsampError, match=rf"--max-seq-len {limit + 1} exceeds .* \({limit}\); lower it"):
            prepare_model(PretrainConfig(model=str(model_dir), max_seq_len=limit + 1), None, LANG2ID, SCRIPT2ID,
                          None)


def test_fine_tuning_progress_is_the_shared_one() -> None:
    import io

    from rich.console import Console

    from langsamp_cli.finetune import progress_bar
    from langsamp_cli.progress import PlainProgress

    buffer = io.StringIO()
    with progress_bar(True, Console(file=buffer), unit="batch") as bars:
        bars.advance(bars.add_task("fine-tuning", total=4))
    assert isinstance(bars, PlainProgress)
    assert buffer.getvalue().startswith("fine-tuning: batch 1/4 (25%), elapsed ")


def test_both_fine_tuned_tasks_check_labels_the_same_way() -> None:
    from langsamp_cli.data.conll import TaggedSentences
    from langsamp_cli.data.taxi1500 import LabelledTexts
    from langsamp_cli.tasks.classification import ClassificationTask
    from langsamp_cli.tasks.tagging import TaggingTask

    texts = LabelledTexts(["a", "b", "c"], ["sports", "health", "sports"], ["1", "2", "3"], "train.tsv")
    tagged = TaggedSentences([["x", "y"], ["z"]], [["B-PER", "O"], ["B-LOC"]], "train.conll")
    assert ClassificationTask("sib200").fit_labels(texts) == ["health", "sports"]
    assert TaggingTask("ner").fit_labels(tagged) == ["B-LOC", "B-PER", "O"]
    assert TaggingTask("ner").fit_labels(tagged, ["O", "B-PER", "B-LOC", "I-LOC"]) == ["O", "B-PER", "B-LOC", "I-LOC"]
    with pytest.raises(LangsampError,
                       match=r"train.tsv: labels \['sports'\] are not in the task's labels \['health'\]"):
        ClassificationTask("sib200").fit_labels(texts, ["health"])
    with pytest.raises(LangsampError, match=r"train.conll: tags \['B-LOC'\] are not in the task's labels"):
        TaggingTask("ner").fit_labels(tagged, ["O", "B-PER"])


@pytest.mark.parametrize(("name", "expected"), [("en_Latn", "eng_Latn"), ("eng_Latn", "eng_Latn"),
                                                ("zh-Hans", "zho_Hans"), ("eng", None), ("english", None)])
def test_ids_written_in_file_names(name: str, expected: str | None, tmp_path: Path) -> None:
    from langsamp_cli.data.bible import bible_language
    from langsamp_cli.languages import written_id

    assert written_id(name) == expected
    if expected:  # a Bible named with a language-script prefix, ISO 639-1 included, needs no reading
        assert bible_language(tmp_path / f"{name}.bible.txt") == expected


def test_script_detected_from_a_sample() -> None:
    from langsamp_cli.languages import id_with_detected_script

    assert id_with_detected_script("srp", "Ово је реченица") == "srp_Cyrl"
    assert id_with_detected_script("srp", "Ovo je rečenica") == "srp_Latn"
    assert id_with_detected_script("eng", None) == "eng_Latn"


def test_one_cache_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from langsamp_cli.encode import default_cache_dir
    from langsamp_cli.io_utils import cache_root

    monkeypatch.delenv("LANGSAMP_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "langsamp"
    assert default_cache_dir() == tmp_path / "xdg" / "langsamp" / "embeddings"
    monkeypatch.setenv("LANGSAMP_CACHE", str(tmp_path / "embeddings"))  # the embedding cache can still move alone
    assert default_cache_dir() == tmp_path / "embeddings"


def test_atomic_bytes_and_the_embedding_cache_reload(tmp_path: Path) -> None:
    import numpy as np

    from langsamp_cli.encode import EmbeddingCache
    from langsamp_cli.io_utils import atomic_write_bytes

    assert atomic_write_bytes(tmp_path / "a" / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    cache = EmbeddingCache(tmp_path / "cache", "fingerprint")
    array = np.arange(6, dtype=np.float32).reshape(3, 2)
    cache.save("hash", array)
    assert np.array_equal(cache.load("hash", 3), array)
    assert [p.name for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")] == []  # no temp left


def test_one_unknown_key_policy_for_task_pretrain_and_experiment_files(tmp_path: Path) -> None:
    """Task YAMLs, pretraining YAMLs and experiment files refuse a typo the same way, from one function."""
    from langsamp_cli.experiment import load_experiment_config
    from langsamp_cli.pretrain.config import build_config
    from langsamp_cli.task_config import load_task_config

    task = tmp_path / "task.yaml"
    task.write_text("include: sr-t\npairz: 3\n", encoding="utf-8")
    pretrain = tmp_path / "pretrain.yaml"
    pretrain.write_text("max-stepz: 3\n", encoding="utf-8")
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text("name: x\nvariantz: [both]\n", encoding="utf-8")
    messages = []
    for load in (lambda: load_task_config(task), lambda: build_config("demo", pretrain),
                 lambda: load_experiment_config(experiment)):
        with pytest.raises(LangsampError) as info:
            load()
        messages.append(str(info.value))
    assert [m.split(": unknown key ")[1].split(";")[1].strip() for m in messages] == \
        ["did you mean 'pairs'?", "did you mean 'max_steps' or 'max_seq_len'?", "did you mean 'variants'?"]


def test_the_paper_layer_is_one_number() -> None:
    from langsamp_cli.analysis.similarity_run import SimilaritySettings
    from langsamp_cli.encode import SentenceEncoder
    from langsamp_cli.protocol import PAPER_LAYER
    from langsamp_cli.task_config import load_task_config

    import inspect

    assert load_task_config("sr-t")["layer"] == load_task_config("sr-b")["layer"] == PAPER_LAYER
    assert SimilaritySettings("m", "d").layer == PAPER_LAYER
    assert inspect.signature(SentenceEncoder).parameters["layer"].default == PAPER_LAYER
