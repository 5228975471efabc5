#!/usr/bin/env bash
# The whole test suite from a fresh machine: a virtual environment with every extra, the pinned
# Kubernetes/etcd/KWOK/helm/S3 binaries built once into ~/.cache/glassbox, then pytest.
# Extra arguments go to pytest (e.g. `bash hack/test.sh -m "not slow" tests/unit`).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${GLASSBOX_VENV:-.venv}
PY=${PYTHON:-python3}
start=$(date +%s)

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# Install only when pyproject.toml or this script (the extras it installs) changed since the last
# successful install.
stamp="$VENV/.glassbox-installed"
want=$(cat pyproject.toml hack/test.sh hack/assets.sh | sha256sum | cut -d" " -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "$VENV/bin/pip" install --quiet --upgrade pip
  # torch first: the rest of the set resolves around it without backtracking.
  "$VENV/bin/pip" install --quiet "torch==2.13.0"
  "$VENV/bin/pip" install --quiet -e ".[dev,train,ray,deepspeed,jax,serve,metrics]"
  VENV="$VENV" bash hack/assets.sh
  echo "$want" > "$stamp"
fi
# Debian's headless Chromium for the UI's browser tests (a no-op once installed).
bash hack/browser.sh
echo "test.sh: python environment ready in $(( $(date +%s) - start ))s"

bash hack/build-bins.sh
echo "test.sh: binaries ready in $(( $(date +%s) - start ))s"

set +e
"$VENV/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
echo "test.sh: finished in $(( $(date +%s) - start ))s with exit code $rc"
exit "$rc"
