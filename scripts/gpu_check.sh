#!/usr/bin/env bash
# The GPU check in one command: the test suite, both GPU benchmarks, and a short summary.
#
#   scripts/gpu_check.sh                 # from the repo root, on a machine with a CUDA GPU
#   scripts/gpu_check.sh --quick         # smaller benchmark runs (a few minutes in all)
#   scripts/gpu_check.sh --tests-only    # only the test suite
#   scripts/gpu_check.sh --require-gpu   # no GPU is a failure (exit 3) instead of a message
#
# Environment: PYTHON (default python3, else python), PYTEST_WORKERS (default 4), RESULTS_DIR (where the
# benchmark JSON goes; default benchmarks/results, next to the CPU results), LOG_DIR (default a temp dir).
# The repo root is put in front of PYTHONPATH, so an image without the package installed works as
# documented (PYTHONPATH=/tmp/site:. scripts/gpu_check.sh).
#
# Exit status: 0 everything passed, or no GPU is visible (a one-line message says so; nothing is run);
# 1 tests failed; 2 a benchmark failed (tests passed); 3 no GPU with --require-gpu; 4 no torch; 64 a bad option.
set -u

quick=0 tests_only=0 require_gpu=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --tests-only) tests_only=1 ;;
    --require-gpu) require_gpu=1 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown option $arg (use --quick, --tests-only, --require-gpu)" >&2; exit 64 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 64
root=$(pwd)
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
results_dir=${RESULTS_DIR:-benchmarks/results}
log_dir=${LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")}
mkdir -p "$results_dir" "$log_dir"

if ! gpu=$("$PYTHON" -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' 2>/dev/null); then
  echo "gpu_check: $PYTHON cannot import torch; set PYTHON or PYTHONPATH (e.g. PYTHONPATH=/tmp/site:.)" >&2
  exit 4
fi
if [ -z "$gpu" ]; then
  echo "gpu_check: no CUDA GPU visible to torch on this machine (torch.cuda.is_available() is False); nothing was run. Run it on a GPU machine."
  [ "$require_gpu" = 1 ] && exit 3
  exit 0
fi
echo "gpu_check: $gpu; python $PYTHON; logs in $log_dir"

# 1. The whole test suite (slow tests stay deselected, as by default).
echo "== tests (pytest -n ${PYTEST_WORKERS:-4})"
"$PYTHON" -m pytest -q -p no:cacheprovider -n "${PYTEST_WORKERS:-4}" 2>&1 | tee "$log_dir/pytest.log"
tests_rc=${PIPESTATUS[0]}
tests_line=$(grep -E '(passed|failed|error)' "$log_dir/pytest.log" | tail -n 1)

# 2. Both GPU benchmarks, each writing its *_cuda.json beside the CPU results.
bench_rc=0
retrieval_json="$results_dir/retrieval_speed_cuda.json"
pretrain_json="$results_dir/pretrain_throughput_cuda.json"
if [ "$tests_only" = 0 ]; then
  retrieval_args=(--device cuda --output "$retrieval_json")
  pretrain_args=(--device cuda --output "$pretrain_json")
  if [ "$quick" = 1 ]; then
    retrieval_args+=(--languages 5 --pairs 300)
    pretrain_args+=(--quick)
  fi
  echo "== benchmarks/retrieval_speed.py ${retrieval_args[*]}"
  "$PYTHON" benchmarks/retrieval_speed.py "${retrieval_args[@]}" > "$log_dir/retrieval_speed.log" 2>&1
  retrieval_rc=$?
  tail -n 5 "$log_dir/retrieval_speed.log"
  echo "== benchmarks/pretrain_throughput.py ${pretrain_args[*]}"
  "$PYTHON" benchmarks/pretrain_throughput.py "${pretrain_args[@]}" > "$log_dir/pretrain_throughput.log" 2>&1
  pretrain_rc=$?
  tail -n 12 "$log_dir/pretrain_throughput.log"
  [ "$retrieval_rc" = 0 ] && [ "$pretrain_rc" = 0 ] || bench_rc=2
fi

# 3. Summary.
echo
echo "== gpu_check summary ($gpu)"
echo "tests: ${tests_line:-no pytest summary line (see $log_dir/pytest.log)} [exit $tests_rc]"
if [ "$tests_only" = 0 ]; then
  echo "retrieval_speed: exit $retrieval_rc; pretrain_throughput: exit $pretrain_rc"
  "$PYTHON" - "$retrieval_json" "$pretrain_json" <<'EOF'
import json, sys
from pathlib import Path

def load(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        print(f"  {path}: not written")
        return None

retrieval = load(sys.argv[1])
if retrieval:
    r = retrieval["result"]
    sides = "; ".join(f"{name} {side['sentences_per_s']:,.0f} sent/s, peak {side['peak_gpu_mib']} MiB"
                      for name, side in r["sides"].items())
    print(f"  SR-T {r['languages']} languages, {r['sentences']} sentences: {sides}")
    print(f"  speedup fp32 vs official-style {r['speedup_fp32_vs_official']}x (identical accuracies: "
          f"{r['identical_accuracies_fp32']}); bf16 vs our fp32 {r.get('speedup_bf16_vs_our_fp32')}x; "
          f"targets {r.get('targets')}")
pretrain = load(sys.argv[2])
if pretrain:
    for row in pretrain.get("results", []):
        ours, hf = row.get("ours", {}), row.get("hf_trainer", {})
        share = ours.get("share_of_peak")
        print(f"  pretrain {row.get('setting')} ({row.get('mixed_precision')}): ours {ours.get('tokens_per_wall_s', 0):,.0f} "
              f"tok/s vs HF Trainer {hf.get('tokens_per_wall_s', 0):,.0f} tok/s, speedup {row.get('speedup_wall', 0):.2f}x"
              + (f", {share:.1%} of peak" if share else ""))
EOF
fi
[ "$tests_rc" != 0 ] && exit 1
exit "$bench_rc"
