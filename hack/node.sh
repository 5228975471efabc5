#!/usr/bin/env bash
# The real node of a glassbox test cluster: containerd (Debian's, with its own config and socket),
# runc, the CNI bridge plugin, a kubelet, kube-proxy (iptables mode) and CoreDNS (host processes),
# joined to the cluster hack/cluster.sh started, beside its KWOK pools. hack/cluster.sh calls this
# when GLASSBOX_REAL_NODE=1: `net-up` before the control plane (the apiserver listens on the bridge
# address), `up` once it is Ready, `down` before it stops.
#
# Usage: hack/node.sh net-up|up|down|status|host-state
#   net-up PORT record the host state, create the bridge with the host's pod-network address, and
#               let the apiserver's PORT (it listens on every address) in from loopback and the bridge only
#   up          net-up, packages, binaries, pause image, containerd, CoreDNS, kube-proxy, kubelet; wait Ready
#   down        stop all of it and undo every host change (see below); safe to repeat
#   status      what runs
#   host-state  print what up changes on the host (sysctls, paths, mounts, links, iptables chains,
#               cgroups), for comparing before up with after down
# Environment: the same as hack/cluster.sh (GLASSBOX_CACHE, GLASSBOX_CLUSTER_NAME, GLASSBOX_CLUSTER_DIR).
#
# Where things live (hack/node/node.env has the names and addresses):
#   ${GLASSBOX_CLUSTER_DIR}/node/   configs, logs, pids, the kubelet's root, cert and pod-log dirs, CNI
#   /run/glassbox/                  containerd's socket and state, the recorded host state
#   ${GLASSBOX_CACHE}/containerd/   containerd's root: the images (a cache, like the binaries; kept)
# Host changes undone by down: the sysctls the kubelet, kube-proxy and the bridge plugin flip (their
# values before up are recorded in /run/glassbox/host-before), every mount under the paths above,
# the bridge and veths, network namespaces, the iptables chains kubelet, kube-proxy and this script
# add, the kubepods cgroups, and the host paths the kubelet and containerd create when absent
# (/var/lib/kubelet, /var/log/containers, /var/log/pods, /run/containerd, /run/netns, /var/lib/cni).
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "${HACK}/versions.env"
# shellcheck source=node/node.env
source "${HACK}/node/node.env"

CACHE="${GLASSBOX_CACHE:-${HOME}/.cache/glassbox}"
NAME="${GLASSBOX_CLUSTER_NAME:-glassbox-test}"
DIR="${GLASSBOX_CLUSTER_DIR:-${CACHE}/clusters/${NAME}}"
NODE_DIR="${DIR}/node"
KUBECONFIG_PATH="${DIR}/kwok/clusters/${NAME}/kubeconfig.yaml"
PKI_DIR="${DIR}/kwok/clusters/${NAME}/pki"
RUN="${NODE_RUN_DIR}"
BEFORE="${RUN}/host-before"
CTRD_ROOT="${CACHE}/containerd"
CTRD_STATE="${RUN}/containerd/state"
SOCK="${NODE_CONTAINERD_SOCKET}"

# Sysctls something in up may change; recorded before and restored by down.
SYSCTLS=(vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes net.ipv4.ip_forward
  net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait)
# Host paths the kubelet, containerd and the CNI plugins create whatever their config says.
HOST_PATHS=(/var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /run/netns /var/lib/cni
  /opt/containerd /etc/cni /opt/cni)
# The kubelet's and kube-proxy's iptables chains (and ours) start so; any new one is removed by down.
CHAIN_RE='^(KUBE-|CNI-|GLASSBOX-)'

log() { echo "node: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

declare -A B=()
load_paths() {
  local line
  while IFS= read -r line; do B["${line%%=*}"]="${line#*=}"; done < <("${HACK}/build-bins.sh" --print)
}
kubectl_() { "${B[kubectl]}" --kubeconfig "${KUBECONFIG_PATH}" "$@"; }
crictl_() { "${B[crictl]}" --runtime-endpoint "unix://${SOCK}" --image-endpoint "unix://${SOCK}" "$@"; }
ctr_() { ctr -a "${SOCK}" -n k8s.io "$@"; }

# --- host state ---------------------------------------------------------------------------------

iptables_chains() {
  local cmd table
  for cmd in iptables ip6tables; do
    command -v "${cmd}-save" >/dev/null || continue
    for table in filter nat mangle raw; do
      "${cmd}-save" -t "${table}" 2>/dev/null | sed -n "s/^:\([^ ]*\) .*/${cmd} ${table} \1/p"
    done
  done | sort
}

# Mount points under our paths and the kubelet's (mountinfo field 5, octal escapes kept).
our_mounts() {
  awk '{print $5}' /proc/self/mountinfo | grep -E "^(${NODE_DIR}|${RUN}|${CTRD_ROOT}|/var/lib/kubelet|/run/netns|/run/containerd)(/|$)" || true
}

host_state() {
  local k p
  for k in "${SYSCTLS[@]}"; do echo "sysctl ${k}=$(sysctl -n "${k}" 2>/dev/null || echo absent)"; done
  for p in "${HOST_PATHS[@]}" "${RUN}"; do
    if [[ -e "${p}" ]]; then echo "path ${p} exists"; else echo "path ${p} absent"; fi
  done
  our_mounts | sed 's/^/mount /'
  ip -o link show | awk -F': ' '{print "link " $2}' | sed 's/@.*//' | grep -E " (${NODE_BRIDGE}|veth)" || true
  iptables_chains | sed 's/^/chain /'
  for p in /sys/fs/cgroup/*/kubepods; do [[ -d "${p}" ]] && echo "cgroup ${p}"; done
  return 0
}

record_before() {
  mkdir -p "${RUN}"
  [[ -f "${BEFORE}" ]] && return 0
  local k
  { for k in "${SYSCTLS[@]}"; do echo "sysctl ${k} $(sysctl -n "${k}" 2>/dev/null || echo absent)"; done
    for k in "${HOST_PATHS[@]}"; do [[ -e "${k}" ]] && echo "path ${k}"; done
    iptables_chains | sed 's/^/chain /'
  } >"${BEFORE}.tmp"
  mv "${BEFORE}.tmp" "${BEFORE}"
}

claim_owner() {
  mkdir -p "${RUN}"
  if [[ -f "${RUN}/owner" && "$(cat "${RUN}/owner")" != "${DIR}" ]]; then
    die "the real node already belongs to the cluster in $(cat "${RUN}/owner") (one per machine): bring that one down first"
  fi
  echo "${DIR}" >"${RUN}/owner"
}

net_up() {
  local port="${1:-}"
  [[ "$(id -u)" == 0 ]] || die "the real node needs root (containerd, kubelet, bridge, iptables)"
  "${HACK}/host-packages.sh" node
  claim_owner
  record_before
  if ! ip link show "${NODE_BRIDGE}" >/dev/null 2>&1; then
    ip link add "${NODE_BRIDGE}" type bridge
  fi
  local prefix="${NODE_POD_CIDR#*/}"
  ip addr replace "${NODE_HOST_IP}/${prefix}" dev "${NODE_BRIDGE}"
  ip link set "${NODE_BRIDGE}" up
  # Pods talk to this machine and to each other only: nothing from the pod network is forwarded to
  # another interface (the bridge plugin turns on ip_forward; ClusterIPs are DNATed before FORWARD).
  if ! iptables -nL GLASSBOX-NODE >/dev/null 2>&1; then
    iptables -N GLASSBOX-NODE
    iptables -A GLASSBOX-NODE -i "${NODE_BRIDGE}" ! -o "${NODE_BRIDGE}" -j REJECT
    iptables -I FORWARD 1 -j GLASSBOX-NODE
  fi
  # Nothing of ours answers on another interface: the apiserver (on 0.0.0.0, kwokctl's doing) and
  # whatever listens on the bridge address take connections from loopback and pods only.
  if [[ -n "${port}" ]] && ! iptables -nL GLASSBOX-INPUT >/dev/null 2>&1; then
    local cmd
    for cmd in iptables ip6tables; do
      "${cmd}" -N GLASSBOX-INPUT
      "${cmd}" -A GLASSBOX-INPUT -i lo -j RETURN
      "${cmd}" -A GLASSBOX-INPUT -i "${NODE_BRIDGE}" -j RETURN
      "${cmd}" -A GLASSBOX-INPUT -p tcp --dport "${port}" -j DROP
      "${cmd}" -I INPUT 1 -j GLASSBOX-INPUT
    done
    iptables -A GLASSBOX-INPUT -d "${NODE_POD_CIDR}" -j DROP
  fi
  log "bridge ${NODE_BRIDGE} ${NODE_HOST_IP}/${prefix}"
}

# --- daemons -------------------------------------------------------------------------------------

running() { [[ -f "${NODE_DIR}/pids/$1" ]] && kill -0 "$(cat "${NODE_DIR}/pids/$1")" 2>/dev/null; }

start_daemon() {
  local name="$1"; shift
  if running "${name}"; then return 0; fi
  mkdir -p "${NODE_DIR}/pids" "${NODE_DIR}/logs"
  # setsid: outlives this script in its own session; down stops it by pid.
  setsid "$@" >"${NODE_DIR}/logs/${name}.log" 2>&1 </dev/null &
  echo $! >"${NODE_DIR}/pids/${name}"
}

stop_daemon() {
  local name="$1" pid
  running "${name}" || { rm -f "${NODE_DIR}/pids/${name}"; return 0; }
  pid="$(cat "${NODE_DIR}/pids/${name}")"
  kill "${pid}" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.1; done
  kill -9 "${pid}" 2>/dev/null || true
  rm -f "${NODE_DIR}/pids/${name}"
}

wait_for() {  # wait_for WHAT SECONDS CMD...
  local what="$1" secs="$2"; shift 2
  for _ in $(seq 1 $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "${what} not ready after ${secs}s (logs in ${NODE_DIR}/logs)"
}

# shellcheck source=node/configs.sh
source "${HACK}/node/configs.sh"

pause_image() {
  # Cached by the pause version and the bytes of everything that makes the archive.
  local src key out tmp
  src="$(cd "${HACK}/gomod/kubernetes" && GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' k8s.io/kubernetes)/build/pause/linux/pause.c"
  [[ -f "${src}" ]] || die "no pause.c in the k8s.io/kubernetes module (${src})"
  key="$(cat "${src}" "${HACK}/node/oci-image.py" | sha256sum | cut -c1-12)"
  out="${CACHE}/images/pause-${PAUSE_VERSION}-${key}.tar"
  if [[ ! -f "${out}" ]]; then
    tmp="$(mktemp -d)"
    mkdir -p "${tmp}/rootfs" "${CACHE}/images"
    gcc -Os -Wall -Werror -static -DVERSION="v${PAUSE_VERSION}-glassbox" -o "${tmp}/rootfs/pause" "${src}"
    strip "${tmp}/rootfs/pause"
    python3 "${HACK}/node/oci-image.py" "${tmp}/rootfs" "${PAUSE_IMAGE}" "${out}" --entrypoint /pause >/dev/null
    rm -rf "${tmp}"
    log "pause image ${PAUSE_IMAGE} built: ${out}"
  fi
  echo "${out}"
}

up() {
  local start=${SECONDS} archive
  net_up
  load_paths
  local b
  for b in kubelet kube-proxy coredns crictl; do [[ -x "${B[$b]}" ]] || die "no ${B[$b]}: run hack/build-bins.sh"; done
  [[ -f "${KUBECONFIG_PATH}" ]] || die "no cluster ${NAME} (${KUBECONFIG_PATH}): hack/cluster.sh up starts it"
  archive="$(pause_image)"
  mkdir -p "${NODE_DIR}" "${CTRD_ROOT}" "${CTRD_STATE}"
  write_configs
  start_daemon containerd containerd --config "${NODE_DIR}/containerd.toml"
  wait_for containerd 30 ctr_ version
  if ! ctr_ images ls -q | grep -qx "${PAUSE_IMAGE}"; then
    ctr_ images import --no-unpack "${archive}" >/dev/null
  fi
  start_daemon coredns "${B[coredns]}" -conf "${NODE_DIR}/Corefile"
  start_daemon kube-proxy "${B[kube-proxy]}" --config "${NODE_DIR}/kube-proxy.yaml"
  start_daemon kubelet "${B[kubelet]}" --config "${NODE_DIR}/kubelet.yaml" \
    --kubeconfig "${KUBECONFIG_PATH}" --root-dir "${NODE_DIR}/kubelet" --cert-dir "${NODE_DIR}/pki" \
    --hostname-override "${NODE_NAME}" --node-ip "${NODE_HOST_IP}" \
    --node-labels "glassbox.dev/pool=${NODE_POOL}" --v 1
  wait_for "node ${NODE_NAME} registration" 60 kubectl_ get node "${NODE_NAME}"
  kubectl_ wait --for=condition=Ready "node/${NODE_NAME}" --timeout=120s >/dev/null \
    || die "node ${NODE_NAME} not Ready (kubelet log: ${NODE_DIR}/logs/kubelet.log)"
  log "node ${NODE_NAME} Ready in $((SECONDS - start))s (pool ${NODE_POOL}, containerd ${SOCK})"
}

# --- down ----------------------------------------------------------------------------------------

remove_new_chains() {
  local cmd table chain line
  # Without the record of what was there before, nothing is known to be ours.
  [[ -f "${BEFORE}" ]] || { log "no ${BEFORE}: leaving iptables alone"; return 0; }
  local -a new=()
  mapfile -t new < <(comm -13 <(sed -n 's/^chain //p' "${BEFORE}" 2>/dev/null | sort) <(iptables_chains) \
    | awk -v re="${CHAIN_RE}" '$3 ~ re')
  ((${#new[@]})) || return 0
  # First every rule that jumps to a new chain, then the chains' rules, then the chains.
  for line in "${new[@]}"; do
    read -r cmd table chain <<<"${line}"
    while IFS= read -r rule; do
      eval "${cmd} -t ${table} ${rule/#-A/-D}" 2>/dev/null || true
    done < <("${cmd}-save" -t "${table}" | grep -E -- "^-A .* -j ${chain}( |$)" || true)
  done
  for line in "${new[@]}"; do read -r cmd table chain <<<"${line}"; "${cmd}" -t "${table}" -F "${chain}" 2>/dev/null || true; done
  for line in "${new[@]}"; do read -r cmd table chain <<<"${line}"; "${cmd}" -t "${table}" -X "${chain}" 2>/dev/null || true; done
}

unmount_ours() {
  local m
  # Deepest first; a busy one is detached lazily (its users are gone by now).
  while IFS= read -r m; do
    m="$(printf '%b' "${m}")"
    umount "${m}" 2>/dev/null || umount -l "${m}" 2>/dev/null || log "could not unmount ${m}"
  done < <(our_mounts | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-)
}

kill_shims() {
  # containerd's shims outlive it; ours name our socket on their command line.
  local p
  for p in /proc/[0-9]*; do
    if { tr '\0' ' ' <"${p}/cmdline"; } 2>/dev/null | grep -q -- "-address ${SOCK}"; then
      kill -9 "${p##*/}" 2>/dev/null || true
    fi
  done
}

remove_pods() {
  # Stop and remove every sandbox (CNI DEL removes the veths, netns and IP allocations).
  if [[ -S "${SOCK}" ]] && ctr_ version >/dev/null 2>&1; then
    crictl_ rmp -f -a >/dev/null 2>&1 || log "crictl rmp failed; removing what is left by hand"
  fi
}

restore_host() {
  local k v p
  [[ -f "${BEFORE}" ]] || return 0
  while read -r kind k v; do
    case "${kind}" in
      sysctl) [[ "${v}" == absent ]] || [[ "$(sysctl -n "${k}" 2>/dev/null)" == "${v}" ]] \
                || sysctl -q -w "${k}=${v}" >/dev/null || log "could not restore ${k}=${v}" ;;
    esac
  done <"${BEFORE}"
  for p in "${HOST_PATHS[@]}"; do
    if [[ -e "${p}" ]] && ! grep -qx "path ${p}" "${BEFORE}"; then rm -rf "${p}"; fi
  done
}

down() {
  load_paths
  [[ -d "${NODE_DIR}" || -d "${RUN}" ]] || return 0
  if [[ -f "${RUN}/owner" && "$(cat "${RUN}/owner")" != "${DIR}" ]]; then
    log "the real node belongs to $(cat "${RUN}/owner"), not ${DIR}: leaving it alone"
    rm -rf "${NODE_DIR}"
    return 0
  fi
  stop_daemon kubelet
  if [[ -f "${KUBECONFIG_PATH}" ]]; then
    kubectl_ delete node "${NODE_NAME}" --ignore-not-found --wait=false --request-timeout=10s >/dev/null 2>&1 || true
  fi
  remove_pods
  stop_daemon kube-proxy
  stop_daemon coredns
  stop_daemon containerd
  kill_shims
  # kube-proxy's own clean-up of its iptables/nftables rules, then whatever else is new.
  [[ -x "${B[kube-proxy]:-}" ]] && "${B[kube-proxy]}" --cleanup >/dev/null 2>&1 || true
  unmount_ours
  local link
  for link in $(ip -o link show master "${NODE_BRIDGE}" 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
    ip link del "${link}" 2>/dev/null || true
  done
  ip link del "${NODE_BRIDGE}" 2>/dev/null || true
  remove_new_chains
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d "${cg}" ]] && { find "${cg}" -depth -type d -exec rmdir {} \; 2>/dev/null || log "could not remove ${cg}"; }
  done
  restore_host
  if [[ -n "$(our_mounts)" ]]; then
    our_mounts | sed 's/^/  still mounted: /' >&2
    die "mounts remain; not removing ${NODE_DIR}"
  fi
  rm -rf "${NODE_DIR}" "${RUN}"
  log "node ${NODE_NAME} down; host restored"
}

status() {
  local d
  for d in containerd coredns kube-proxy kubelet; do
    if running "${d}"; then log "${d}: running (pid $(cat "${NODE_DIR}/pids/${d}"))"; else log "${d}: not running"; fi
  done
  running kubelet
}

case "${1:-}" in
  net-up) net_up "${2:-}" ;;
  up) up ;;
  down) down ;;
  status) status ;;
  host-state) host_state ;;
  *) echo "usage: $0 net-up [PORT]|up|down|status|host-state" >&2; exit 2 ;;
esac
