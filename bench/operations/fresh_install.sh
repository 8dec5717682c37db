#!/usr/bin/env bash
# Issue 14 item 3, the whole check a new user makes (too slow for the test suite: two virtual
# environments and every dependency installed from the package index):
#
#   bash bench/operations/fresh_install.sh [REPO]      # REPO: a checkout (default: this one)
#
# 1. a fresh clone of REPO's HEAD; `pip install .` (NOT editable) into a fresh venv;
# 2. a wheel built from that clone, installed into a second fresh venv;
# and with each, from a folder outside any checkout, stdout piped, COLUMNS=80:
#   harness --version; harness demo (TSV rows, no drawn table, no cut value);
#   harness init ws; in ws: harness keywords validate, harness config show (the workspace's
#   store, no Python None), harness run --dry-run probes/demo.yaml (nothing sent).
# Prints one line per step with its time; exits non-zero at the first failure.
# The suite keeps the fast part: tests/test_cli_install.py builds the wheel, checks what it
# carries and runs it from another folder on the suite's own dependencies (CI: in a fresh venv).
set -euo pipefail
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export COLUMNS=80
unset HARNESS_STORE HARNESS_CONFIG || true

step() {  # step NAME COMMAND...: run, time, fail loudly
  local name=$1; shift
  local t0=$(date +%s.%N)
  if ! "$@" >"$work/out" 2>"$work/err"; then
    echo "FAIL $name"; tail -20 "$work/err"; exit 1
  fi
  printf '%-40s %6.1f s\n' "$name" "$(echo "$(date +%s.%N) - $t0" | bc)"
}

git clone -q "$repo" "$work/src"
check() {  # check LABEL VENV
  local label=$1 venv=$2 here="$work/elsewhere-$1"
  mkdir -p "$here" && cd "$here"
  step "$label: harness --version" "$venv/bin/harness" --version
  grep -q '^harness ' "$work/out"
  step "$label: harness demo (piped)" "$venv/bin/harness" demo
  grep -q $'^change\tplatform\tterm' "$work/out" && ! grep -q '[┏│…]' "$work/out"
  step "$label: harness init ws" "$venv/bin/harness" init ws
  cd ws
  step "$label: keywords validate" "$venv/bin/harness" keywords validate
  step "$label: config show" "$venv/bin/harness" config show
  grep -q "^store	$here/ws/results/harness.db	" "$work/out" && ! grep -qw None "$work/out"
  step "$label: run --dry-run probes/demo.yaml" "$venv/bin/harness" run --dry-run probes/demo.yaml
  cd /
}

python3 -m venv "$work/venv-sdist"
step "pip install . (not editable)" bash -c "cd '$work/src' && '$work/venv-sdist/bin/pip' install -q ."
check "pip install ." "$work/venv-sdist"

step "pip wheel" "$work/venv-sdist/bin/pip" wheel -q --no-deps -w "$work/dist" "$work/src"
python3 -m venv "$work/venv-wheel"
step "pip install the wheel" bash -c "'$work/venv-wheel/bin/pip' install -q '$work'/dist/*.whl"
check "wheel" "$work/venv-wheel"
echo "ok: installed twice, demo and init work outside the checkout"
