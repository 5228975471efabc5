"""One OCI image layout directory holding every built image (hack/images.py's cache).

Why one directory and not an archive per image: the serving image is the torch image plus a layer,
and torch's layers are 6.5 GB uncompressed; in a layout, images share blobs by digest, so the cache
holds them once. Each image is found by its ref annotation (org.opencontainers.image.ref.name,
what `skopeo copy ... oci:DIR:REF` writes), and `tar_image` streams one image as an OCI archive
(oci-layout, an index with that image only, its blobs) for `ctr images import -`, without writing
the archive to disk. The standard library only.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import IO, Any, Callable, Optional

REF_NAME = "org.opencontainers.image.ref.name"


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root

    def index(self) -> dict[str, Any]:
        path = self.root / "index.json"
        return json.loads(path.read_text()) if path.exists() else {"schemaVersion": 2, "manifests": []}

    def find(self, ref: str) -> Optional[dict[str, Any]]:
        """The manifest descriptor of ref, if the layout holds it with all its blobs."""
        for desc in self.index()["manifests"]:
            if desc.get("annotations", {}).get(REF_NAME) == ref:
                return desc if all(self.blob(d).exists() for d in self.blobs_of(desc)) else None
        return None

    def blob(self, digest: str) -> Path:
        algo, _, hexa = digest.partition(":")
        return self.root / "blobs" / algo / hexa

    def blobs_of(self, desc: dict[str, Any]) -> list[str]:
        """The manifest's digest, then its config's and its layers'."""
        path = self.blob(desc["digest"])
        if not path.exists():
            return [desc["digest"]]
        manifest = json.loads(path.read_bytes())
        return [desc["digest"], manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]

    def size(self, ref: str) -> int:
        desc = self.find(ref)
        return sum(self.blob(d).stat().st_size for d in self.blobs_of(desc)) if desc else 0

    def remove(self, drop: Callable[[str], bool]) -> list[str]:
        """Drop the images whose ref `drop` selects, then every blob no remaining image uses."""
        index = self.index()
        gone = [d.get("annotations", {}).get(REF_NAME, "") for d in index["manifests"]
                if drop(d.get("annotations", {}).get(REF_NAME, ""))]
        index["manifests"] = [d for d in index["manifests"] if not drop(d.get("annotations", {}).get(REF_NAME, ""))]
        if gone:
            tmp = self.root / "index.json.tmp"
            tmp.write_text(json.dumps(index))
            os.replace(tmp, self.root / "index.json")
        used = {b for d in index["manifests"] for b in self.blobs_of(d)}
        for path in sorted((self.root / "blobs").glob("*/*")):
            if f"{path.parent.name}:{path.name}" not in used:
                path.unlink()
        return gone

    def tar_image(self, ref: str, out: IO[bytes], have: frozenset[str] = frozenset()) -> None:
        """Write one image as an OCI archive to out (a pipe): blobs are streamed, not copied. Layers
        whose digest is in `have` are left out: containerd's import takes the ones its content store
        already holds from there (a torch image after a source change sends one small layer, not 6 GB)."""
        desc = self.find(ref)
        if desc is None:
            raise KeyError(ref)
        with tarfile.open(fileobj=out, mode="w|") as tf:
            for name, data in (("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
                               ("index.json", json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            seen: set[str] = set()
            manifest_and_config = self.blobs_of(desc)[:2]
            for digest in self.blobs_of(desc):
                if digest not in seen and (digest in manifest_and_config or digest not in have):
                    seen.add(digest)
                    algo, _, hexa = digest.partition(":")
                    tf.add(str(self.blob(digest)), arcname=f"blobs/{algo}/{hexa}", recursive=False)
