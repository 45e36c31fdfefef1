import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer, XLMRobertaForMaskedLM

from safetensors.torch import save_file

from langsamp_cli.errors import LangsampError
from langsamp_cli.embedding_tables import load_embedding_tables
from langsamp_cli.model import build_model, load_checkpoint, model_fingerprint, save_checkpoint
from langsamp_cli.official_format import OFFICIAL_LANG_KEY, OFFICIAL_SCRIPT_KEY, read_id_map

LANG2ID = {"arb": 0, "eng": 1, "rus": 2, "zho": 3}
SCRIPT2ID = {"Arab": 0, "Cyrl": 1, "Hani": 2, "Latn": 3}


def batch(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, vocab - 1, (3, 12), generator=gen)
    labels = torch.full_like(input_ids, -100)
    positions = torch.rand(input_ids.shape, generator=gen) < 0.3
    positions[:, 3] = True
    labels[positions] = input_ids[positions]
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": labels}


@pytest.fixture()
def model(tiny_model_dir: Path):
    torch.manual_seed(0)
    return build_model(str(tiny_model_dir), LANG2ID, SCRIPT2ID, variant="both").eval()


def test_zero_tables_give_the_plain_mlm_loss(model) -> None:
    inputs = batch(model.mlm.config.vocab_size)
    with torch.no_grad():
        model.lang_embeddings.weight.zero_()
        model.script_embeddings.weight.zero_()
        ours = model(**inputs, lang_ids=torch.tensor([0, 1, 2]), script_ids=torch.tensor([0, 3, 1])).loss
        plain = model.mlm(**inputs).loss
    assert torch.allclose(ours, plain, atol=1e-5)


def test_language_ids_change_the_loss_and_per_token_ids_agree(model) -> None:
    inputs = batch(model.mlm.config.vocab_size)
    with torch.no_grad():
        a = model(**inputs, lang_ids=torch.tensor([0, 1, 2]), script_ids=torch.tensor([0, 3, 1])).loss
        b = model(**inputs, lang_ids=torch.tensor([3, 3, 3]), script_ids=torch.tensor([0, 3, 1])).loss
        per_token = model(**inputs, lang_ids=torch.tensor([0, 1, 2])[:, None].expand(3, 12),
                          script_ids=torch.tensor([0, 3, 1])[:, None].expand(3, 12)).loss
    assert not torch.allclose(a, b)
    assert torch.allclose(a, per_token)


def test_tables_get_gradients_only_from_masked_positions(model) -> None:
    inputs = batch(model.mlm.config.vocab_size)
    inputs["labels"][:] = -100
    inputs["labels"][0, 3] = inputs["input_ids"][0, 3]  # one masked token, in a row of language 2 / script 1
    out = model(**inputs, lang_ids=torch.tensor([2, 0, 1]), script_ids=torch.tensor([1, 0, 3]))
    out.loss.backward()
    lang_grad = model.lang_embeddings.weight.grad.abs().sum(dim=1)
    script_grad = model.script_embeddings.weight.grad.abs().sum(dim=1)
    assert out.n_masked == 1
    assert lang_grad[2] > 0 and lang_grad[[0, 1, 3]].sum() == 0
    assert script_grad[1] > 0 and script_grad[[0, 2, 3]].sum() == 0


def test_vanilla_has_no_tables_and_needs_no_ids(tiny_model_dir: Path) -> None:
    vanilla = build_model(str(tiny_model_dir), LANG2ID, SCRIPT2ID, variant="vanilla")
    inputs = batch(vanilla.mlm.config.vocab_size)
    assert vanilla.lang_embeddings is None and vanilla.script_embeddings is None
    assert torch.allclose(vanilla(**inputs).loss, vanilla.mlm(**inputs).loss, atol=1e-5)
    with pytest.raises(LangsampError, match="unknown variant"):
        build_model(str(tiny_model_dir), LANG2ID, SCRIPT2ID, variant="langs")


def test_checkpoint_round_trip_and_plain_hf_loading(model, tiny_model_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    reloaded = load_checkpoint(ckpt).eval()
    inputs = batch(model.mlm.config.vocab_size)
    ids = dict(lang_ids=torch.tensor([0, 1, 2]), script_ids=torch.tensor([0, 3, 1]))
    with torch.no_grad():
        assert torch.allclose(model(**inputs, **ids).loss, reloaded(**inputs, **ids).loss, atol=1e-6)
    assert torch.equal(model.lang_embeddings.weight, reloaded.lang_embeddings.weight)
    assert reloaded.lang2id == LANG2ID and reloaded.variant == "both"
    mlm, info = AutoModelForMaskedLM.from_pretrained(str(ckpt), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    _, info = AutoModel.from_pretrained(str(ckpt), output_loading_info=True)
    assert all("pooler" in key for key in info["missing_keys"])
    meta = json.loads((ckpt / "langsamp.json").read_text())
    assert meta["use_lang_embedding"] and meta["use_script_embedding"] and meta["num_languages"] == 4
    tables = load_embedding_tables(ckpt)
    assert np.allclose(tables.lang, model.lang_embeddings.weight.detach().numpy())


def test_plain_model_without_tables_is_refused_when_tables_are_required(tiny_model_dir: Path) -> None:
    with pytest.raises(LangsampError, match="no LangSAMP language/script embeddings"):
        load_checkpoint(tiny_model_dir, require_tables=True)
    with pytest.raises(LangsampError, match="no LangSAMP language/script embeddings"):
        load_embedding_tables(tiny_model_dir)
    assert load_checkpoint(tiny_model_dir).variant == "vanilla"


def test_not_a_masked_lm_is_a_clear_error(tmp_path: Path) -> None:
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(str(tmp_path))
    with pytest.raises(LangsampError, match="not a masked language model"):
        build_model(str(tmp_path), LANG2ID, SCRIPT2ID)
    with pytest.raises(LangsampError, match="no model config found"):
        build_model(str(tmp_path / "nothing-here"), LANG2ID, SCRIPT2ID)


def official_checkpoint(tiny_model_dir: Path, folder: Path, with_map: bool = True,
                        fmt: str = "bin") -> tuple[Path, torch.Tensor]:
    """A checkpoint in the official LangSAMP layout: tables inside the state dict, flags in config.json."""
    mlm = XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir))
    state = {k: v.clone() for k, v in mlm.state_dict().items()}
    lang_table = torch.randn(4, mlm.config.hidden_size)
    state[OFFICIAL_LANG_KEY] = lang_table
    state[OFFICIAL_SCRIPT_KEY] = torch.randn(4, mlm.config.hidden_size)
    folder.mkdir()
    if fmt == "bin":
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, str(folder / "model.safetensors"))
    config = mlm.config.to_dict()
    config.update(use_lang_embedding=True, use_script_embedding=True, lang_size=4, script_size=4,
                  architectures=["XLMRobertaForMaskedLM"])
    (folder / "config.json").write_text(json.dumps(config))
    if with_map:
        id2lang = {v: k for k, v in LANG2ID.items()}
        id2script = {v: k for k, v in SCRIPT2ID.items()}
        (folder / "full_dicts.pkl").write_bytes(pickle.dumps([id2lang, id2script, LANG2ID, SCRIPT2ID]))
    return folder, lang_table


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_official_format_loads_backbone_head_and_tables(tiny_model_dir: Path, tmp_path: Path, capfd, fmt) -> None:
    folder, lang_table = official_checkpoint(tiny_model_dir, tmp_path / "official", fmt=fmt)
    capfd.readouterr()
    model = load_checkpoint(folder, require_tables=True).eval()
    assert capfd.readouterr() == ("", "")  # no warnings about the two table keys, no progress bars
    assert model.variant == "both" and model.lang2id == LANG2ID
    assert torch.equal(model.lang_embeddings.weight.data, lang_table)
    plain = XLMRobertaForMaskedLM.from_pretrained(str(tiny_model_dir)).eval()
    inputs = batch(plain.config.vocab_size)
    with torch.no_grad():
        assert torch.allclose(model.mlm(**inputs).loss, plain(**inputs).loss, atol=1e-6)
    assert np.allclose(load_embedding_tables(folder).lang, lang_table.numpy())


def test_official_format_needs_a_mapping(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder, _ = official_checkpoint(tiny_model_dir, tmp_path / "official", with_map=False)
    with pytest.raises(LangsampError, match="--lang-map"):
        load_embedding_tables(folder)
    json_map = tmp_path / "map.json"
    json_map.write_text(json.dumps({"lang2id": LANG2ID, "script2id": SCRIPT2ID}))
    assert load_embedding_tables(folder, lang_map=json_map).lang2id == LANG2ID


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/langsamp-pwned",))


def test_malicious_pickle_is_refused_not_executed(tmp_path: Path) -> None:
    evil = tmp_path / "full_dicts.pkl"
    evil.write_bytes(pickle.dumps([{}, {}, _Evil(), {}]))
    marker = Path("/tmp/langsamp-pwned")
    marker.unlink(missing_ok=True)
    with pytest.raises(LangsampError, match="refusing to load"):
        read_id_map(evil)
    assert not marker.exists()


def test_real_official_id_map(shared_data: Path) -> None:
    folder = shared_data / "metadata" / "langsamp"
    lang2id, script2id = read_id_map(folder / "full_dicts.pkl")
    assert len(lang2id) == 610 and len(script2id) == 30
    assert list(lang2id) == sorted(lang2id) and sorted(lang2id.values()) == list(range(610))
    assert "eng" in lang2id and "Latn" in script2id
    assert read_id_map(folder / "full_dicts.json") == (lang2id, script2id)


def test_fingerprint_changes_with_the_weights(model, tiny_model_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    ckpt = save_checkpoint(model, tokenizer, tmp_path / "a")
    first = model_fingerprint(ckpt)
    assert model_fingerprint(ckpt) == first
    with torch.no_grad():
        model.mlm.base_model.embeddings.word_embeddings.weight[5, 0] += 1.0
    save_checkpoint(model, tokenizer, tmp_path / "a")
    assert model_fingerprint(ckpt) != first


def test_state_dict_holds_each_weight_once(model) -> None:
    expected = {f"mlm.{key}" for key in model.mlm.state_dict()} | {"lang_embeddings.weight", "script_embeddings.weight"}
    assert set(model.state_dict()) == expected
    assert model.lm_head is model.mlm.lm_head


def test_tables_start_random_with_the_model_init_scale(model) -> None:
    std = model.mlm.config.initializer_range
    weights = model.lang_embeddings.weight.detach()
    assert weights.abs().sum() > 0 and abs(weights.std().item() - std) < 0.5 * std


def test_continuing_keeps_rows_by_code_under_the_callers_map(model, tiny_model_dir: Path, tmp_path: Path) -> None:
    ckpt = save_checkpoint(model, None, tmp_path / "ckpt")
    new_langs = {"deu": 0, "eng": 1, "zho": 2}  # eng keeps id 1, zho moves from 3 to 2, deu is new
    continued = build_model(str(ckpt), new_langs, SCRIPT2ID, variant="both")
    assert continued.lang2id == new_langs and continued.lang_embeddings.weight.shape[0] == 3
    old = model.lang_embeddings.weight.detach()
    new = continued.lang_embeddings.weight.detach()
    assert torch.equal(new[1], old[1]) and torch.equal(new[2], old[3])
    assert not any(torch.equal(new[0], row) for row in old)
    assert torch.equal(continued.script_embeddings.weight, model.script_embeddings.weight)
    lang_only = build_model(str(ckpt), LANG2ID, SCRIPT2ID, variant="lang")
    assert lang_only.script_embeddings is None and torch.equal(lang_only.lang_embeddings.weight, old)


def test_vanilla_checkpoint_is_refused_when_tables_are_required(tiny_model_dir: Path, tmp_path: Path) -> None:
    vanilla = build_model(str(tiny_model_dir), LANG2ID, SCRIPT2ID, variant="vanilla")
    ckpt = save_checkpoint(vanilla, None, tmp_path / "vanilla")
    assert not (ckpt / "langsamp_embeddings.safetensors").exists()
    assert load_checkpoint(ckpt).variant == "vanilla"
    with pytest.raises(LangsampError, match=f"{ckpt}: no LangSAMP"):
        load_checkpoint(ckpt, require_tables=True)


def test_bert_family_from_a_config(tmp_path: Path) -> None:
    from transformers import BertConfig

    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    bert = build_model("unused", LANG2ID, SCRIPT2ID, variant="lang", from_scratch_config=config).eval()
    inputs = batch(120)
    with torch.no_grad():
        bert.lang_embeddings.weight.zero_()
        assert torch.allclose(bert(**inputs, lang_ids=torch.tensor([0, 1, 2])).loss, bert.mlm(**inputs).loss, atol=1e-5)
    ckpt = save_checkpoint(bert, None, tmp_path / "bert")
    _, info = AutoModel.from_pretrained(str(ckpt), output_loading_info=True)
    assert all("pooler" in key for key in info["missing_keys"])
    assert load_embedding_tables(ckpt).script is None


def test_official_tables_must_match_the_config_and_the_map(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder, _ = official_checkpoint(tiny_model_dir, tmp_path / "official")
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"lang2id": {"eng": 0}, "script2id": {"Latn": 0}}))
    (folder / "full_dicts.pkl").unlink()
    with pytest.raises(LangsampError, match="--lang-map"):
        build_model(str(folder), {"eng": 0}, {"Latn": 0})  # a partial map cannot stand in for the official one
    big = {f"l{i:02d}": i for i in range(9)}
    (folder / "full_dicts.json").write_text(json.dumps({"lang2id": big, "script2id": SCRIPT2ID}))
    with pytest.raises(LangsampError, match="id 8 but the language table has 4 rows"):
        load_embedding_tables(folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    del state[OFFICIAL_SCRIPT_KEY]
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "full_dicts.json").unlink()
    with pytest.raises(LangsampError, match="config.json enables the table"):
        load_checkpoint(folder, lang_map=small)


def test_loading_prints_nothing(model, tmp_path: Path, capfd) -> None:
    ckpt = save_checkpoint(model, None, tmp_path / "ckpt")
    capfd.readouterr()
    load_checkpoint(ckpt)
    assert capfd.readouterr() == ("", "")


def test_fingerprint_of_an_uncached_hub_name_is_the_name(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = model_fingerprint("nobody-langsamp-test/not-a-cached-model")
    assert first == model_fingerprint("nobody-langsamp-test/not-a-cached-model")
    assert first != model_fingerprint("nobody-langsamp-test/another-model") and len(first) == 16
