"""Reading the result files a manifest lists, once: parsed rows cached by (file, sha256).

A listed file never changes under the same sha256 (a new version is a new digest in a new
manifest), so the cache is always right; it holds a few files so a page of 1000 rows out of
100,000 is a slice, not a re-read. Files whose digest the manifest does not give (metric segments)
are keyed by their size and the run's manifest update, which change whenever they do.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Optional

from glassbox_api.store import ArtifactStore, ChecksumMismatch, NotFound, StoreError

from .catalog import UiError

_MAX_FILES = 16


class FileCache:
    """An LRU of parsed files (JSON lines or JSON documents)."""

    def __init__(self, max_files: int = _MAX_FILES):
        self._data: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_files

    def _read(self, run: ArtifactStore, path: str, sha256: Optional[str]) -> bytes:
        try:
            return run.get_bytes(path, sha256=sha256)
        except NotFound:
            raise UiError(f"the manifest lists {path}, but the store has no {run.uri(path)} "
                          "(a half-written or damaged run)", 404) from None
        except ChecksumMismatch as exc:
            raise UiError(f"{run.uri(path)} does not match the sha256 the manifest lists: {exc}", 502) from None
        except StoreError as exc:
            raise UiError(f"cannot read {run.uri(path)}: {exc}", 502) from None

    def get(self, run: ArtifactStore, path: str, sha256: Optional[str], *, lines: bool, version: str = "") -> Any:
        """The parsed file: a list of rows (lines=True) or one JSON document."""
        key = (run.uri(path), sha256 or version)
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        raw = self._read(run, path, sha256).decode("utf-8", errors="replace")
        try:
            parsed = [json.loads(x) for x in raw.splitlines() if x.strip()] if lines else json.loads(raw)
        except ValueError as exc:
            raise UiError(f"{run.uri(path)} is not valid JSON{' lines' if lines else ''}: {exc}", 502) from None
        with self._lock:
            self._data[key] = parsed
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        return parsed


def page(rows: list[dict[str, Any]], *, offset: int = 0, limit: int = 1000, sort: Optional[str] = None,
         desc: bool = False, q: str = "") -> dict[str, Any]:
    """One page of rows, filtered by a case-insensitive substring and sorted by a column (blanks last)."""
    if limit < 1 or limit > 5000:
        raise UiError(f"limit must be between 1 and 5000, got {limit}")
    if offset < 0:
        raise UiError(f"offset must be 0 or more, got {offset}")
    columns: list[str] = []
    for r in rows[:50]:
        columns += [k for k in r if k not in columns]
    if q:
        needle = q.lower()
        rows = [r for r in rows if needle in json.dumps(r, ensure_ascii=False).lower()]
    if sort:
        if rows and columns and sort not in columns:
            raise UiError(f"no column {sort!r} to sort by (columns: {', '.join(columns)})")
        present = [r for r in rows if r.get(sort) is not None]
        blank = [r for r in rows if r.get(sort) is None]
        try:
            present.sort(key=lambda r: r[sort], reverse=desc)
        except TypeError:  # mixed types: compare as text
            present.sort(key=lambda r: str(r[sort]), reverse=desc)
        rows = present + blank
    return {"total": len(rows), "offset": offset, "limit": limit, "columns": columns,
            "rows": rows[offset:offset + limit]}
