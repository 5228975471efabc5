#!/usr/bin/env bash
# The glassbox test cluster: a real kube-apiserver, etcd, kube-controller-manager and kube-scheduler
# started by kwokctl's binary runtime, KWOK faking the node pools and pod lifecycles, the
# third-party CRDs (KubeRay, JobSet, KServe) and an S3 server (versitygw), all on 127.0.0.1.
#
# Usage: hack/cluster.sh up|down|env|status
#   up      build or reuse the binaries (hack/build-bins.sh), start everything, print the env
#   down    stop everything and delete the cluster's state directory
#   env     print export lines: KUBECONFIG, GLASSBOX_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY, PATH
#           (use: eval "$(hack/cluster.sh env)")
#   status  what is running
# Environment:
#   GLASSBOX_CACHE          cache root (default ~/.cache/glassbox): binaries, CRDs, default state
#   GLASSBOX_CLUSTER_NAME   kwokctl cluster name (default glassbox-test)
#   GLASSBOX_CLUSTER_DIR    state directory (default ${GLASSBOX_CACHE}/clusters/<name>)
#   GLASSBOX_CLUSTER_S3     0 to skip the S3 server (the pytest fixtures run their own)
#   GLASSBOX_S3_ACCESS_KEY / GLASSBOX_S3_SECRET_KEY  S3 root credentials (test defaults below)
#   GLASSBOX_REAL_NODE      1: a real node beside the KWOK pools (hack/node.sh: containerd, kubelet,
#                           kube-proxy, CoreDNS); pods reach the apiserver and S3 on the node's bridge
#                           address (hack/node/node.env). One such cluster per machine; give it its own
#                           GLASSBOX_CLUSTER_NAME.
#   GLASSBOX_ENGINES        1 to run KubeRay, JobSet and KServe's controllers too (hack/engines.sh;
#                           default 0: the KWOK test cluster's tests patch those statuses by hand)
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HACK}/versions.env"

CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"
NAME="${GLASSBOX_CLUSTER_NAME:-glassbox-test}"
DIR="${GLASSBOX_CLUSTER_DIR:-${CACHE}/clusters/${NAME}}"
WITH_S3="${GLASSBOX_CLUSTER_S3:-1}"
S3_ACCESS_KEY="${GLASSBOX_S3_ACCESS_KEY:-glassbox-test}"
S3_SECRET_KEY="${GLASSBOX_S3_SECRET_KEY:-glassbox-test-secret}"
REAL_NODE="${GLASSBOX_REAL_NODE:-0}"
# shellcheck source=node/node.env
source "${HACK}/node/node.env"
# Where S3 listens: loopback, or the real node's bridge address, which this host reaches too.
S3_BIND=127.0.0.1
if [[ "${REAL_NODE}" == 1 ]]; then S3_BIND="${NODE_HOST_IP}"; fi

KWOK_DIR="${DIR}/kwok"
KUBECONFIG_PATH="${KWOK_DIR}/clusters/${NAME}/kubeconfig.yaml"
S3_DIR="${DIR}/s3"
ENV_FILE="${DIR}/env.sh"

log() { echo "cluster: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Binary paths from the one table in build-bins.sh (--print builds nothing).
declare -A B=()
load_paths() {
  local line
  while IFS= read -r line; do B["${line%%=*}"]="${line#*=}"; done < <("${HACK}/build-bins.sh" --print)
}

kwokctl_() {
  # KWOK_WORKDIR keeps every cluster file under ${DIR}; --kubeconfig "" leaves ~/.kube/config alone.
  KWOK_WORKDIR="${KWOK_DIR}" "${B[kwokctl]}" --name "${NAME}" "$@"
}
kubectl_() { "${B[kubectl]}" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }

cluster_running() {
  [[ -f "${KUBECONFIG_PATH}" ]] && kubectl_ get --raw /readyz >/dev/null 2>&1
}

write_kwokctl_config() {
  # Every binary is a local path from the cache: kwokctl downloads nothing.
  cat >"${DIR}/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  kubeVersion: ${KUBE_VERSION}
  etcdVersion: ${ETCD_VERSION#v}
  kwokVersion: ${KWOK_VERSION}
  bindAddress: 127.0.0.1
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  disableQPSLimits: true
  quietPull: true
$(real_node_options)
  kubeApiserverBinary: ${B[kube-apiserver]}
  kubeControllerManagerBinary: ${B[kube-controller-manager]}
  kubeSchedulerBinary: ${B[kube-scheduler]}
  kubectlBinary: ${B[kubectl]}
  kwokControllerBinary: ${B[kwok]}
  etcdBinary: ${B[etcd]}
# OwnerReferencesPermissionEnforcement (on in OpenShift and other hardened clusters): setting
# blockOwnerDeletion on a child needs update on the owner's finalizers, so a chart missing that
# rule fails the operator's impersonation test here instead of on such a cluster.
componentsPatches:
- name: kube-apiserver
  extraArgs:
  - key: enable-admission-plugins
    value: OwnerReferencesPermissionEnforcement
$(real_node_apiserver_args)
# One controller-manager and one scheduler: no leader election. With it, a lease renewal that
# timed out under load (a 1000-object benchmark, deleting its namespaces) made both exit for good,
# and every later test waited on Jobs that never got pods.
- name: kube-controller-manager
  extraArgs:
  - key: leader-elect
    value: "false"
- name: kube-scheduler
  extraArgs:
  - key: leader-elect
    value: "false"
$(real_node_kwok_args)
EOF
}

# kwokctl's binary runtime runs KWOK with --manage-all-nodes: it would fake the real node's status
# and its pods (pod IPs from its own range) against the kubelet. Only the annotated nodes are KWOK's.
real_node_kwok_args() {
  [[ "${REAL_NODE}" == 1 ]] || return 0
  cat <<EOF
- name: kwok-controller
  extraArgs:
  - key: manage-all-nodes
    value: "false"
  - key: manage-nodes-with-annotation-selector
    value: kwok.x-k8s.io/node=fake
EOF
}

# The real node's needs: the kubernetes Service's ClusterIP in the serving certificate (in-cluster
# clients dial it), a fixed Service range, and a client certificate for the kubelet API (logs, exec).
# kwokctl's binary runtime wires every component through 127.0.0.1 (etcd, kubeconfigs), so only
# the apiserver listens more widely: on a port chosen here, which hack/node.sh net-up lets in from
# loopback and the pod bridge only; it advertises the bridge address as the kubernetes Service's
# endpoint, and that address and the Service's ClusterIP are in its certificate.
real_node_options() {
  [[ "${REAL_NODE}" == 1 ]] || return 0
  echo "  kubeApiserverPort: $(cat "${DIR}/apiserver-port")"
  echo "  kubeApiserverCertSANs: [${NODE_HOST_IP}, ${NODE_SERVICE_FIRST_IP}]"
}
real_node_apiserver_args() {
  [[ "${REAL_NODE}" == 1 ]] || return 0
  local pki="${KWOK_DIR}/clusters/${NAME}/pki"
  cat <<EOF
  - key: bind-address
    value: 0.0.0.0
  - key: advertise-address
    value: ${NODE_HOST_IP}
  - key: service-cluster-ip-range
    value: ${NODE_SERVICE_CIDR}
  - key: kubelet-preferred-address-types
    value: InternalIP
  - key: kubelet-client-certificate
    value: ${pki}/admin.crt
  - key: kubelet-client-key
    value: ${pki}/admin.key
EOF
}

free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${p}") 2>/dev/null; then echo "${p}"; return 0; fi
  done
  die "no free port found"
}

s3_running() {
  [[ -f "${S3_DIR}/pid" ]] && kill -0 "$(cat "${S3_DIR}/pid")" 2>/dev/null
}

start_s3() {
  if s3_running; then log "S3 already running on $(cat "${S3_DIR}/port")"; return 0; fi
  mkdir -p "${S3_DIR}/data" "${S3_DIR}/versions"
  local port
  port="$(cat "${S3_DIR}/port" 2>/dev/null || free_port)"
  echo "${port}" >"${S3_DIR}/port"
  # setsid: the server outlives this script, in its own session (down kills it by pid).
  ROOT_ACCESS_KEY="${S3_ACCESS_KEY}" ROOT_SECRET_KEY="${S3_SECRET_KEY}" setsid \
    "${B[versitygw]}" --port "${S3_BIND}:${port}" posix --versioning-dir "${S3_DIR}/versions" "${S3_DIR}/data" \
    >"${S3_DIR}/versitygw.log" 2>&1 </dev/null &
  echo $! >"${S3_DIR}/pid"
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://${S3_BIND}:${port}/"; then log "S3 (versitygw) on ${S3_BIND}:${port}"; return 0; fi
    s3_running || { cat "${S3_DIR}/versitygw.log" >&2; die "versitygw exited"; }
    sleep 0.1
  done
  die "versitygw did not answer on ${S3_BIND}:${port}"
}

stop_s3() {
  if s3_running; then
    local pid
    pid="$(cat "${S3_DIR}/pid")"
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${pid}" 2>/dev/null || true
  fi
  rm -f "${S3_DIR}/pid"
}

print_env() {
  local path="" entry
  for entry in "${B[kubectl]}" "${B[helm]}" "${B[kwokctl]}" "${B[etcd]}" "${B[versitygw]}"; do
    path="${path}$(dirname "${entry}"):"
  done
  echo "export KUBECONFIG='${KUBECONFIG_PATH}'"
  if [[ -f "${S3_DIR}/port" ]]; then
    echo "export GLASSBOX_S3_ENDPOINT='http://${S3_BIND}:$(cat "${S3_DIR}/port")'"
    echo "export GLASSBOX_S3_ACCESS_KEY='${S3_ACCESS_KEY}'"
    echo "export GLASSBOX_S3_SECRET_KEY='${S3_SECRET_KEY}'"
  fi
  if [[ "${REAL_NODE}" == 1 ]]; then
    echo "export GLASSBOX_NODE_HOST_IP='${NODE_HOST_IP}'"
    echo "export GLASSBOX_REAL_NODE_NAME='${NODE_NAME}'"
    echo "export GLASSBOX_CONTAINERD_ADDRESS='${NODE_CONTAINERD_SOCKET}'"
    path="${path}$(dirname "${B[crictl]}"):"
  fi
  echo "export PATH='${path}'\"\${PATH}\""
}

node_sh() { GLASSBOX_CLUSTER_NAME="${NAME}" GLASSBOX_CLUSTER_DIR="${DIR}" "${HACK}/node.sh" "$@"; }

up() {
  local start=${SECONDS}
  "${HACK}/build-bins.sh"
  load_paths
  mkdir -p "${DIR}"
  if cluster_running; then
    log "cluster ${NAME} already running (${KUBECONFIG_PATH})"
  else
    # A stopped or half-created cluster of the same name: start clean.
    if [[ -d "${KWOK_DIR}/clusters/${NAME}" ]]; then delete_cluster >/dev/null 2>&1 || true; fi
    # The apiserver listens on the bridge address: the bridge comes first.
    if [[ "${REAL_NODE}" == 1 ]]; then
      free_port >"${DIR}/apiserver-port"
      node_sh net-up "$(cat "${DIR}/apiserver-port")"
    fi
    write_kwokctl_config
    log "creating cluster ${NAME} (Kubernetes ${KUBE_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION}) in ${DIR}"
    # The stages file replaces kwokctl's built-in Stages: pod/node behaviour is exactly hack/cluster/stages.yaml.
    kwokctl_ create cluster --config "${DIR}/kwokctl.yaml" --config "${HACK}/cluster/stages.yaml" \
      --kubeconfig "" --wait 120s --timeout 180s
    local t_cp=$((SECONDS - start))
    # Nodes carry their status (capacity, allocatable): create them, do not server-side apply.
    kubectl_ create -f "${HACK}/cluster/nodes.yaml" >/dev/null
    # Server-side: these CRDs are too large for the last-applied annotation of a client-side apply.
    # One call for all of them; the apiserver digests them while KWOK readies the nodes.
    kubectl_ apply --server-side --field-manager=glassbox-test \
      -f "${CACHE}/crds/kuberay-${KUBERAY_VERSION}" \
      -f "${CACHE}/crds/jobset-${JOBSET_VERSION}" \
      -f "${CACHE}/crds/kserve-${KSERVE_VERSION}" >/dev/null
    kubectl_ wait --for=condition=Ready node --all --timeout=180s >/dev/null
    kubectl_ wait --for=condition=Established crd --all --timeout=180s >/dev/null
    log "control plane in ${t_cp}s; nodes Ready and CRDs established in $((SECONDS - start))s"
  fi
  if [[ "${WITH_S3}" != "0" ]]; then start_s3; fi
  if [[ "${REAL_NODE}" == 1 ]]; then node_sh up; fi
  if [[ "${GLASSBOX_ENGINES:-0}" == "1" ]]; then engines_ up; fi
  print_env >"${ENV_FILE}"
  log "up in $((SECONDS - start))s; use: eval \"\$(${HACK}/cluster.sh env)\""
  cat "${ENV_FILE}"
}

# Stop the cluster's processes and remove its kwokctl workdir.
delete_cluster() {
  local dir="${KWOK_DIR}/clusters/${NAME}" pidfile
  [[ -d "${dir}" ]] || return 0
  # kwokctl delete edits the kubeconfig it is given ("" is refused): give it the cluster's own.
  if ! kwokctl_ delete cluster --kubeconfig "${KUBECONFIG_PATH}"; then
    log "kwokctl delete failed; stopping the processes from their pid files"
  fi
  # Whatever kwokctl left (or could not stop) must not outlive the state directory.
  for pidfile in "${dir}"/pids/*.pid; do
    [[ -f "${pidfile}" ]] || continue
    kill "$(cat "${pidfile}")" 2>/dev/null || true
  done
  rm -rf "${dir}"
}

# hack/engines.sh for this cluster (its state lives in ${DIR}/engines).
# The S3 endpoint as pods see it goes along: KServe's storage initializer downloads from it.
engines_() {
  local s3=""
  if [[ -f "${S3_DIR}/port" ]]; then s3="http://${S3_BIND}:$(cat "${S3_DIR}/port")"; fi
  GLASSBOX_CLUSTER_NAME="${NAME}" GLASSBOX_CLUSTER_DIR="${DIR}" GLASSBOX_ENGINES_S3_ENDPOINT="${s3}" "${HACK}/engines.sh" "$@"
}

down() {
  load_paths
  # Before the cluster goes: engines.sh deletes its webhook configurations while the apiserver answers.
  if [[ -d "${DIR}/engines" ]]; then engines_ down; fi
  # Whether or not GLASSBOX_REAL_NODE is set now: a node this cluster started goes with it.
  if [[ "${REAL_NODE}" == 1 || -d "${DIR}/node" || "$(cat "${NODE_RUN_DIR}/owner" 2>/dev/null)" == "${DIR}" ]]; then
    node_sh down
  fi
  stop_s3
  delete_cluster
  rm -rf "${DIR}"
  log "cluster ${NAME} down"
}

status() {
  load_paths
  if cluster_running; then
    log "cluster ${NAME}: running (${KUBECONFIG_PATH})"
    kubectl_ version 2>/dev/null | sed 's/^/  /' >&2 || true
    kubectl_ get nodes -L glassbox.dev/pool 2>/dev/null | sed 's/^/  /' >&2 || true
  else
    log "cluster ${NAME}: not running"
  fi
  if [[ -d "${DIR}/engines" ]]; then engines_ status || true; fi
  if s3_running; then log "S3: running on ${S3_BIND}:$(cat "${S3_DIR}/port")"; else log "S3: not running"; fi
  if [[ -d "${DIR}/node" ]]; then node_sh status || true; fi
  cluster_running
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env)
    [[ -f "${ENV_FILE}" ]] || die "cluster ${NAME} is not up (no ${ENV_FILE}); run: $0 up"
    cat "${ENV_FILE}" ;;
  status) status ;;
  *) echo "usage: $0 up|down|env|status" >&2; exit 2 ;;
esac
