#!/usr/bin/env bash
# The whole test suite from a fresh machine: a virtual environment with every extra, the pinned
# Kubernetes/etcd/KWOK/helm/S3 binaries built once into ~/.cache/glassbox, then pytest.
# Extra arguments go to pytest (e.g. `bash hack/test.sh -m "not slow" tests/unit`).
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${GLASSBOX_VENV:-.venv}
PY=${PYTHON:-python3}
start=$(date +%s)

# The whole suite (no test path, no -m/-k selection) needs the real tests' images. Their build
# (hack/images.sh: cached by content, a no-op when built) is mostly downloads and file copies, so on
# a cold machine it starts now, beside the Python set-up and the Go builds below; the real tests'
# fixture takes the same build lock and then finds them built (or builds what failed here, and says
# why). GLASSBOX_TEST_REAL_IMAGES=0 leaves it out, as it does for the fixture.
has_path=0
selects=0
for arg in "$@"; do
  case "$arg" in -m*|-k*) selects=1 ;; esac
  if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then has_path=1; fi
done
whole_suite=$(( has_path == 0 && selects == 0 ))
images_pid=""
images_log="${TMPDIR:-/tmp}/glassbox-test-images.$$.log"
if [ "$whole_suite" = 1 ] && [ "${GLASSBOX_TEST_REAL_IMAGES:-1}" != "0" ] && [ "$(id -u)" = 0 ]; then
  bash hack/images.sh build > "$images_log" 2>&1 &
  images_pid=$!
  echo "test.sh: building the real tests' images in the background (log: $images_log)"
fi
images_done() {
  [ -n "$images_pid" ] || return 0
  set +e
  wait "$images_pid"
  local images_rc=$?
  set -e
  images_pid=""
  echo "test.sh: background image build exited ${images_rc} (log: $images_log)"
  if [ "$images_rc" -ne 0 ]; then tail -n 20 "$images_log" | sed 's/^/  /'; fi
}

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

# A test path among the arguments: one pytest session over exactly that.
if [ "$has_path" = 1 ]; then
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
fi

# The whole suite: two pytest sessions at once, each with its own session fixtures. The system lane
# (tests/cluster, tests/e2e, tests/real) mostly waits on controllers, pods and servers and leaves a
# core idle about half the time (vmstat over tests/cluster, 2-core machine); the unit lane
# (tests/unit) is CPU-bound and fills it. Lines carry their lane's name; each lane prints its own
# failures and durations. GLASSBOX_TEST_LANES=1 runs the suite as one session instead.
if [ "${GLASSBOX_TEST_LANES:-2}" = "1" ]; then
  lanes=("all:tests")
else
  lanes=("system:tests --ignore=tests/unit" "unit:tests/unit")
fi
pids=()
names=()
trap 'kill "${pids[@]}" ${images_pid} 2>/dev/null || true' INT TERM
for lane in "${lanes[@]}"; do
  name="${lane%%:*}"
  # shellcheck disable=SC2086  # the lane's paths are words
  (
    set +e -o pipefail
    "$VENV/bin/python" -m pytest -o cache_dir=".pytest_cache/lane-${name}" ${lane#*:} "$@" 2>&1 \
      | sed -u "s/^/[${name}] /"
    exit "${PIPESTATUS[0]}"
  ) &
  pids+=("$!")
  names+=("$name")
done
rc=0
ran=0
for i in "${!pids[@]}"; do
  set +e
  wait "${pids[$i]}"
  lane_rc=$?
  set -e
  echo "test.sh: lane ${names[$i]} exited ${lane_rc} at $(( $(date +%s) - start ))s"
  # 5: this lane selected no test (e.g. -m real leaves the unit lane empty); the suite as a whole
  # must still have run some.
  if [ "$lane_rc" -eq 5 ]; then continue; fi
  ran=1
  if [ "$lane_rc" -ne 0 ] && [ "$rc" -eq 0 ]; then rc=$lane_rc; fi
done
images_done
if [ "$ran" -eq 0 ]; then
  echo "test.sh: pytest collected no tests: that is a failure, not a pass" >&2
  exit 1
fi
echo "test.sh: finished in $(( $(date +%s) - start ))s with exit code $rc"
exit "$rc"
