#!/usr/bin/env bash
# Build s5cmd (the upload bench's second baseline: the S3 copy tool people pick for checkpoints) from
# its Go module, cached by version like hack/build-bins.sh:
# ${GLASSBOX_CACHE:-~/.cache/glassbox}/bin/s5cmd-<version>/s5cmd. Prints the binary's path.
# Only the Go module proxy is needed (through the machine's own `go env` settings).
set -euo pipefail
# github.com/peak/s5cmd/v2 (MIT). The proxy lists no versions of it; this exact one is served.
S5CMD_VERSION="${S5CMD_VERSION:-v2.3.0}"
CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"
DEST="${CACHE}/bin/s5cmd-${S5CMD_VERSION}"
if [[ ! -x "${DEST}/s5cmd" ]]; then
  mkdir -p "${CACHE}/bin"
  exec 9>"${CACHE}/.build.lock"
  flock 9
  if [[ ! -x "${DEST}/s5cmd" ]]; then
    tmp="$(mktemp -d "${DEST}.tmp.XXXXXX")"
    chmod 0755 "${tmp}"
    start=${SECONDS}
    # `go install MOD@VER` asks the proxy for the module's version list (to report deprecation),
    # which it refuses for this module; so fetch the exact version and build it from a copy (module zips carry no vendor/ files; go.sum pins every dependency).
    scratch="$(mktemp -d)"
    trap 'rm -rf "${scratch}"' EXIT
    dir="$(cd "${scratch}" && GOFLAGS= go mod download -json "github.com/peak/s5cmd/v2@${S5CMD_VERSION}" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [[ -n "${dir}" && -d "${dir}" ]] || { echo "go mod download s5cmd ${S5CMD_VERSION} failed" >&2; rm -rf "${tmp}"; exit 1; }
    cp -r "${dir}" "${scratch}/src" && chmod -R u+w "${scratch}/src" && rm -rf "${scratch}/src/vendor"
    (cd "${scratch}/src" && CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=mod" \
      go build -trimpath -ldflags "-s -w -X github.com/peak/s5cmd/v2/version.Version=${S5CMD_VERSION}" \
      -o "${tmp}/s5cmd" .) >&2 || { rm -rf "${tmp}"; exit 1; }
    mv -T "${tmp}" "${DEST}"
    echo "built s5cmd-${S5CMD_VERSION} in $((SECONDS - start))s" >&2
  fi
fi
echo "${DEST}/s5cmd"
