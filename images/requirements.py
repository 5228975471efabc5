"""Print the requirements of glassbox's extras from pyproject.toml, one a line, for `pip install -r`.

    python3 requirements.py [--no-base] EXTRA[:NAME,NAME...]...

The images install their dependencies from this list in a layer of their own, before the sources are
copied, so a change to the sources rebuilds only the small layer that installs glassbox itself
(`pip install --no-deps`). EXTRA:NAMES keeps only those packages of an extra (the jax image takes
the recipes' text tools from the metrics extra, not bert-score, which would bring torch). The base
dependencies come first unless --no-base. The standard library only (python3 >= 3.11: tomllib).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def name_of(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def requirements(project: dict, args: list[str]) -> list[str]:
    extras = project["optional-dependencies"]
    out = [] if "--no-base" in args else list(project["dependencies"])
    for arg in (a for a in args if a != "--no-base"):
        extra, _, names = arg.partition(":")
        if extra not in extras:
            raise SystemExit(f"requirements.py: no extra {extra!r} in pyproject.toml; have {', '.join(extras)}")
        wanted = {n.strip().lower() for n in names.split(",") if n.strip()}
        for r in extras[extra]:
            if name_of(r) == project["name"]:  # a self-reference such as glassbox[operator,ui]
                inner = r[r.index("[") + 1:r.index("]")].split(",")
                out += requirements(project, ["--no-base", *inner])
            elif not wanted or name_of(r) in wanted:
                out.append(r)
        missing = wanted - {name_of(r) for r in extras[extra]}
        if missing:
            raise SystemExit(f"requirements.py: extra {extra} has no {', '.join(sorted(missing))}")
    return list(dict.fromkeys(out))


if __name__ == "__main__":
    pyproject = Path(__file__).resolve().parent / "pyproject.toml"
    if not pyproject.exists():
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    print("\n".join(requirements(tomllib.loads(pyproject.read_text())["project"], sys.argv[1:])))
