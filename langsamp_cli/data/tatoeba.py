"""Tatoeba (SR-T) pair files, in either of the two layouts found in the wild.

- Official (Glot500/LangSAMP): ``tatoeba.{lang_Script}-eng_Latn.{lang_Script}`` + ``...eng_Latn``.
- Original LASER release (``data/tatoeba/v1``): ``tatoeba.{xxx}-eng.{xxx}`` + ``tatoeba.{xxx}-eng.eng``
  with LASER's 3-letter codes (``cmn``, ``pes``, ``swh``, ``ber`` ...), mapped to ``xxx_Scrp`` ids by
  :func:`langsamp_cli.languages.laser_code_to_lang_script`.

Both layouts may sit in one directory; when two files claim the same language id the official
one wins and the other is reported as a problem (never silently dropped).
"""

from __future__ import annotations

import re
from pathlib import Path

from langsamp_cli.data.parallel import PairFiles, discover_official_pairs
from langsamp_cli.errors import LangsampError

PREFIX = "tatoeba"
LASER_RE = re.compile(r"^tatoeba\.(?P<code>[a-z]{2,3})-eng\.(?P<side>[a-z]{2,3})$")


def discover_laser_pairs(data_dir: Path) -> tuple[dict[str, PairFiles], dict[str, str]]:
    """LASER-layout pairs keyed by ``xxx_Scrp``; problems maps a code to why it cannot be used."""
    from langsamp_cli.languages import laser_code_to_lang_script

    codes = sorted(
        {m["code"] for p in Path(data_dir).iterdir() if (m := LASER_RE.match(p.name)) and m["side"] in (m["code"], "eng")}
    )
    pairs: dict[str, PairFiles] = {}
    problems: dict[str, str] = {}
    for code in codes:
        try:
            lang_script = laser_code_to_lang_script(code)
        except LangsampError as err:
            problems[code] = f"tatoeba.{code}-eng.{code}: LASER code {code!r} has no language id ({err})"
            continue
        if lang_script in pairs:
            other = pairs[lang_script].code
            problems[code] = f"tatoeba.{code}-eng.{code}: maps to {lang_script}, which tatoeba.{other}-eng.* already provides"
            continue
        pairs[lang_script] = PairFiles(
            lang_script=lang_script,
            target=Path(data_dir) / f"tatoeba.{code}-eng.{code}",
            english=Path(data_dir) / f"tatoeba.{code}-eng.eng",
            code=code,
        )
    return pairs, problems


def discover_tatoeba(data_dir: Path) -> tuple[dict[str, PairFiles], dict[str, str]]:
    """Every Tatoeba pair in ``data_dir`` (both layouts), plus problems keyed by language or code."""
    official = discover_official_pairs(Path(data_dir), PREFIX)
    laser, problems = discover_laser_pairs(Path(data_dir))
    pairs = dict(official)
    for lang_script, files in laser.items():
        if lang_script in pairs:
            problems[files.code] = (
                f"{files.target.name}: {lang_script} is already provided by {pairs[lang_script].target.name}"
            )
        else:
            pairs[lang_script] = files
    return dict(sorted(pairs.items())), problems
