"""hack/imagelayout.py: every built image in one OCI layout, blobs shared by digest (the serving image
reuses the torch image's 6.5 GB of layers), one image streamed out as an OCI archive for
`ctr images import -`, and older images dropped with only the blobs nobody else uses."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def layout_mod(monkeypatch):
    spec = importlib.util.spec_from_file_location("glassbox_hack_imagelayout", ROOT / "hack" / "imagelayout.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


def put(root: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def add_image(root: Path, ref: str, layers: list[bytes]) -> dict:
    config = put(root, json.dumps({"ref": ref}).encode())
    manifest = {"schemaVersion": 2, "config": config, "layers": [put(root, x) for x in layers]}
    desc = {**put(root, json.dumps(manifest).encode()), "annotations": {"org.opencontainers.image.ref.name": ref}}
    index_path = root / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {"schemaVersion": 2, "manifests": []}
    index["manifests"].append(desc)
    index_path.write_text(json.dumps(index))
    return desc


def test_images_share_blobs_and_dropping_one_keeps_what_the_other_uses(layout_mod, tmp_path) -> None:
    add_image(tmp_path, "glassbox.local/torch:aaa", [b"torch layer"])
    serving = add_image(tmp_path, "glassbox.local/serving:bbb", [b"torch layer", b"kserve layer"])
    old = add_image(tmp_path, "glassbox.local/torch:old", [b"old torch layer"])
    lay = layout_mod.Layout(tmp_path)
    assert len(list((tmp_path / "blobs" / "sha256").iterdir())) == 3 + (4 - 1) + 3  # config, manifest, layers; the torch layer once

    assert lay.remove(lambda r: r == "glassbox.local/torch:old") == ["glassbox.local/torch:old"]
    assert lay.find("glassbox.local/torch:old") is None and not lay.blob(old["digest"]).exists()
    assert lay.find("glassbox.local/serving:bbb") == serving and lay.find("glassbox.local/torch:aaa")
    assert lay.remove(lambda r: r == "glassbox.local/torch:aaa") == ["glassbox.local/torch:aaa"]
    assert all(lay.blob(d).exists() for d in lay.blobs_of(serving)), "serving still needs the torch layer"


def test_an_image_with_a_missing_blob_is_not_found(layout_mod, tmp_path) -> None:
    desc = add_image(tmp_path, "glassbox.local/jax:k", [b"jax layer"])
    lay = layout_mod.Layout(tmp_path)
    lay.blob(lay.blobs_of(desc)[-1]).unlink()
    assert lay.find("glassbox.local/jax:k") is None


def test_tar_image_is_an_oci_archive_of_that_image_only(layout_mod, tmp_path) -> None:
    add_image(tmp_path, "glassbox.local/torch:aaa", [b"torch layer"])
    serving = add_image(tmp_path, "glassbox.local/serving:bbb", [b"torch layer", b"kserve layer"])
    lay = layout_mod.Layout(tmp_path)
    out = io.BytesIO()
    lay.tar_image("glassbox.local/serving:bbb", out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        names = tf.getnames()
        index = json.load(tf.extractfile("index.json"))
        assert json.load(tf.extractfile("oci-layout")) == {"imageLayoutVersion": "1.0.0"}
    assert index["manifests"] == [serving]
    assert sorted(names) == sorted(["oci-layout", "index.json",
                                    *(f"blobs/sha256/{d.split(':')[1]}" for d in lay.blobs_of(serving))])
    assert lay.size("glassbox.local/serving:bbb") == sum(lay.blob(d).stat().st_size for d in lay.blobs_of(serving))
    with pytest.raises(KeyError):
        lay.tar_image("glassbox.local/torch:nope", io.BytesIO())


def test_tar_image_leaves_out_the_layers_containerd_has_but_never_manifest_or_config(layout_mod, tmp_path) -> None:
    serving = add_image(tmp_path, "glassbox.local/serving:bbb", [b"torch layer", b"kserve layer"])
    lay = layout_mod.Layout(tmp_path)
    manifest, config, torch_layer, kserve_layer = lay.blobs_of(serving)
    out = io.BytesIO()
    lay.tar_image("glassbox.local/serving:bbb", out, have=frozenset({manifest, config, torch_layer}))
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
        blobs = {n.rsplit("/", 1)[-1] for n in tf.getnames() if n.startswith("blobs/")}
    assert blobs == {d.split(":")[1] for d in (manifest, config, kserve_layer)}
