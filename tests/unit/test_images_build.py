"""hack/images.py, the daemonless image build (issue 16): its cache key covers exactly what goes into
an image, the build context it may read is what the Dockerfiles copy, the host's pip configuration
reaches the build steps as pip itself would read it, and `values` points the chart at the built
images in a form the chart accepts."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def images(monkeypatch):
    spec = importlib.util.spec_from_file_location("glassbox_hack_images", ROOT / "hack" / "images.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def tree(images, tmp_path, monkeypatch):
    """A copy of the files the torch and serving images are made of, as the module's ROOT."""
    for rel in ("images/torch.Dockerfile", "images/torch-deps.Dockerfile", "images/serving.Dockerfile",
                "images/requirements.py", "pyproject.toml", "README.md", "hack/assets.sh"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    for pkg in ("api", "operator", "workloads", "ui"):
        (tmp_path / pkg / "pkg").mkdir(parents=True)
        (tmp_path / pkg / "pkg" / "mod.py").write_text("x = 1\n")
    monkeypatch.setattr(images, "ROOT", tmp_path)
    return tmp_path


def test_copy_sources_of_every_dockerfile_are_inside_the_dockerignore_allowlist(images) -> None:
    allowed = {line[1:] for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[[i for i, x in enumerate(lines) if not x.startswith("#")][0]] == "*", "an allowlist starts by excluding all"
    for dockerfile in sorted((ROOT / "images").glob("*.Dockerfile")):
        for source in images.copy_sources(dockerfile):
            assert source.rstrip("/") in allowed, f"{dockerfile.name} copies {source}, which .dockerignore leaves out"


def test_copy_sources_skip_copies_from_other_stages(images, tmp_path) -> None:
    df = tmp_path / "x.Dockerfile"
    df.write_text("FROM a AS build\nCOPY pyproject.toml README.md ./\nCOPY --chown=1:1 api api\n"
                  "FROM b\nCOPY --from=build /opt/venv /opt/venv\n")
    assert images.copy_sources(df) == ["pyproject.toml", "README.md", "api"]


def test_key_changes_with_a_copied_file_and_not_with_an_ignored_one(images, tree) -> None:
    before = images.key("torch")
    (tree / "workloads" / "pkg" / "__pycache__").mkdir()
    (tree / "workloads" / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"junk")
    (tree / "workloads" / "pkg.egg-info").mkdir()
    (tree / "workloads" / "pkg.egg-info" / "PKG-INFO").write_text("junk")
    (tree / "examples").mkdir()
    (tree / "examples" / "x.yaml").write_text("not copied")
    assert images.key("torch") == before
    (tree / "workloads" / "pkg" / "mod.py").write_text("x = 2\n")
    assert images.key("torch") != before


def test_key_changes_with_a_renamed_file_of_the_same_content(images, tree) -> None:
    before = images.key("torch")
    (tree / "api" / "pkg" / "mod.py").rename(tree / "api" / "pkg" / "other.py")
    assert images.key("torch") != before


def test_keys_follow_the_images_they_are_built_from(images, tree) -> None:
    serving, torch, deps = images.key("serving"), images.key("torch"), images.key("torch-deps")
    (tree / "hack" / "assets.sh").write_text("#!/bin/sh\n")  # copied by torch-deps only
    assert images.key("torch-deps") != deps and images.key("torch") != torch and images.key("serving") != serving


def test_a_source_change_leaves_the_dependency_image_as_it_was(images, tree) -> None:
    deps, torch = images.key("torch-deps"), images.key("torch")
    (tree / "workloads" / "pkg" / "mod.py").write_text("x = 3\n")
    assert images.key("torch-deps") == deps and images.key("torch") != torch


def test_key_follows_the_build_args(images, tree, monkeypatch) -> None:
    monkeypatch.setenv("GLASSBOX_IMAGES_JAX_EXTRA", "cpu")
    (tree / "images" / "jax-deps.Dockerfile").write_text("FROM ${BASE}\nCOPY api api\nUSER 65532:65532\n")
    cpu = images.key("jax-deps")
    monkeypatch.setenv("GLASSBOX_IMAGES_JAX_EXTRA", "tpu")
    assert images.key("jax-deps") != cpu


def test_a_copied_path_that_does_not_exist_is_refused_by_name(images, tree) -> None:
    (tree / "images" / "torch.Dockerfile").write_text("FROM ${BASE}\nCOPY nowhere nowhere\n")
    with pytest.raises(SystemExit, match="copies nowhere, which does not exist"):
        images.key("torch")


def test_pip_configuration_is_the_hosts_files_then_its_environment(images, tmp_path, monkeypatch) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\ntimeout = 10\ncert = /from/file.crt\n[install]\nno-compile = yes\n")
    monkeypatch.setattr(images, "PIP_FILES", (str(conf),))
    for var in [v for v in list(__import__("os").environ) if v.startswith("PIP_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PIP_CERT", "/from/env.crt")
    monkeypatch.setenv("PIP_DEFAULT_TIMEOUT", "180")
    cp = images.pip_config()
    assert cp.get("global", "cert") == "/from/env.crt", "the environment wins over files, as in pip"
    assert cp.get("global", "default-timeout") == "180"
    assert cp.get("global", "timeout") == "10" and cp.get("install", "no-compile") == "yes"


def test_mounts_are_read_only_but_the_pip_cache(images, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLASSBOX_CACHE", str(tmp_path / "cache"))
    argv = images.host_mounts(tmp_path / "pip.conf")
    mounts = argv[1::2]
    assert all(a == "-v" for a in argv[::2])
    writable = [m for m in mounts if not m.endswith(":ro")]
    assert writable == [f"{tmp_path / 'cache' / 'images' / 'pip'}:{images.WHEELHOUSE}"]
    assert f"{tmp_path / 'pip.conf'}:/etc/pip.conf:ro" in mounts


def test_torch_dockerfile_pins_the_torch_of_the_train_extra() -> None:
    train = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    pin = next(r for r in train if r.startswith("torch=="))
    assert re.search(rf'pip install \S* ?"{re.escape(pin)}"', (ROOT / "images/torch-deps.Dockerfile").read_text())


def test_values_point_the_chart_at_the_built_refs_and_the_chart_accepts_them(images) -> None:
    from glassbox_operator.values import ChartValues

    from tests.unit.test_chart import merged_values

    over = yaml.safe_load(images.values(list(images.NAMES)))
    chart = ChartValues.model_validate(merged_values(over))
    refs = dict(line.split("=", 1) for line in [f"{n}={images.ref(n)}" for n in images.NAMES])
    assert f"{chart.image.repository}:{chart.image.tag}" == refs["operator"]
    assert chart.image.registry == "" and chart.image.pull_policy == "Never"
    for family in ("torch", "jax", "serving"):
        assert getattr(chart.defaults.images, family) == refs[family]
        assert refs[family].startswith(f"glassbox.local/{family}:")


def test_unknown_image_name_is_refused(images, capsys) -> None:
    assert images.main(["refs", "pytorch"]) == 2
    assert "unknown image(s) pytorch" in capsys.readouterr().err


def test_wheelhouse_holds_the_torch_pin_for_the_torch_dependency_image_only(images) -> None:
    train = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"]
    assert images.wheelhouse_requirements("torch-deps") == [r for r in train if r.startswith("torch==")]
    assert all(images.wheelhouse_requirements(n) == [] for n in images.images() if n != "torch-deps")


def test_commands_combine_and_run_in_order(images, capsys) -> None:
    assert images.main(["key", "refs", "torch"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"torch={images.key('torch')}", f"torch={images.ref('torch')}"]


def test_a_name_before_a_command_is_refused(images) -> None:
    assert images.main(["torch", "build"]) == 2
    assert images.main([]) == 2


@pytest.fixture()
def requirements_mod(monkeypatch):
    spec = importlib.util.spec_from_file_location("glassbox_images_requirements", ROOT / "images" / "requirements.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


PROJECT = {"name": "glassbox", "dependencies": ["pydantic>=2"],
           "optional-dependencies": {"a": ["x==1", "y[extra]>=2; python_version>'3'"], "b": ["z==3", "glassbox[a]"],
                                     "c": ["x==1", "w==4"]}}


def test_requirements_are_the_base_then_each_extra_with_self_references_resolved(requirements_mod) -> None:
    assert requirements_mod.requirements(PROJECT, ["b", "c"]) == ["pydantic>=2", "z==3", "x==1", "y[extra]>=2; python_version>'3'", "w==4"]
    assert requirements_mod.requirements(PROJECT, ["--no-base", "c"]) == ["x==1", "w==4"]


def test_requirements_pick_named_packages_of_an_extra_and_refuse_unknown_ones(requirements_mod) -> None:
    assert requirements_mod.requirements(PROJECT, ["--no-base", "a:y"]) == ["y[extra]>=2; python_version>'3'"]
    with pytest.raises(SystemExit, match="extra a has no nope"):
        requirements_mod.requirements(PROJECT, ["a:nope"])
    with pytest.raises(SystemExit, match="no extra 'd'"):
        requirements_mod.requirements(PROJECT, ["d"])


def test_jax_image_requirements_bring_no_torch(requirements_mod) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    args = re.search(r"requirements\.py (.+?) >", (ROOT / "images/jax-deps.Dockerfile").read_text()).group(1).split()
    names = {requirements_mod.name_of(r) for r in requirements_mod.requirements(project, args)}
    assert {"jax", "flax", "optax", "spacy", "scikit-learn", "nltk", "prometheus-client"} <= names
    assert not names & {"torch", "bert-score", "transformers"}
