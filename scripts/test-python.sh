#!/usr/bin/env bash
# The Python package's test (README, "Python"): a fresh virtual environment, the package built
# from crates/convkit-py by pip (maturin is its PEP 517 backend), then pytest. The conformance
# cases run again at every ISA level this CPU has. Extra arguments go to the main pytest run.
# The environment lives in target/py-venv (CONVKIT_PY_VENV overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CONVKIT_PY_VENV:-target/py-venv}
python3 -m venv --clear "$venv"
py="$venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip install -q ./crates/convkit-py pytest 'dask[array,distributed]'

run_pytest() {
  set +e
  "$py" -m pytest -p no:cacheprovider "$@"
  local rc=$?
  set -e
  if [ "$rc" = 5 ]; then
    echo "python: pytest collected no tests" >&2
    exit 1
  fi
  if [ "$rc" != 0 ]; then
    exit "$rc"
  fi
}

run_pytest -q crates/convkit-py/tests "$@"
if [ -x target/release/convkit ]; then
  for level in $(target/release/convkit isa | awk '{print $1}'); do
    echo "python conformance at CONVKIT_MAX_ISA=$level"
    CONVKIT_MAX_ISA=$level run_pytest -q crates/convkit-py/tests/test_conformance.py
  done
fi
