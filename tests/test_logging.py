"""The library's logger: one plain line per message on stderr, and the CLI's --quiet / --verbose."""

from __future__ import annotations

import logging

import pytest

from langsamp_cli.cli import main
from langsamp_cli.logs import setup_logging

LONG = "unit [red]x[/red] :x: " + "word " * 40 + "end"  # markup, an emoji code, longer than any terminal


@pytest.fixture(autouse=True)
def restore_level():
    logger = logging.getLogger("langsamp")
    level, handlers, propagate = logger.level, list(logger.handlers), logger.propagate
    yield
    logger.setLevel(level)
    logger.handlers[:] = handlers
    logger.propagate = propagate


def test_messages_are_one_plain_line(capsys: pytest.CaptureFixture) -> None:
    setup_logging("normal")
    setup_logging("normal")  # set up twice: still one handler, one line per message
    logging.getLogger("langsamp").info(LONG)
    err = capsys.readouterr().err
    assert err == " ".join(LONG.split("\n")) + "\n"


@pytest.mark.parametrize(("verbosity", "shown"), [("quiet", ["warn"]), ("normal", ["info", "warn"]),
                                                   ("verbose", ["debug", "info", "warn"])])
def test_verbosity_levels(verbosity: str, shown: list[str], capsys: pytest.CaptureFixture) -> None:
    logger = setup_logging(verbosity)
    logger.debug("debug")
    logger.info("info")
    logger.warning("warn")
    assert capsys.readouterr().err.split() == shown


@pytest.mark.parametrize(("flags", "level"), [([], logging.INFO), (["--quiet"], logging.WARNING),
                                              (["-v"], logging.DEBUG)])
def test_cli_flags_set_the_level(flags: list[str], level: int, tmp_path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main([*flags, "report", str(tmp_path / "missing")])
    assert logging.getLogger("langsamp").level == level


def test_quiet_and_verbose_together_is_a_one_line_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--quiet", "--verbose", "report"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: --quiet and --verbose: choose one"


def test_stale_unit_warning_reaches_stderr_without_the_cli(tmp_path, capsys: pytest.CaptureFixture) -> None:
    """Library use (nothing set up by the CLI): the default handler prints the warning as one line."""
    from langsamp_cli.logs import get_logger
    from langsamp_cli.results import ResultStore

    logger = logging.getLogger("langsamp")
    logger.handlers[:] = []
    logger.setLevel(logging.NOTSET)
    get_logger()
    store = ResultStore(tmp_path, "sr-t", "model-a", 1, {"pairs": 10}, "acc@10", fingerprint="aaa")
    store.write("deu_Latn", 10, {"acc@10": 0.5})
    other = ResultStore(tmp_path, "sr-t", "model-a", 1, {"pairs": 20}, "acc@10", fingerprint="aaa")
    assert not other.is_done("deu_Latn")
    assert capsys.readouterr().err == ("deu_Latn: stored result was made with other settings (pairs: 10 -> 20); "
                                       "recomputing and replacing it\n")
