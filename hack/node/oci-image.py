#!/usr/bin/env python3
"""Writes a one-layer OCI image archive (for `ctr images import`) from a directory of files.

The real node needs a pause image and no registry serves one here, so hack/node.sh compiles
Kubernetes' pause.c and packs it with this script. The archive is byte-for-byte reproducible
(fixed mtimes, owners and order), so its digest depends only on what goes in.

Usage: oci-image.py ROOTFS_DIR REF OUT.tar --entrypoint /pause [--user 65535:65535]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path


def _layer(rootfs: Path) -> bytes:
    """The rootfs as a gzipped tar: sorted names, mtime 0, root-owned, modes as on disk."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(rootfs)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return raw.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))
    return f"sha256:{digest}"


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def build(rootfs: Path, ref: str, out: Path, entrypoint: list[str], user: str) -> str:
    """Write the archive; returns the manifest digest."""
    layer_tar = _layer(rootfs)
    layer_gz = gzip.compress(layer_tar, mtime=0)
    config = {
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": entrypoint, "User": user},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(layer_tar).hexdigest()}"]},
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    tmp = out.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as tar:
        layer_digest = _blob(tar, layer_gz)
        config_digest = _blob(tar, config_bytes)
        manifest = {
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": len(layer_gz)}],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifest_digest = _blob(tar, manifest_bytes)
        index = {"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest,
            "size": len(manifest_bytes), "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": ref, "org.opencontainers.image.ref.name": ref},
        }]}
        _add(tar, "index.json", json.dumps(index, sort_keys=True).encode())
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    tmp.rename(out)
    return manifest_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rootfs", type=Path)
    parser.add_argument("ref")
    parser.add_argument("out", type=Path)
    parser.add_argument("--entrypoint", action="append", required=True)
    parser.add_argument("--user", default="65535:65535")
    args = parser.parse_args()
    print(build(args.rootfs, args.ref, args.out, args.entrypoint, args.user))


if __name__ == "__main__":
    main()
