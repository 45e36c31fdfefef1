#!/usr/bin/env bash
# Packaging smoke test: build the wheel, install it into a fresh virtual environment outside the checkout,
# and run the CLI from another directory, so a file the package reads at run time but the wheel lacks fails here.
#
#   scripts/wheel_smoke.sh            # uses .venv/bin/python of this checkout for building and for the deps
#   PYTHON=/path/to/python scripts/wheel_smoke.sh
#
# The fresh venv gets no pip and no copies of torch & co.: a .pth file puts the build interpreter's
# site-packages after its own, and .pth files there (the editable install of this checkout) are not run,
# so `langsamp_cli` can only come from the installed wheel. Checked below, not assumed.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d "${TMPDIR:-/tmp}/langsamp-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { printf '== %s\n' "$*"; }

step "build the wheel"
# From a copy of the source: setuptools leaves build/ behind, and stale files there could slip into a wheel.
mkdir "$work/src"
tar -C "$repo" --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist --exclude='*.egg-info' \
  --exclude=./runs --exclude=./results --exclude=__pycache__ -cf - . | tar -C "$work/src" -xf -
"$python" -m pip wheel --no-deps --no-build-isolation -q -w "$work/dist" "$work/src"
wheel=$(ls "$work"/dist/langsamp_cli-*.whl)

step "install $(basename "$wheel") into a fresh venv in $work/venv"
"$python" -m venv --without-pip "$work/venv"
deps=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
site=$("$work/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n' "$deps" > "$site/zz_build_deps.pth"
"$work/venv/bin/python" -m pip install -q --no-deps --no-compile --disable-pip-version-check "$wheel"

cd "$work"  # never the checkout: nothing may be read from it
export PATH="$work/venv/bin:$PATH" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset LANGSAMP_TASK_CONFIGS
installed=$(python -c 'import langsamp_cli, pathlib; print(pathlib.Path(langsamp_cli.__file__).parent)')
case "$installed" in
  "$site"/*) ;;
  *) echo "FAIL: langsamp_cli imported from $installed, not from the installed wheel in $site" >&2; exit 1 ;;
esac

step "langsamp --version"
langsamp --version

step "demo pretrain, 3 steps"
langsamp pretrain --max-steps 3 --save-every 3 --warmup-steps 1 --no-progress --output-dir "$work/demo"

step "eval sr-t on the bundled sample"
sample="$installed/samples/sr-t"
langsamp eval sr-t --model "$work/demo/final" --data-dir "$sample" --languages fra_Latn,zho_Hani \
  --output-dir "$work/results" --no-cache --max-length 64
test -s "$work/results/sr-t/"*/seedna/results.json || { echo "FAIL: no merged results.json" >&2; exit 1; }

step "the same eval again into the same folder: every unit is reused"
langsamp eval sr-t --model "$work/demo/final" --data-dir "$sample" --languages fra_Latn,zho_Hani \
  --output-dir "$work/results" --no-cache --max-length 64 2>&1 | tee "$work/again.log"
grep -q "0 scored, 0 skipped, 2 already done" "$work/again.log" || { echo "FAIL: units not reused" >&2; exit 1; }

step "tokenizer extend on the bundled corpus, then continue the demo model with it"
langsamp tokenizer extend --base "$work/demo/final" --add 200 --sample-lines 3000 --output-dir "$work/tok"
langsamp pretrain --model "$work/demo/final" --tokenizer "$work/tok" --init-new-tokens subword --max-steps 2 \
  --save-every 2 --warmup-steps 1 --no-progress --output-dir "$work/extended" 2>&1 | tee "$work/extended.log"
grep -q "trained rows, all at their old ids" "$work/extended.log" || { echo "FAIL: no vocabulary line" >&2; exit 1; }

step "task list and language tables come from the wheel"
python - <<'EOF'
from langsamp_cli.languages import groups_for
from langsamp_cli.task_config import available_tasks
tasks = available_tasks()
assert {"sr-b", "sr-t", "taxi1500", "sib200", "ner", "pos"} <= set(tasks), tasks
assert groups_for("fra_Latn")["head_tail"] == "head", groups_for("fra_Latn")
print("tasks:", ", ".join(tasks))
EOF
step "wheel smoke test passed"
