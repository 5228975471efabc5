#!/usr/bin/env bash
# Builds the test cluster's binaries from their Go modules and extracts the third-party CRDs,
# cached by version outside the repo:
#   ${GLASSBOX_CACHE:-$HOME/.cache/glassbox}/bin/<name>-<version>/   binaries
#   ${GLASSBOX_CACHE:-$HOME/.cache/glassbox}/crds/<project>-<version>/ CRD YAML
# Idempotent: an entry that exists is complete (each one is built in a temp dir and renamed into
# place), so a warm run only checks directories and never calls go.
# Usage: hack/build-bins.sh [--print]   (--print: only print NAME=PATH lines, build nothing)
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HACK}/versions.env"
# shellcheck source=gitops/versions.env
source "${HACK}/gitops/versions.env"

CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"
BIN="${CACHE}/bin"
CRDS="${CACHE}/crds"

# name -> cache entry; kept in one table so --print, the builders and tests/support/bins.py agree.
declare -A ENTRY=(
  [kube-apiserver]="kubernetes-${KUBE_VERSION}"
  [kube-controller-manager]="kubernetes-${KUBE_VERSION}"
  [kube-scheduler]="kubernetes-${KUBE_VERSION}"
  [kubectl]="kubernetes-${KUBE_VERSION}"
  [etcd]="etcd-${ETCD_VERSION}"
  [kwok]="kwok-${KWOK_VERSION}"
  [kwokctl]="kwok-${KWOK_VERSION}"
  [helm]="helm-${HELM_VERSION}"
  [versitygw]="versitygw-${VERSITYGW_VERSION}"
  # The real node (hack/node.sh, GLASSBOX_REAL_NODE=1).
  [kubelet]="kubernetes-node-${KUBE_VERSION}"
  [kube-proxy]="kubernetes-node-${KUBE_VERSION}"
  [coredns]="coredns-${COREDNS_VERSION}"
  [crictl]="cri-tools-${CRICTL_VERSION}"
  # The engines (hack/engines.sh runs them as host processes when GLASSBOX_ENGINES=1). The
  # KubeRay entry is the one bench/operator/build-kuberay.sh makes: either builds it once.
  [ray-operator]="kuberay-operator-${KUBERAY_VERSION}"
  [jobset-controller]="jobset-${JOBSET_VERSION}"
  [kserve-manager]="kserve-${KSERVE_VERSION}"
)

if [[ "${1:-}" == "--print" ]]; then
  for name in "${!ENTRY[@]}"; do echo "${name}=${BIN}/${ENTRY[$name]}/${name}"; done | sort
  echo "crds=${CRDS}/kuberay-${KUBERAY_VERSION}:${CRDS}/jobset-${JOBSET_VERSION}:${CRDS}/kserve-${KSERVE_VERSION}"
  # KServe's other CRDs: its controller watches them (hack/engines.sh installs them with it).
  echo "engine-crds=${CRDS}/kserve-engine-${KSERVE_VERSION}"
  # GitOps: Flux/Argo CD CRDs (not installed by cluster.sh) and the health helper (hack/gitops).
  echo "gitops-crds=${CRDS}/flux-kustomize-${FLUX_KUSTOMIZE_VERSION}:${CRDS}/flux-source-${FLUX_SOURCE_VERSION}:${CRDS}/argocd-${ARGOCD_VERSION}"
  echo "glassbox-health=$("${HACK}/gitops/build.sh" --print)"
  exit 0
fi

# Static binaries, no VCS stamping (module zips have no .git), and never a silent toolchain
# download: a too-old go fails loudly here instead.
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false -mod=readonly"
# The wrapper modules' go.sum files are committed; modules come through the machine's own Go
# settings (go env GOPROXY / GONOSUMDB ...), as they are: this script names no registry.

mkdir -p "${BIN}" "${CRDS}"
# One builder at a time (two pytest sessions may start together); waiting is cheap, builds are not.
exec 9>"${CACHE}/.build.lock"
flock 9

TOTAL_START=${SECONDS}
BUILT=()

log() { echo "build-bins: $*" >&2; }

# build_entry DIR FUNC: run FUNC TMPDIR unless DIR exists; rename TMPDIR to DIR on success.
build_entry() {
  local dest="$1" fn="$2"
  if [[ -d "${dest}" ]]; then return 0; fi
  command -v go >/dev/null || { log "go is not on PATH: cannot build $(basename "${dest}")"; exit 1; }
  local tmp start
  tmp="$(mktemp -d "${dest}.tmp.XXXXXX")"
  chmod 0755 "${tmp}"  # mktemp makes it private; the cache serves every user of the machine
  start=${SECONDS}
  log "building $(basename "${dest}") ..."
  if ! "${fn}" "${tmp}"; then
    rm -rf "${tmp}"
    log "FAILED: $(basename "${dest}")"
    exit 1
  fi
  mv -T "${tmp}" "${dest}"
  local took=$((SECONDS - start))
  BUILT+=("$(basename "${dest}") (${took}s)")
  log "built $(basename "${dest}") in ${took}s"
}

kube_ldflags() {
  local v="${KUBE_VERSION}" major minor flags="-s -w"
  major="${v#v}"; major="${major%%.*}"
  minor="${v#v*.}"; minor="${minor%%.*}"
  # The same -X lines Kubernetes' hack/lib/version.sh writes, so `kube-apiserver --version`,
  # /version and kwokctl's version probe all report ${KUBE_VERSION}.
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=" -X ${pkg}.gitVersion=${v} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    flags+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=1970-01-01T00:00:00Z"
    flags+=" -X ${pkg}.gitCommit=${v}"
  done
  echo "${flags}"
}

build_kubernetes() {
  # One `go build` for the four commands so they share the compilation of common packages.
  (cd "${HACK}/gomod/kubernetes" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$1/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl)
}

build_kubernetes_node() {
  # A second build of the same module: the control-plane entry stays as it was, and the compiled
  # packages the two share come from Go's build cache.
  (cd "${HACK}/gomod/kubernetes" && go build -trimpath -ldflags "$(kube_ldflags)" -o "$1/" \
    k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy)
}

build_coredns() {
  GOBIN="$1" GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}" \
    "github.com/coredns/coredns@${COREDNS_VERSION}"
}

build_crictl() {
  GOBIN="$1" GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=${CRICTL_VERSION}" \
    "sigs.k8s.io/cri-tools/cmd/crictl@${CRICTL_VERSION}"
}

build_etcd() {
  (cd "${HACK}/gomod/etcd" && go build -trimpath -ldflags "-s -w" -o "$1/etcd" go.etcd.io/etcd/server/v3)
}

build_kwok() {
  GOBIN="$1" GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
}

build_helm() {
  GOBIN="$1" GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
}

build_versitygw() {
  GOBIN="$1" GOFLAGS=-buildvcs=false go install -trimpath \
    -ldflags "-s -w -X main.Version=${VERSITYGW_VERSION} -X main.Build=${VERSITYGW_VERSION}" \
    "github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}"
}

build_kuberay() {
  GOBIN="$1" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" \
    "github.com/ray-project/kuberay/ray-operator@${KUBERAY_VERSION}"
}

build_jobset() {
  (cd "${HACK}/gomod/jobset" && go build -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/jobset/pkg/version.GitVersion=${JOBSET_VERSION} -X sigs.k8s.io/jobset/pkg/version.GitCommit=${JOBSET_VERSION}" \
    -o "$1/jobset-controller" sigs.k8s.io/jobset)
}

build_kserve() {
  # KServe's controller (cmd/manager), through its wrapper module like JobSet's.
  (cd "${HACK}/gomod/kserve" && go build -trimpath -ldflags "-s -w" -o "$1/kserve-manager" \
    github.com/kserve/kserve/cmd/manager)
}

# module_dir MOD@VER: the extracted module directory (downloads it through the proxy if needed).
module_dir() {
  local out dir scratch
  # Outside any module, so no go.mod or go.sum is touched.
  scratch="$(mktemp -d)"
  out="$(cd "${scratch}" && GOFLAGS= go mod download -json "$1")" || { rm -rf "${scratch}"; log "go mod download $1 failed: ${out:-}"; return 1; }
  rm -rf "${scratch}"
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"${out}")"
  [[ -n "${dir}" && -d "${dir}" ]] || { log "no Dir for $1: ${out}"; return 1; }
  echo "${dir}"
}

# copy_crds DEST MOD@VER GLOB...: copy the module files matching GLOB (relative paths) into DEST.
copy_crds() {
  local dest="$1" mod="$2" dir f n=0
  shift 2
  dir="$(module_dir "${mod}")" || return 1
  for pattern in "$@"; do
    for f in ${dir}/${pattern}; do
      [[ -f "${f}" ]] || { log "missing in ${mod}: ${pattern}"; return 1; }
      cp "${f}" "${dest}/" && n=$((n + 1))
    done
  done
  chmod -R u+w "${dest}"
  log "  ${n} CRD files from ${mod}"
}

crds_kuberay() { copy_crds "$1" "github.com/ray-project/kuberay/ray-operator@${KUBERAY_VERSION}" 'config/crd/bases/ray.io_*.yaml'; }
crds_jobset() { copy_crds "$1" "sigs.k8s.io/jobset@${JOBSET_VERSION}" 'config/components/crd/bases/jobset.x-k8s.io_jobsets.yaml'; }
crds_kserve() {
  copy_crds "$1" "github.com/kserve/kserve@${KSERVE_VERSION}" \
    'config/crd/full/serving.kserve.io_inferenceservices.yaml' \
    'config/crd/full/serving.kserve.io_servingruntimes.yaml' \
    'config/crd/full/serving.kserve.io_clusterservingruntimes.yaml'
}
# The CRDs KServe's controller watches beyond the three the test cluster always installs.
crds_kserve_engine() {
  copy_crds "$1" "github.com/kserve/kserve@${KSERVE_VERSION}" \
    'config/crd/full/serving.kserve.io_inferencegraphs.yaml' \
    'config/crd/full/serving.kserve.io_trainedmodels.yaml' \
    'config/crd/full/serving.kserve.io_localmodelcaches.yaml' \
    'config/crd/full/serving.kserve.io_localmodelnodegroups.yaml' \
    'config/crd/full/serving.kserve.io_localmodelnodes.yaml' \
    'config/crd/full/serving.kserve.io_clusterstoragecontainers.yaml'
}

crds_flux_kustomize() {
  copy_crds "$1" "github.com/fluxcd/kustomize-controller@${FLUX_KUSTOMIZE_VERSION}" 'config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml'
}
crds_flux_source() {
  copy_crds "$1" "github.com/fluxcd/source-controller@${FLUX_SOURCE_VERSION}" 'config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml'
}
crds_argocd() { copy_crds "$1" "github.com/argoproj/argo-cd/v3@${ARGOCD_VERSION}" 'manifests/crds/application-crd.yaml'; }

build_entry "${BIN}/kubernetes-${KUBE_VERSION}" build_kubernetes
build_entry "${BIN}/etcd-${ETCD_VERSION}" build_etcd
build_entry "${BIN}/kwok-${KWOK_VERSION}" build_kwok
build_entry "${BIN}/helm-${HELM_VERSION}" build_helm
build_entry "${BIN}/versitygw-${VERSITYGW_VERSION}" build_versitygw
build_entry "${BIN}/kubernetes-node-${KUBE_VERSION}" build_kubernetes_node
build_entry "${BIN}/coredns-${COREDNS_VERSION}" build_coredns
build_entry "${BIN}/cri-tools-${CRICTL_VERSION}" build_crictl
build_entry "${BIN}/kuberay-operator-${KUBERAY_VERSION}" build_kuberay
build_entry "${BIN}/jobset-${JOBSET_VERSION}" build_jobset
build_entry "${BIN}/kserve-${KSERVE_VERSION}" build_kserve
build_entry "${CRDS}/kuberay-${KUBERAY_VERSION}" crds_kuberay
build_entry "${CRDS}/jobset-${JOBSET_VERSION}" crds_jobset
build_entry "${CRDS}/kserve-${KSERVE_VERSION}" crds_kserve
build_entry "${CRDS}/kserve-engine-${KSERVE_VERSION}" crds_kserve_engine
build_entry "${CRDS}/flux-kustomize-${FLUX_KUSTOMIZE_VERSION}" crds_flux_kustomize
build_entry "${CRDS}/flux-source-${FLUX_SOURCE_VERSION}" crds_flux_source
build_entry "${CRDS}/argocd-${ARGOCD_VERSION}" crds_argocd
# glassbox-health (hack/gitops), cached by a hash of its sources; it keeps its own lock.
"${HACK}/gitops/build.sh" >/dev/null

# A binary missing from a complete entry means a broken cache: say which, do not guess.
for name in "${!ENTRY[@]}"; do
  p="${BIN}/${ENTRY[$name]}/${name}"
  [[ -x "${p}" ]] || { log "missing ${p}: remove ${BIN}/${ENTRY[$name]} and rerun"; exit 1; }
done

if ((${#BUILT[@]})); then
  log "built ${BUILT[*]}; total $((SECONDS - TOTAL_START))s (cache ${CACHE})"
else
  log "all binaries and CRDs cached in ${CACHE} (nothing to build)"
fi
