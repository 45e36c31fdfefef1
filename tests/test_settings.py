"""Typed settings: one field gives the YAML key, the type check and the flag (langsamp_cli/settings.py)."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Literal

import pytest

from helpers import run_cli
from langsamp_cli.errors import LangsampError
from langsamp_cli.pretrain.config import PretrainConfig, build_config
from langsamp_cli.settings import (
    check_known_keys,
    cli_fields,
    convert,
    convert_all,
    field_names,
    meta,
    setting,
    typer_parameters,
)
from langsamp_cli.task_config import load_task_config
from langsamp_cli.tasks import registry
from langsamp_cli.tasks.task_settings import SETTINGS_BY_TYPE, TaskSettings, TransferSettings


@dataclasses.dataclass
class Toy:
    steps: int = setting("Steps.", positive=True)
    rate: float = setting("Rate.")
    names: list[str] | None = setting("Names.")
    seeds: int | str | list[int] = setting("Seeds.")
    precision: Literal["no", "bf16"] = setting("Precision.")
    betas: tuple[float, float] = setting("Betas.", cli=False)
    quiet: bool = setting("Quiet.", run_only=True, default=False)
    extra: str | None = setting("Extra input.", optional_input=True)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("steps", "12", 12), ("steps", 12.0, 12), ("rate", "5e-5", 5e-5), ("rate", 3, 3.0),
    ("names", "a, b,c", ["a", "b", "c"]), ("names", ["a"], ["a"]),
    ("seeds", 3, 3), ("seeds", "1-5", "1-5"), ("seeds", [1, 2], [1, 2]),
    ("precision", False, "no"),  # YAML 1.1 reads a bare `no` as false
    ("betas", ["0.9", 0.98], (0.9, 0.98)), ("names", None, None),
])
def test_values_are_converted_to_the_field_type(key, value, expected) -> None:
    assert convert_all(Toy, {key: value})[key] == expected


@pytest.mark.parametrize(("key", "value", "message"), [
    ("steps", 1.5, "steps: 1.5 is not a whole number; fix the value"),
    ("steps", True, "steps: True is not a whole number"),
    ("steps", 0, "steps: 0 must be greater than 0"),
    ("rate", "fast", "rate: 'fast' is not a number"),
    ("precision", "fp8", "precision: 'fp8' is not one of no, bf16"),
    ("betas", 0.9, "betas: 0.9 is not two numbers like [0.9, 0.999]"),
    ("quiet", "yes", "quiet: 'yes' is not true or false"),
    ("seeds", 1.5, "seeds: 1.5 is not a whole number or a text value or a list of whole numbers"),
])
def test_a_wrong_value_is_one_line_naming_key_value_and_type(key, value, message) -> None:
    with pytest.raises(LangsampError) as info:
        convert_all(Toy, {key: value}, "x.yaml")
    assert str(info.value).startswith(f"x.yaml: {message}")
    assert "\n" not in str(info.value)


def test_a_yaml_value_error_names_its_line(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("seed: 1\n# comment\nmax-steps: many\n", encoding="utf-8")
    with pytest.raises(LangsampError, match=r"p.yaml:3: max_steps: 'many' is not a whole number"):
        build_config("demo", path)


def test_required_fields_are_the_ones_typed_without_none() -> None:
    values = {"steps": 1, "rate": 1.0, "seeds": 1, "precision": "no", "betas": [1, 2]}
    convert_all(Toy, values, "t", required=True)
    with pytest.raises(LangsampError, match="t: missing required key 'rate' for toys"):
        convert_all(Toy, {**values, "rate": None}, "t", required=True, what="for toys")


def test_unknown_keys_suggest_close_matches_but_never_internal_ones() -> None:
    with pytest.raises(LangsampError, match=r"^f: unknown key 'stpes' here; did you mean 'steps'\?$"):
        check_known_keys(["steps", "stpes"], ["steps", "rate"], "f", "here")
    with pytest.raises(LangsampError) as info:
        check_known_keys(["zzz"], ["steps", "rate"], "f", "here", internal=["secret"])
    assert str(info.value) == "f: unknown key 'zzz' here; known keys: rate, steps"
    check_known_keys(["secret"], ["steps"], "f", "here", internal=["secret"])  # accepted, never listed


def test_flags_come_from_the_fields() -> None:
    params = {p.name: p for p in typer_parameters(Toy)}
    assert set(params) == {"steps", "rate", "names", "seeds", "precision", "quiet"}  # no cli=False, no inputs
    assert "extra" in {p.name for p in typer_parameters(Toy, inputs=["extra"])}
    assert params["precision"].default.metavar == "no|bf16"
    assert params["steps"].default.param_decls == ("--steps",)
    helped = {p.name: p.default.help for p in typer_parameters(Toy, defaults={"steps": 7, "names": ["a", "b"]})}
    assert helped["steps"] == "Steps. (default: 7)" and helped["names"] == "Names. (default: a,b)"


def test_task_settings_hold_no_values_the_yaml_templates_are_their_home() -> None:
    for schema in SETTINGS_BY_TYPE.values():
        for field in dataclasses.fields(schema):
            assert field.default in (None, False), (schema.__name__, field.name)
            assert field.default is None or meta(field).run_only, field.name
    shipped = load_task_config("taxi1500")
    required = [f.name for f in dataclasses.fields(TransferSettings)
                if "None" not in str(f.type) and not meta(f).run_only]
    assert all(shipped.get(name) is not None for name in required)


def test_every_eval_flag_is_named_after_its_yaml_key() -> None:
    from langsamp_cli.commands.eval_tasks import eval_command

    for spec in registry.all_tasks():
        command = eval_command(spec)
        for name, param in inspect.signature(command).parameters.items():
            dashed = name.replace("_", "-")
            assert param.default.param_decls[0].split("/")[0] in (f"--{dashed}", "--model"), name
        schema = SETTINGS_BY_TYPE[spec.type]
        assert set(inspect.signature(command).parameters) == {f.name for f in cli_fields(schema, spec.inputs)}


def test_eval_help_shows_the_yaml_values(capsys) -> None:
    assert run_cli(["eval", "sr-t", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--pairs N At most N pairs per language" in text and "(default: 1000)" in text
    assert "--dtype float32|auto|bfloat16|float16" in text


def test_pretrain_flags_are_every_config_field_but_the_yaml_only_ones(capsys) -> None:
    from langsamp_cli.commands.pretrain import pretrain_command

    flags = set(inspect.signature(pretrain_command()).parameters)
    cli = {f.name for f in dataclasses.fields(PretrainConfig) if meta(f).cli}
    assert flags == cli | {"preset", "config", "resume", "overwrite", "no_progress", "dry_run"}
    assert {f.name for f in dataclasses.fields(PretrainConfig)} - cli == {"cache_bytes", "adam_betas"}
    assert run_cli(["pretrain", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(demo: {PretrainConfig().max_steps}, paper: 150,000)" in text


def test_a_new_setting_flag_reaches_the_fine_tuning_loop() -> None:
    from langsamp_cli.tasks.transfer import train_settings
    from langsamp_cli.tasks.transfer_run import resolve_settings

    settings = resolve_settings("sib200", {"model": "m", "weight_decay": 0.1, "warmup_ratio": "0.2",
                                           "scheduler": "cosine"})
    trained = train_settings(settings, seed=1)
    assert (trained.weight_decay, trained.warmup_ratio, trained.scheduler, trained.max_grad_norm) == \
        (0.1, 0.2, "cosine", 0.0)


def test_run_options_are_never_task_settings() -> None:
    for schema in SETTINGS_BY_TYPE.values():
        assert set(field_names(schema, run_only=True)) >= {"overwrite", "shard", "config"}
    assert "overwrite" not in field_names(TaskSettings, run_only=False)
    with pytest.raises(LangsampError, match="unknown key 'overwrite' for a retrieval task"):
        load_task_config("sr-t", {"overwrite": True})


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(LangsampError, match=r"^--max-steps: 'lots' is not a whole number; fix the value$"):
        build_config("demo", None, {"max_steps": "lots"})
    with pytest.raises(LangsampError, match=r"^pretrain settings: unknown key 'max_stepz'; did you mean 'max_steps'"):
        build_config("demo", None, {"max_stepz": 3})


def test_convert_accepts_paths_as_text(tmp_path) -> None:
    assert convert("x", tmp_path, str) == str(tmp_path)
    assert convert("x", [tmp_path], list[str]) == [str(tmp_path)]


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "sib200", "--mixed-precision", "fp8"], "error: --mixed-precision: 'fp8' is not one of auto, no, bf16, fp16"),
    (["eval", "sr-t", "--dtype", "half"], "error: --dtype: 'half' is not one of float32, auto, bfloat16, float16"),
    (["eval", "ner", "--patience", "-1"], "error: --patience: -1 must be 0 or more"),
    (["eval", "pos", "--seeds", "1.5"], "error: --seeds '1.5': use integers like 1,2,3 or a range 1-5"),
])
def test_a_bad_flag_value_is_one_line_naming_the_flag(args, message, tmp_path, capsys) -> None:
    assert run_cli([*args, "--model", str(tmp_path), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


ANALYSIS_FLAGS = {
    "similarity": {"--model", "-m", "--data-dir", "--compare", "--languages", "--n", "--layer", "--layers", "--seed",
                   "--output-dir", "--batch-size", "--max-length", "--device", "--no-cache"},
    "plot-embeddings": {"--model", "-m", "--languages", "--color-by", "--table", "--lang-map", "--max-labels",
                        "--label", "--output-dir"},
    "donor": {"--target", "-t", "--model", "-m", "--candidates", "--top", "--method", "--json", "--evaluate",
              "--data-dir", "--uriel-features", "--lang-map", "--output-dir", "--eval-option", "--mixed-precision"},
}


@pytest.mark.parametrize("name", sorted(ANALYSIS_FLAGS))
def test_analysis_commands_keep_their_flag_names(name: str) -> None:
    import typer

    from langsamp_cli.cli import app

    command = typer.main.get_command(app).commands[name]
    flags = {opt for param in command.params for opt in param.opts} - {"--help"}
    assert flags == ANALYSIS_FLAGS[name]


@pytest.mark.parametrize(("args", "shown"), [
    (["similarity"], ["--n N Parallel sentences sampled per language. (default: 100)",
                      "--seed N Seed of the sentence sample. (default: 1)", "(default: results/similarity)"]),
    (["plot-embeddings"], ["(default: head)", "(default: 60)", "(default: results/embeddings)"]),
    (["donor"], ["candidates. (default: 10)", "(default: lang)"]),
])
def test_analysis_help_shows_the_settings_field_defaults(args: list[str], shown: list[str], capsys) -> None:
    assert run_cli([*args, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(part in text for part in shown), text


@pytest.mark.parametrize(("args", "message"), [
    (["similarity", "--model", "m", "--data-dir", "d", "--seed", "-1"], "error: --seed: -1 must be 0 or more"),
    (["plot-embeddings", "--max-labels", "-1"], "error: --max-labels: -1 must be 0 or more"),
    (["donor", "--target", "yue_Hani", "--top", "0"], "error: --top: 0 must be greater than 0"),
])
def test_analysis_flag_limits_are_one_line_errors(args: list[str], message: str, capsys) -> None:
    assert run_cli(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
