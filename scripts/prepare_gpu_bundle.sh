#!/usr/bin/env bash
# Prepare, on a machine with PyPI and ../shared/data, what an offline GPU machine needs for scripts/gpu_check.sh:
#
#   .whl/        Python 3.12 x86-64 wheels of the dependencies its image lacks (same versions as this venv)
#   .gpu_data/   the part of ../shared/data the GPU retrieval benchmark reads (Tatoeba v1)
#
# Both folders are git-ignored. The script ends by printing the command to run there (wheels installed with
# --target /tmp/site, the checkout and them on PYTHONPATH, LANGSAMP_SHARED_DATA pointing at .gpu_data).
#
#   scripts/prepare_gpu_bundle.sh            # from the repo root, with the project's venv active
#   PYTHON_VERSION=3.11 scripts/prepare_gpu_bundle.sh   # another Python on the GPU machine
set -euo pipefail

cd "$(dirname "$0")/.."
py_version=${PYTHON_VERSION:-3.12}
shared=${LANGSAMP_SHARED_DATA:-../shared/data}
# Not in the GPU image as last listed (docs/scaling.md); typer/click too, so the CLI matches the one tested here.
packages=(faiss-cpu seqeval pycountry langcodes language-data marisa-trie GlotScript adjustText lang2vec typer click)

rm -rf .whl .gpu_data
mkdir -p .whl .gpu_data
for name in "${packages[@]}"; do
  version=$(python -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  if [ -z "$version" ]; then
    echo "prepare_gpu_bundle: $name is not installed in this environment; install the project (pip install -e '.[test]') first" >&2
    exit 2
  fi
  if ! python -m pip download -q --no-deps --only-binary=:all: --python-version "$py_version" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$name==$version" 2>/dev/null; then
    python -m pip wheel -q --no-deps -w .whl "$name==$version"  # pure-Python sdists (seqeval, lang2vec)
  fi
done

if [ -d "$shared/tatoeba/v1" ]; then
  mkdir -p .gpu_data/tatoeba
  cp -r "$shared/tatoeba/v1" .gpu_data/tatoeba/
  # no SOURCES.md: the tests that read the whole data pack skip there, as without ../shared
else
  echo "prepare_gpu_bundle: no $shared/tatoeba/v1; the retrieval benchmark will use generated sentences" >&2
fi

echo "wheels: $(ls .whl | wc -l) files, $(du -sh .whl | cut -f1); data: $(du -sh .gpu_data | cut -f1)"
echo "on the GPU machine (carry .whl and .gpu_data), from the repo root:"
echo "  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&" \
     "PYTHONPATH=/tmp/site:. LANGSAMP_SHARED_DATA=.gpu_data scripts/gpu_check.sh --quick"
