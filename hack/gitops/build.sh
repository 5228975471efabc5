#!/usr/bin/env bash
# Builds glassbox-health (this folder's Go module) once per content: the binary goes to
#   ${GLASSBOX_CACHE:-$HOME/.cache/glassbox}/bin/glassbox-health-<hash>/glassbox-health
# where <hash> is a sha256 of this folder's go.mod, go.sum and *.go files, so an edit builds a new
# entry and a warm run only hashes a few files. Prints the binary's path on stdout.
# Usage: hack/gitops/build.sh [--print]   (--print: only print the path, build nothing)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"

key="$(cd "${HERE}" && LC_ALL=C ls go.mod go.sum ./*.go | while read -r f; do echo "${f}"; cat "${f}"; done \
  | sha256sum | cut -c1-12)"
dest="${CACHE}/bin/glassbox-health-${key}"
if [[ "${1:-}" == "--print" || -x "${dest}/glassbox-health" ]]; then
  echo "${dest}/glassbox-health"
  exit 0
fi

log() { echo "gitops/build.sh: $*" >&2; }
command -v go >/dev/null || { log "go is not on PATH: cannot build glassbox-health"; exit 1; }
mkdir -p "${CACHE}/bin"
exec 8>"${CACHE}/.gitops-build.lock"
flock 8
if [[ ! -x "${dest}/glassbox-health" ]]; then
  start=${SECONDS}
  tmp="$(mktemp -d "${dest}.tmp.XXXXXX")"
  chmod 0755 "${tmp}"
  # Static, no VCS stamp, go.sum as committed, never a silent toolchain download; modules come
  # through the machine's own Go settings as they are.
  if ! (cd "${HERE}" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly" \
      go build -trimpath -ldflags "-s -w" -o "${tmp}/glassbox-health" .) >&2; then
    rm -rf "${tmp}"
    log "FAILED to build glassbox-health"
    exit 1
  fi
  rm -rf "${dest}"
  mv -T "${tmp}" "${dest}"
  log "built glassbox-health-${key} in $((SECONDS - start))s"
fi
echo "${dest}/glassbox-health"
