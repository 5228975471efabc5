#!/usr/bin/env bash
# Build KubeRay's operator (the bench's baseline) from its Go module, cached by version like
# hack/build-bins.sh: ${GLASSBOX_CACHE:-~/.cache/glassbox}/bin/kuberay-operator-<version>/ray-operator.
# Prints the binary's path. Only the Go module proxy is needed.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=/dev/null
source "${HERE}/../../hack/versions.env"
CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"
DEST="${CACHE}/bin/kuberay-operator-${KUBERAY_VERSION}"
if [[ ! -x "${DEST}/ray-operator" ]]; then
  mkdir -p "${CACHE}/bin"
  exec 9>"${CACHE}/.build.lock"
  flock 9
  if [[ ! -x "${DEST}/ray-operator" ]]; then
    tmp="$(mktemp -d "${DEST}.tmp.XXXXXX")"
    chmod 0755 "${tmp}"
    start=${SECONDS}
    GOBIN="${tmp}" CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
      go install -trimpath "github.com/ray-project/kuberay/ray-operator@${KUBERAY_VERSION}" >&2 || { rm -rf "${tmp}"; exit 1; }
    mv -T "${tmp}" "${DEST}"
    echo "built kuberay-operator-${KUBERAY_VERSION} in $((SECONDS - start))s" >&2
  fi
fi
echo "${DEST}/ray-operator"
