"""The files a spec's DatasetRef names, read once, the same way for every kind.

A DatasetRef's uri is a store object or prefix (`s3://bucket/key`), a local file, or a local folder
(every file under it, in sorted order); a relative path that does not exist from the working
directory is tried against the spec file's folder. Each kind parses the texts its own way (JSON
lines, a JSON array, plain text, CovidDialog's layout); only the reading is shared, so a missing
dataset is the same BadInput everywhere: `<field>.uri`, what is missing, and the kind's own fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from glassbox_api.kinds.common import DatasetRef
from glassbox_api.store import split_uri

from .errors import BadInput


def read_texts(ref: DatasetRef, *, field: str, fix: str, base_dir: Optional[Path] = None,
               noun: str = "dataset") -> list[tuple[str, str]]:
    """(file name, UTF-8 text) of every file `ref` names; BadInput on `{field}.uri` when none exists."""
    uri = ref.uri
    missing = BadInput(f"{field}.uri", f"{noun} {uri} does not exist", fix)
    if "://" in uri and not uri.startswith("file://"):
        st, leaf = split_uri(uri)
        keys = [leaf] if st.exists(leaf) else st.list(leaf)
        if not keys:
            raise missing
        return [(k.rsplit("/", 1)[-1], st.get_bytes(k).decode("utf-8")) for k in keys]
    p = Path(uri.removeprefix("file://"))
    if not p.is_absolute() and base_dir is not None and not p.exists():
        p = base_dir / p
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    if not files or not files[0].is_file():
        raise missing
    return [(f.name, f.read_text(encoding="utf-8")) for f in files]
