"""The glassbox images without a Docker daemon (run through hack/images.sh; the standard library only).

    hack/images.sh build [NAMES]   build what is missing: a Debian base rootfs (mmdebstrap), then
                                   buildah over images/<name>.Dockerfile; each result, with
                                   uncompressed layers, in one OCI layout in the cache (blobs shared),
                                   under a ref keyed by the content that went in
    hack/images.sh load [NAMES]    stream each as an OCI archive into the real node's containerd
                                   (namespace k8s.io), skipping images already there by digest
    hack/images.sh refs [NAMES]    `name=ref` lines (glassbox.local/<name>:<content key>)
    hack/images.sh values [NAMES]  a helm values file pointing the chart at those refs
    hack/images.sh key [NAMES]     `name=key` lines
Commands combine: `hack/images.sh build load` builds what is missing, then loads every image.

NAMES default to every image the chart's defaults and the operator render: operator, torch, jax,
serving. torch and jax are built FROM torch-deps and jax-deps (their dependencies, keyed by what they
copy: pyproject.toml, not the sources), so a source change rebuilds a small layer, not 6 GB; serving
is built FROM torch. Parents are built first when missing. Why each piece:
- Keys: a sha256 over exactly what goes in (the Dockerfile, the build args, the files its COPY lines
  name, the key of the image it is FROM), so an unchanged tree is never rebuilt and a changed one
  always is. Images live in GLASSBOX_CACHE/images/oci (default ~/.cache/glassbox/images/oci), an OCI
  layout (hack/imagelayout.py: why one layout for all), older keys dropped by the next build.
- The host's own pip and apt configuration and CA bundle are bind-mounted into the build steps, never
  baked into a layer, and no registry host is named here: a build reaches what the host reaches.
- A pip cache under GLASSBOX_CACHE/images/pip is bind-mounted too, so torch's 4 GB of wheels are
  downloaded once per machine however often the images are rebuilt. pip's HTTP cache keeps only
  responses with caching headers (package proxies may send none), so the big wheels (torch's pin
  and its nvidia-* and triton dependencies) are fetched into a wheelhouse there first by the host's
  own pip (`pip download`: the same python 3.11 wheels), which the build steps read with
  --find-links; pip's cache keeps the wheels it builds from sdists.
- buildah's storage lives in the cache too (its own root), and images leave it once in the layout:
  the layout is the cache, containerd the runtime copy; only the base stays.

Environment: GLASSBOX_CACHE, GLASSBOX_CONTAINERD_ADDRESS (default
/run/glassbox/containerd/containerd.sock), GLASSBOX_IMAGES_JAX_EXTRA (default cpu: the test image).
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagelayout import Layout  # noqa: E402  (hack/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = "glassbox.local"
NAMES = ("operator", "torch", "jax", "serving")  # what the chart and the operator run
KEY_VERSION = "glassbox-images 2"  # 2: uncompressed layers
BASE_KEY_VERSION = "glassbox-images 1"
# Files a COPY never takes (.dockerignore leaves them out of the build context too).
IGNORED_PARTS = {"__pycache__", ".pytest_cache"}
IGNORED_SUFFIXES = (".pyc", ".egg-info")

# The base rootfs: Debian bookworm with python3 (3.11) and its venv module; everything else comes from
# the Dockerfiles. Changing this recipe changes every key.
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_HOOK = ('rm -f "$1"/etc/apt/sources.list "$1"/etc/apt/apt.conf.d/99mmdebstrap; '
             'find "$1"/etc/apt/sources.list.d -mindepth 1 -delete')


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, the image its FROM names (a build arg), and its other build args."""

    name: str
    from_arg: str
    parent: str  # "base" or another image's name
    args: tuple[tuple[str, str], ...] = ()

    @property
    def dockerfile(self) -> Path:
        return ROOT / "images" / f"{self.name}.Dockerfile"


def images() -> dict[str, Image]:
    """Every image images/ builds: the four the chart and the operator name, and the dependency
    images torch and jax are built FROM (so a source change rebuilds only glassbox's own layer)."""
    jax_extra = os.environ.get("GLASSBOX_IMAGES_JAX_EXTRA", "cpu")
    return {
        "operator": Image("operator", "BASE", "base"),
        "torch-deps": Image("torch-deps", "BASE", "base"),
        "torch": Image("torch", "TORCH_DEPS_IMAGE", "torch-deps"),
        "jax-deps": Image("jax-deps", "BASE", "base", (("JAX_EXTRA", jax_extra),)),
        "jax": Image("jax", "JAX_DEPS_IMAGE", "jax-deps"),
        "serving": Image("serving", "TORCH_IMAGE", "torch"),
    }


def copy_sources(dockerfile: Path) -> list[str]:
    """The build-context paths the Dockerfile's COPY/ADD lines take (not `COPY --from=stage`)."""
    out: list[str] = []
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]):
            continue
        out.extend(args[:-1])
    return out


def context_files(source: str) -> Iterator[Path]:
    """The files a COPY of `source` takes from the repository, sorted, ignored ones left out."""
    path = ROOT / source
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise SystemExit(f"images: a Dockerfile copies {source}, which does not exist")
    for p in sorted(path.rglob("*")):
        rel = p.relative_to(ROOT)
        if p.is_file() and not IGNORED_PARTS.intersection(rel.parts) \
                and not any(part.endswith(IGNORED_SUFFIXES) for part in rel.parts):
            yield p


def base_key() -> str:
    recipe = json.dumps([BASE_KEY_VERSION, BASE_SUITE, BASE_PACKAGES, BASE_HOOK])
    return hashlib.sha256(recipe.encode()).hexdigest()[:20]


def key(name: str) -> str:
    """The content key of an image: what goes in, and nothing else."""
    img = images()[name]
    h = hashlib.sha256()
    parent = base_key() if img.parent == "base" else key(img.parent)
    h.update(json.dumps([KEY_VERSION, name, parent, list(img.args)]).encode())
    h.update(img.dockerfile.read_bytes())
    for source in copy_sources(img.dockerfile):
        for f in context_files(source):
            h.update(f"\0{f.relative_to(ROOT).as_posix()}\0".encode())
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:20]


def ref(name: str) -> str:
    return f"{REGISTRY}/{name}:{key(name)}"


def base_ref() -> str:
    return f"{REGISTRY}/base:{base_key()}"


def cache_dir() -> Path:
    return Path(os.environ.get("GLASSBOX_CACHE") or Path.home() / ".cache" / "glassbox") / "images"


def layout() -> Layout:
    """The OCI layout holding every built image, by ref (blobs shared: serving reuses torch's)."""
    return Layout(cache_dir() / "oci")


def built(name: str) -> bool:
    return layout().find(ref(name)) is not None


def log(msg: str) -> None:
    print(f"images: {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    log("$ " + shlex.join(argv))
    return subprocess.run(argv, check=True, **kw)


def buildah(*args: str) -> list[str]:
    """buildah on the cache's own storage (overlay driver: vfs would copy every layer in full)."""
    store = cache_dir() / "storage"
    return ["buildah", "--root", str(store / "root"), "--runroot", str(store / "run"),
            "--storage-driver", "overlay", *args]


def storage_spec() -> str:
    """The storage buildah uses, as a containers-storage: reference prefix (for skopeo)."""
    store = cache_dir() / "storage"
    return f"[overlay@{store / 'root'}+{store / 'run'}]"


def has_image(image_ref: str) -> bool:
    return subprocess.run(buildah("inspect", "--type", "image", image_ref), capture_output=True).returncode == 0


# --- the host's configuration, bind-mounted into build steps ---------------------------------------

PIP_FILES = ("/etc/xdg/pip/pip.conf", "/etc/pip.conf", "~/.pip/pip.conf", "~/.config/pip/pip.conf")
APT_PATHS = ("/etc/apt/sources.list", "/etc/apt/sources.list.d", "/etc/apt/apt.conf.d",
             "/etc/apt/trusted.gpg.d", "/etc/apt/auth.conf.d", "/etc/apt/preferences.d")
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
# Where the build steps see the host's pip cache (and its wheelhouse, wheels/).
WHEELHOUSE = "/var/cache/glassbox-pip"


def pip_config() -> configparser.ConfigParser:
    """The host's effective pip configuration, in pip's own order (files, PIP_CONFIG_FILE, then PIP_*
    environment variables, later wins), as one file the build steps read as /etc/pip.conf."""
    cp = configparser.ConfigParser(interpolation=None)
    files = [os.path.expanduser(f) for f in PIP_FILES] + [os.environ.get("PIP_CONFIG_FILE", "")]
    cp.read([f for f in files if f and os.path.isfile(f)])
    for var, value in sorted(os.environ.items()):
        if var.startswith("PIP_") and var != "PIP_CONFIG_FILE":
            if not cp.has_section("global"):
                cp.add_section("global")
            cp.set("global", var[4:].lower().replace("_", "-"), value)
    return cp


def host_mounts(pip_conf: Path) -> list[str]:
    """`-v` options: the pip cache, pip's configuration, the CA bundle(s) it and apt use, apt's
    configuration, all read-only except the cache."""
    with pip_conf.open("w") as f:
        cfg = pip_config()
        cfg.write(f)
    mounts = [f"{cache_dir() / 'pip'}:{WHEELHOUSE}", f"{pip_conf}:/etc/pip.conf:ro"]
    certs = {CA_BUNDLE} | {v for s in cfg.sections() for k, v in cfg.items(s) if k in ("cert", "client-cert")}
    mounts += [f"{c}:{c}:ro" for c in sorted(certs) if os.path.isfile(c)]
    mounts += [f"{p}:{p}:ro" for p in APT_PATHS if os.path.exists(p)]
    return [a for m in mounts for a in ("-v", m)]


# --- build ------------------------------------------------------------------------------------------

def build_base() -> None:
    """The base rootfs from mmdebstrap (the host's apt sources and options, removed again from the
    rootfs by the hook), committed with buildah under the name the Dockerfiles' FROM gets."""
    if has_image(base_ref()):
        return
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        tar = Path(tmp) / "rootfs.tar"
        sources = [p for p in ["/etc/apt/sources.list", *sorted(map(str, Path("/etc/apt/sources.list.d").glob("*")))]
                   if os.path.isfile(p) and os.path.getsize(p) > 0 and p.endswith((".list", ".sources"))]
        aptopts = [a for p in sorted(Path("/etc/apt/apt.conf.d").glob("*")) if p.is_file() for a in ("--aptopt", str(p))]
        run(["mmdebstrap", "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), *aptopts,
             "--customize-hook=" + BASE_HOOK, BASE_SUITE, str(tar), *sources])
        ctr = subprocess.run(buildah("from", "scratch"), check=True, capture_output=True, text=True).stdout.strip()
        try:
            run(buildah("add", ctr, str(tar), "/"))
            run(buildah("config", "--cmd", "/bin/bash", ctr))
            run(buildah("commit", "--rm", ctr, base_ref()))
        except BaseException:
            subprocess.run(buildah("rm", ctr), capture_output=True)
            raise


def parent_ref(img: Image) -> str:
    """The image FROM names, present in buildah's storage (an archived parent is pulled back in)."""
    if img.parent == "base":
        build_base()
        return base_ref()
    parent = ref(img.parent)
    if not has_image(parent):
        report(build_one(img.parent))
    if not has_image(parent):
        # skopeo, not `buildah pull oci:...`, which names the image after the layout's path.
        run(["skopeo", "copy", "--quiet", f"oci:{layout().root}:{parent}", f"containers-storage:{storage_spec()}{parent}"])
        if not has_image(parent):
            raise SystemExit(f"images: {parent} from {layout().root} did not load as {parent}")
    return parent


def wheelhouse_requirements(name: str) -> list[str]:
    """What the host downloads into the wheelhouse before building an image: torch (the train
    extra's pin, the one images/torch-deps.Dockerfile installs) with its dependencies."""
    if name != "torch-deps":
        return []
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return [r for r in extras["train"] if re.match(r"torch\b", r)]


def host_pip() -> list[str]:
    """The host's pip (its own configuration applies), or one in a venv of the cache where the host
    python has none (Debian's python3 without python3-pip)."""
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [sys.executable, "-m", "pip"]
    venv = cache_dir() / "host-pip"
    if not (venv / "bin" / "pip").exists():
        run([sys.executable, "-m", "venv", str(venv)])
    return [str(venv / "bin" / "pip")]


def fill_wheelhouse(name: str) -> None:
    reqs = wheelhouse_requirements(name)
    if not reqs:
        return
    wheels = cache_dir() / "pip" / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    run([*host_pip(), "download", "--quiet", "--only-binary=:all:", "--python-version", "3.11",
         "--dest", str(wheels), "--find-links", str(wheels), *reqs])


def build_one(name: str) -> dict:
    """Build one image unless the layout holds its key; returns what was done and how long it took.
    The key is taken once, before the build: a tree edited during a build is caught by the next."""
    image_ref = ref(name)
    if layout().find(image_ref) is not None:
        return {"name": name, "ref": image_ref, "built": False, "seconds": 0.0, "bytes": layout().size(image_ref)}
    img = images()[name]
    started = time.monotonic()
    parent = parent_ref(img)
    (cache_dir() / "pip").mkdir(parents=True, exist_ok=True)
    fill_wheelhouse(name)
    pip_opts = f"--cache-dir={WHEELHOUSE} --find-links={WHEELHOUSE}/wheels"
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        args = [a for k, v in (*img.args, (img.from_arg, parent), ("PIP_CACHE", pip_opts)) for a in ("--build-arg", f"{k}={v}")]
        run(buildah("bud", "--isolation", "chroot", "--pull=never", "--layers=false", "-f", str(img.dockerfile),
                    "-t", image_ref, *args, *host_mounts(Path(tmp) / "pip.conf"), str(ROOT)))
    # skopeo, not `buildah push`: OCI destinations gzip every layer unless told to accept
    # uncompressed ones (buildah push --disable-compression is ignored for them).
    run(["skopeo", "copy", "--quiet", "--dest-oci-accept-uncompressed-layers",
         f"containers-storage:{storage_spec()}{image_ref}", f"oci:{layout().root}:{image_ref}"])
    return {"name": name, "ref": image_ref, "built": True, "seconds": round(time.monotonic() - started, 1),
            "bytes": layout().size(image_ref)}


def prune_store() -> None:
    """Empty buildah's storage but for the current base: a built image lives in the layout (a child
    build pulls its parent back in), and older keys are of no use."""
    listed = subprocess.run(buildah("images", "--format", "{{.Name}}:{{.Tag}}"), capture_output=True, text=True,
                            check=True).stdout.split()
    keep = {base_ref()} | {ref(n) for n in images() if not built(n)}
    ours = [r for r in listed if r.split("/", 1)[-1].split(":")[0] in (*images(), "base") and r not in keep]
    if ours:
        run(buildah("rmi", *ours))


def drop_stale(names: list[str]) -> None:
    """Older keys of these images leave the layout (with the blobs only they used): a tree needs
    only its current ones, and torch's are 6.5 GB. Archives of earlier versions of this script too."""
    current = {ref(n) for n in names}
    stale = layout().remove(lambda r: r.startswith(tuple(f"{REGISTRY}/{n}:" for n in names)) and r not in current)
    for r in stale:
        log(f"dropped {r} (an older key)")
    for old in [p for n in names for p in cache_dir().glob(f"{n}-*.oci.tar")]:
        log(f"removing {old.name} (an archive of an earlier version of this script)")
        old.unlink()


def build(names: list[str]) -> None:
    """Build what is missing; one build at a time per cache (a lock), whoever started it."""
    import fcntl

    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        build_locked(names)


def build_locked(names: list[str]) -> None:
    layout().root.mkdir(parents=True, exist_ok=True)
    drop_stale(list(images()))
    for name in names:
        report(build_one(name))
    prune_store()


def report(r: dict) -> None:
    """One line per image: built (with its time, its parents' included) or cached, and its size."""
    print(f"{r['name']}: {'built' if r['built'] else 'cached'} {r['ref']} {r['bytes'] / 2**30:.2f} GiB"
          f"{' in %.0f s' % r['seconds'] if r['built'] else ''}", flush=True)


# --- load, refs, values -----------------------------------------------------------------------------

def containerd() -> str:
    return os.environ.get("GLASSBOX_CONTAINERD_ADDRESS", "/run/glassbox/containerd/containerd.sock")


def loaded_digest(image_ref: str) -> Optional[str]:
    out = subprocess.run(["ctr", "-a", containerd(), "-n", "k8s.io", "images", "ls", f"name=={image_ref}"],
                         check=True, capture_output=True, text=True).stdout.splitlines()[1:]
    return out[0].split()[2] if out else None


def content_digests() -> frozenset[str]:
    """The blobs containerd's content store holds (what an import need not send again)."""
    out = subprocess.run(["ctr", "-a", containerd(), "-n", "k8s.io", "content", "ls", "-q"],
                         check=True, capture_output=True, text=True).stdout
    return frozenset(out.split())


def load(names: list[str]) -> None:
    """Import each image into the node's containerd (unpacked for its snapshotter), streamed from the
    layout without the layers containerd already holds; an image containerd already has with the
    same manifest digest is left alone."""
    for name in names:
        image_ref = ref(name)
        desc = layout().find(image_ref)
        if desc is None:
            raise SystemExit(f"images: {image_ref} is not built: run `hack/images.sh build {name}` first")
        if loaded_digest(image_ref) == desc["digest"]:
            print(f"{name}: present {image_ref}", flush=True)
            continue
        started = time.monotonic()
        argv = ["ctr", "-a", containerd(), "-n", "k8s.io", "images", "import", "--base-name", f"{REGISTRY}/{name}", "-"]
        log("$ " + shlex.join(argv) + f" < (the OCI archive of {image_ref})")
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE)
        assert proc.stdin is not None
        try:
            layout().tar_image(image_ref, proc.stdin, have=content_digests())
        finally:
            proc.stdin.close()
        if proc.wait() != 0 or loaded_digest(image_ref) != desc["digest"]:
            raise SystemExit(f"images: {image_ref} is not in containerd after its import (ctr exit {proc.returncode})")
        print(f"{name}: loaded {image_ref} in {time.monotonic() - started:.0f} s", flush=True)
    drop_loaded_stale(names)


def drop_loaded_stale(names: list[str]) -> None:
    """Older keys of these images leave containerd (its root is a cache kept across clusters), and
    with them the `sha256:<config digest>` refs the CRI plugin adds for each image that no named
    image has; containerd's garbage collector then frees the layers no image uses any more."""
    ctr = ["ctr", "-a", containerd(), "-n", "k8s.io"]
    rows = [line.split() for line in subprocess.run([*ctr, "images", "ls"], check=True, capture_output=True,
                                                     text=True).stdout.splitlines()[1:]]
    digests = {row[0]: row[2] for row in rows if len(row) > 2}

    def config(manifest_digest: str) -> str:
        out = subprocess.run([*ctr, "content", "get", manifest_digest], capture_output=True, check=True).stdout
        return json.loads(out)["config"]["digest"]

    stale = [r for r in digests for n in names if r.startswith(f"{REGISTRY}/{n}:") and r != ref(n)]
    kept = {config(d) for r, d in digests.items() if not r.startswith("sha256:") and r not in stale}
    # CRI's id refs of images no name points at any more (the stale ones, and those left behind
    # when a name was removed before): a named image of anyone's keeps its id ref.
    stale += [r for r in digests if r.startswith("sha256:") and r not in kept]
    if stale:
        run([*ctr, "images", "rm", "--sync", *stale], stdout=subprocess.DEVNULL)


def values(names: list[str]) -> str:
    """Helm values that point the chart at the built images (pulled never: they are on the node)."""
    lines: list[str] = []
    if "operator" in names:
        repo, _, tag = ref("operator").rpartition(":")
        lines += ["image:", '  registry: ""', f"  repository: {repo}", f"  tag: {tag!r}", "  pullPolicy: Never"]
    workload = [n for n in names if n != "operator"]
    if workload:
        lines += ["defaults:", "  images:", *[f"    {n}: {ref(n)}" for n in workload]]
    return "\n".join(lines) + "\n"


COMMANDS = ("build", "load", "refs", "values", "key")


def main(argv: list[str]) -> int:
    """`[COMMAND...] [NAME...]`: the leading words that are commands run in order over the names
    (`build load` builds what is missing, then loads it)."""
    commands = [a for a in argv[:len(argv)] if a in COMMANDS]
    if not argv or argv[:len(commands)] != commands or not commands:
        print(__doc__, file=sys.stderr)
        return 2
    names = argv[len(commands):] or list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        print(f"images: unknown image(s) {', '.join(unknown)}; known: {', '.join(NAMES)}", file=sys.stderr)
        return 2
    for command in commands:
        if command == "build":
            build(names)
        elif command == "load":
            load(names)
        elif command == "refs":
            print("\n".join(f"{n}={ref(n)}" for n in names))
        elif command == "values":
            print(values(names), end="")
        else:
            print("\n".join(f"{n}={key(n)}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
