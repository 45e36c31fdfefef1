"""--model: a missing local path is an immediate error; an unreachable hub is detected once, quickly, with advice.

The hub is never contacted: HF_ENDPOINT points at a closed local port, and the cache at an empty temp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from langsamp_cli import model_source
from langsamp_cli.errors import LangsampError
from langsamp_cli.model_source import looks_like_path, resolve_model

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens there, so a connect is refused at once
SAMPLE = Path(model_source.__file__).parent / "samples" / "sr-t"


@pytest.fixture
def no_hub(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", CLOSED)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(model_source, "hub_cache_dir", lambda: tmp_path / "hub")
    probe = model_source._probe  # the cached original (a test may replace it)
    probe.cache_clear()
    yield tmp_path / "hub"
    probe.cache_clear()


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    return {**env, "HF_ENDPOINT": CLOSED, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_CACHE": str(tmp_path / "hub")}


def _langsamp(args: list[str], env: dict[str, str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "langsamp_cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    return done, time.perf_counter() - start


@pytest.mark.parametrize("text, is_path", [
    ("./model", True), ("../m", True), ("~/m", True), ("/abs/m", True), ("runs/a/final", True), ("m/", True),
    ("xlm-roberta-base", False), ("FacebookAI/xlm-roberta-base", False), ("cis-lmu/glot500-base", False),
])
def test_what_looks_like_a_path(text, is_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert looks_like_path(text) is is_path


def test_owner_slash_name_is_a_path_when_the_owner_is_a_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_like_path("runs/missing")
    (tmp_path / "runs").mkdir()
    assert looks_like_path("runs/missing")


def test_existing_directory_is_returned_expanded(tiny_model_dir, no_hub):
    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir)


def test_missing_local_path_names_it_without_touching_the_network(tmp_path, no_hub, monkeypatch):
    monkeypatch.setattr(model_source, "_probe", lambda *a: pytest.fail("probed the hub for a local path"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LangsampError, match=r"--model runs/x/final: no such directory \(.*runs/x/final\)"):
        resolve_model("runs/x/final")


def test_a_file_is_not_a_model_directory(tmp_path, no_hub):
    config = tmp_path / "config.json"
    config.write_text("{}")
    with pytest.raises(LangsampError, match="is a file, not a model directory"):
        resolve_model(str(config))


def test_unreachable_hub_is_one_quick_probe_with_advice(no_hub):
    start = time.perf_counter()
    with pytest.raises(LangsampError) as err:
        resolve_model("xlm-roberta-base")
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "hub is unreachable" in message and "127.0.0.1:9" in message
    assert "HF_HUB_OFFLINE=1" in message and "local checkpoint directory" in message
    assert "\n" not in message


def test_unreachable_hub_with_a_cached_model_says_to_go_offline(no_hub):
    (no_hub / "models--owner--cached" / "snapshots" / "abc").mkdir(parents=True)
    with pytest.raises(LangsampError, match="in the local cache; rerun with HF_HUB_OFFLINE=1"):
        resolve_model("owner/cached")


def test_offline_uses_the_cache_and_never_probes(no_hub, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(model_source, "_probe", lambda *a: pytest.fail("probed the hub while offline"))
    (no_hub / "models--owner--cached" / "snapshots" / "abc").mkdir(parents=True)
    assert resolve_model("owner/cached") == "owner/cached"
    with pytest.raises(LangsampError, match="not in the Hugging Face cache .* HF_HUB_OFFLINE is set"):
        resolve_model("owner/missing")


def test_default_model_wording_asks_for_model_path(no_hub):
    with pytest.raises(LangsampError) as err:
        resolve_model("yihongLiu/LangSAMP", default=True)
    assert "(the default of --model)" in str(err.value) and "pass --model PATH" in str(err.value)
    with pytest.raises(LangsampError) as given:
        resolve_model("yihongLiu/LangSAMP")
    assert "pass --model PATH" not in str(given.value)  # --model was given: do not ask for it


def test_reachable_hub_returns_the_name(no_hub, monkeypatch):
    monkeypatch.setattr(model_source, "_probe", lambda host, port, timeout: (True, ""))
    assert resolve_model("xlm-roberta-base") == "xlm-roberta-base"


# ---------------------------------------------------------------------------- every command, end to end
COMMANDS = {
    "eval sr-t": ["eval", "sr-t", "--data-dir", str(SAMPLE)],
    "eval taxi1500": None,  # needs a data folder: built in the test
    "pretrain": ["pretrain", "--max-steps", "1"],
    "donor": ["donor", "--target", "yue_Hani"],
    "plot-embeddings": ["plot-embeddings"],
    "similarity": None,
}


def _command(name: str, tmp_path: Path) -> list[str]:
    if name == "eval taxi1500":
        data = tmp_path / "taxi"
        data.mkdir()
        for split in ("train", "dev", "test"):
            (data / f"eng_{split}.tsv").write_text("1\tFaith\tIn the beginning\n", encoding="utf-8")
        return ["eval", "taxi1500", "--data-dir", str(data)]
    if name == "similarity":
        data = tmp_path / "par"
        data.mkdir()
        return ["similarity", "--data-dir", str(data)]
    return list(COMMANDS[name])


_SLOW = pytest.mark.slow  # a CLI start each (2-5 s on a loaded machine): the default run keeps two commands
@pytest.mark.parametrize("name", [n if n in ("eval sr-t", "donor") else pytest.param(n, marks=_SLOW) for n in COMMANDS])
@pytest.mark.parametrize("model", ["runs/gone/final", "xlm-roberta-base"])
def test_every_command_fails_fast_with_one_line(name, model, tmp_path):
    (tmp_path / "runs").mkdir()
    done, seconds = _langsamp([*_command(name, tmp_path), "--model", model], _cli_env(tmp_path), tmp_path)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: --model " + model), lines
    expected = "no such directory" if "/" in model else "hub is unreachable"
    assert expected in lines[0]
    assert seconds < 60  # imports on a loaded 2-core machine; before: 17-67 s of HTTP retries after the imports


def test_language_error_comes_before_the_model(tmp_path):
    """Cheap checks first: an unknown language code is reported, not the (missing) model."""
    args = ["eval", "sr-t", "--data-dir", str(SAMPLE), "--languages", "qqq_Fake", "--model", "./no-such-model"]
    done, _ = _langsamp(args, _cli_env(tmp_path), tmp_path)
    assert done.returncode == 2
    assert "--languages" in done.stderr and "no-such-model" not in done.stderr


def test_missing_data_dir_comes_before_the_model(tmp_path):
    args = ["eval", "sr-t", "--data-dir", str(tmp_path / "nowhere"), "--model", "./no-such-model"]
    done, _ = _langsamp(args, _cli_env(tmp_path), tmp_path)
    assert done.returncode == 2
    assert "--data-dir" in done.stderr and "nowhere" in done.stderr and "no-such-model" not in done.stderr


def test_a_silent_hub_is_given_up_after_the_probe_timeout(no_hub, monkeypatch):
    import socket

    calls = []

    def hang(address, timeout):
        calls.append((address, timeout))
        raise socket.timeout("timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    for name in ("xlm-roberta-base", "cis-lmu/glot500-base"):  # two models, one probe
        with pytest.raises(LangsampError, match=r"no answer from 127\.0\.0\.1:9 within 3 s"):
            resolve_model(name)
    assert calls == [(("127.0.0.1", 9), model_source.PROBE_TIMEOUT_S)]


def test_the_probe_goes_to_the_https_proxy_when_one_is_set(no_hub, monkeypatch):
    import socket

    seen = []
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setattr(socket, "create_connection", lambda address, timeout: seen.append(address) or _Closing())
    assert resolve_model("xlm-roberta-base") == "xlm-roberta-base"
    assert seen == [("proxy.example", 3128)]


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
