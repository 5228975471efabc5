#!/usr/bin/env bash
# The glassbox images without a Docker daemon: a Debian base from mmdebstrap, buildah over
# images/*.Dockerfile, uncompressed OCI archives cached by content, loaded into the real node's
# containerd. Usage and details: hack/images.py.
#   hack/images.sh build|load|refs|values|key [operator torch jax serving]
# Needs root for build and load (mmdebstrap, buildah, ctr); refs/values/key only read the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  build)
    # The host tools (a no-op when present): buildah, mmdebstrap, and uidmap/fuse-overlayfs are not
    # needed as root; containerd's ctr comes with the node's packages.
    if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -o DPkg::Lock::Timeout=300 --no-install-recommends buildah mmdebstrap
    fi ;;
esac
exec python3 hack/images.py "$@"
