"""Checkpoint loading without pickle (issue 17): the resume state is safetensors + JSON, loading it
runs no code; a checkpoint of an earlier version (optimizer.pt) loads only through torch's
restricted unpickler; a crafted pickle in a published checkpoint, with a manifest that vouches for
it, is refused as bad input naming the file, and its code never runs."""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import pytest
import torch

from glassbox_api.manifest import read_manifest
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.resume_state import load_optimizer, load_rng, save_optimizer, save_rng
from glassbox_workloads.pretrain.export import rng_state
from glassbox_workloads.pretrain.train import TrainHooks, run_pretrain
from glassbox_workloads.runtime.errors import BadInput
from pretrain_tiny import resource, tiny_spec


class Exploit:
    """Unpickling this runs os.system: what a store writer could plant in a checkpoint."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def adam_state() -> dict:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95))
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    sd = opt.state_dict()
    names = ["weight", "bias"]
    return {"state": {names[i]: v for i, v in sd["state"].items()},
            "param_groups": [{**g, "params": [names[i] for i in g["params"]]} for g in sd["param_groups"]]}


def test_optimizer_state_round_trips_exactly_without_pickle(tmp_path: Path) -> None:
    st = adam_state()
    save_optimizer(st, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["optimizer.json", "optimizer.safetensors"]
    back = load_optimizer(tmp_path)
    assert back["param_groups"] == st["param_groups"] and isinstance(back["param_groups"][0]["betas"], tuple)
    assert back["state"].keys() == st["state"].keys()
    for p, entry in st["state"].items():
        for k, v in entry.items():
            assert torch.equal(back["state"][p][k], v) and back["state"][p][k].dtype == v.dtype, (p, k)


def test_rng_state_round_trips_and_replays_the_same_streams(tmp_path: Path) -> None:
    torch.manual_seed(3)
    random.seed(3)
    save_rng(rng_state(), tmp_path)
    want = (torch.rand(4), random.random())
    st = load_rng(tmp_path)
    torch.set_rng_state(st["torch"])
    random.setstate(st["python"])
    got = (torch.rand(4), random.random())
    assert torch.equal(want[0], got[0]) and want[1] == got[1]


def test_a_crafted_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    torch.save({"state": {}, "param_groups": [Exploit(marker)]}, tmp_path / "optimizer.pt")
    with pytest.raises(BadInput) as err:
        load_optimizer(tmp_path)
    assert str(tmp_path / "optimizer.pt") in str(err.value) and "refused to load" in str(err.value)
    assert not marker.exists()


def test_an_earlier_versions_plain_checkpoint_still_loads(tmp_path: Path) -> None:
    st = adam_state()
    torch.save(st, tmp_path / "optimizer.pt")
    back = load_optimizer(tmp_path)
    assert torch.equal(back["state"]["weight"]["exp_avg"], st["state"]["weight"]["exp_avg"])


def test_a_corrupt_safetensors_file_is_bad_input(tmp_path: Path) -> None:
    save_optimizer(adam_state(), tmp_path)
    (tmp_path / "optimizer.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(BadInput, match="optimizer.safetensors: not a safetensors file"):
        load_optimizer(tmp_path)


def _plant(run, marker: Path) -> str:
    """Replace the latest checkpoint's optimizer state by a crafted optimizer.pt and rewrite the
    manifest to vouch for it (a store writer can do both): the checksum passes, the loader must refuse."""
    m = run.read_json("manifest.json")
    entry = m["checkpoints"][-1]
    for name in ("optimizer.safetensors", "optimizer.json"):
        run.delete(f"{entry['path']}/{name}")
    crafted = tmp = run.root / "crafted.pt"
    torch.save({"state": {}, "param_groups": [Exploit(marker)]}, tmp)
    data = crafted.read_bytes()
    tmp.unlink()
    run.put_bytes(f"{entry['path']}/optimizer.pt", data)
    entry["files"] = [f for f in entry["files"] if not f["path"].startswith("optimizer.")]
    entry["files"].append({"path": "optimizer.pt", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
    run.write_json("manifest.json", m)
    return entry["path"]


def test_resuming_from_a_planted_pickle_fails_as_bad_input(tmp_path: Path) -> None:
    spec = tiny_spec()
    store = LocalStore(tmp_path / "store")

    def crash(step: int, stats) -> None:
        if step == 6:
            raise KeyboardInterrupt  # after checkpoint 4

    with pytest.raises(KeyboardInterrupt):
        run_pretrain(resource(spec), store, hooks=TrainHooks(on_step=crash, quiet=True))
    run = store.sub(resource(spec).run_prefix)
    assert [c.step for c in read_manifest(run).checkpoints] == [4]
    marker = tmp_path / "pwned"
    _plant(run, marker)
    with pytest.raises(BadInput) as err:
        run_pretrain(resource(spec), store, hooks=TrainHooks(quiet=True))
    assert "optimizer.pt" in str(err.value) and "refused to load" in str(err.value)
    assert not marker.exists()
