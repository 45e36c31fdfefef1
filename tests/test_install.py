"""The built wheel carries everything the package reads at run time, and works from outside the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "langsamp_cli"


def _build_wheel(out: Path) -> Path:
    """Built from a copy of the sources, so no build/ folder is left in (or reused from) the checkout."""
    src = out / "src"
    skip = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "runs", "results", "__pycache__")
    shutil.copytree(REPO, src, ignore=skip)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(src)], check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("langsamp_cli-*.whl")
    return wheel


def _package_files() -> set[str]:
    """Every file under langsamp_cli/ that a run may read (sources and data), as wheel member names."""
    return {
        path.relative_to(REPO).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_wheel_contains_every_package_file(tmp_path):
    wheel = _build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        members = set(archive.namelist())
    missing = sorted(_package_files() - members)
    assert missing == []
    # the data the commands read by name, spelled out so an empty folder cannot pass
    for name in ("task_configs/sr-t.yaml", "task_configs/base.yaml", "task_configs/experiments/cpu-demo.yaml",
                 "task_configs/languages/xlmr_head.tsv", "task_configs/languages/families.tsv",
                 "demo_corpus/texts/eng_Latn.txt", "samples/sr-t/tatoeba.fra_Latn-eng_Latn.fra_Latn"):
        assert f"langsamp_cli/{name}" in members


def test_task_configs_are_read_from_the_package_not_the_repository_root():
    from langsamp_cli.languages import LANGUAGE_TABLES
    from langsamp_cli.task_config import available_tasks, config_dir

    assert config_dir() == PACKAGE / "task_configs"
    assert LANGUAGE_TABLES == PACKAGE / "task_configs" / "languages"
    assert not (REPO / "task_configs").exists()
    assert {"sr-b", "sr-t", "taxi1500", "sib200", "ner", "pos"} <= set(available_tasks())


def test_bundled_sr_t_sample_is_line_aligned():
    sample = PACKAGE / "samples" / "sr-t"
    for lang in ("fra_Latn", "rus_Cyrl", "zho_Hani"):
        target = (sample / f"tatoeba.{lang}-eng_Latn.{lang}").read_text(encoding="utf-8").splitlines()
        english = (sample / f"tatoeba.{lang}-eng_Latn.eng_Latn").read_text(encoding="utf-8").splitlines()
        assert len(target) == len(english) == 40
        assert all(target) and all(english) and target != english


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_runs_the_cli():
    """The CI smoke script: wheel -> fresh venv in a temp dir -> --version, demo pretrain, eval sr-t from there."""
    env = {k: v for k, v in os.environ.items() if k != "LANGSAMP_TASK_CONFIGS"}
    env["PYTHON"] = sys.executable
    done = subprocess.run(["bash", str(REPO / "scripts" / "wheel_smoke.sh")], env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "langsamp 0.1.0" in done.stdout
    assert "fra_Latn: n=40" in done.stdout + done.stderr
    assert "wheel smoke test passed" in done.stdout


def test_own_task_folder_can_include_the_built_in_templates(tmp_path, monkeypatch):
    from langsamp_cli.task_config import available_tasks, load_task_config

    (tmp_path / "mini-sr.yaml").write_text("include: _retrieval.yaml\ntask: mini-sr\npairs: 50\n", encoding="utf-8")
    monkeypatch.setenv("LANGSAMP_TASK_CONFIGS", str(tmp_path))
    assert available_tasks() == ["mini-sr"]
    config = load_task_config("mini-sr")
    assert (config["type"], config["metric"], config["pairs"], config["source_lang"]) == \
        ("retrieval", "acc@10", 50, "eng_Latn")  # from _retrieval.yaml and base.yaml inside the package
