#!/usr/bin/env bash
# The glassbox images without a Docker daemon: a Debian base from mmdebstrap, buildah over
# images/*.Dockerfile, uncompressed OCI archives cached by content, loaded into the real node's
# containerd. Usage and details: hack/images.py.
#   hack/images.sh build|load|refs|values|key... [operator torch jax serving]   (e.g. build load)
# Needs root for build and load (mmdebstrap, buildah, ctr); refs/values/key only read the tree.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" build "*)
    # The host tools (a no-op when present): buildah, mmdebstrap, skopeo (writes the archives),
    # python3-venv (the host's pip fills the wheelhouse from a venv where python3 has none). As
    # root no uidmap or fuse-overlayfs is needed; ctr comes with the node's containerd.
    if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null || ! command -v skopeo >/dev/null || ! python3 -c 'import ensurepip' 2>/dev/null; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -o DPkg::Lock::Timeout=300 --no-install-recommends buildah mmdebstrap skopeo python3-venv
    fi ;;
esac
exec python3 hack/images.py "$@"
