#!/usr/bin/env bash
# Installs the Debian packages the real node (hack/node.sh) and the daemonless image builds
# (hack/images.sh) need on the host, through apt, only when one is missing: on a machine that has
# them this is a few dpkg-query calls and touches nothing.
#
# Usage: hack/host-packages.sh GROUP...      GROUP: node | images
#   node    containerd, runc, the CNI plugins (/usr/lib/cni), iptables, conntrack, and gcc with a
#           static libc to compile the pause binary
#   images  buildah, mmdebstrap and skopeo
set -euo pipefail

declare -A GROUPS_=(
  [node]="containerd runc containernetworking-plugins iptables conntrack gcc libc6-dev"
  [images]="buildah mmdebstrap skopeo"
)

log() { echo "host-packages: $*" >&2; }

(($#)) || { echo "usage: $0 node|images ..." >&2; exit 2; }
wanted=()
for group in "$@"; do
  [[ -n "${GROUPS_[$group]:-}" ]] || { log "unknown group ${group} (node, images)"; exit 2; }
  read -ra pkgs <<<"${GROUPS_[$group]}"
  wanted+=("${pkgs[@]}")
done

missing=()
for pkg in "${wanted[@]}"; do
  if [[ "$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null)" != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

[[ "$(id -u)" == 0 ]] || { log "missing ${missing[*]} and not root: install them with apt-get"; exit 1; }
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -o DPkg::Lock::Timeout=300 >/dev/null
# --no-install-recommends: containerd would otherwise pull in a systemd unit set-up we never start.
apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=300 "${missing[@]}" >/dev/null
log "installed ${missing[*]}"
