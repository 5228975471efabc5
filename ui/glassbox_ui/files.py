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
from typing import Any, Callable, Optional

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
        return self.parsed(run, path, sha256, lines=lines, version=version)[0]

    def parsed(self, run: ArtifactStore, path: str, sha256: Optional[str], *, lines: bool,
               version: str = "") -> tuple[Any, list[str]]:
        """(the parsed file, its lines lower-cased: the text a search looks in)."""
        key = (run.uri(path), sha256 or version)
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        raw = self._read(run, path, sha256).decode("utf-8", errors="replace")
        text = [x for x in raw.splitlines() if x.strip()] if lines else []
        try:
            # One decode of the whole array is several times faster than one per line.
            parsed = json.loads("[" + ",".join(text) + "]") if lines else json.loads(raw)
        except ValueError as exc:
            raise UiError(f"{run.uri(path)} is not valid JSON{' lines' if lines else ''}: {exc}", 502) from None
        out = (parsed, [x.lower() for x in text])
        with self._lock:
            self._data[key] = out
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        return out


class Table:
    """Rows of one table version, with what filtering and sorting need computed once and kept."""

    def __init__(self, rows: list[dict[str, Any]], note: Optional[str] = None, *, columns: Optional[list[str]] = None,
                 text: Optional[Callable[[], list[str]]] = None):
        self.rows = rows
        self.note = note
        """Why some of the table is missing (e.g. texts that cannot be read), shown above it."""
        self.columns: list[str] = list(columns or [])
        for r in rows[:50]:
            self.columns += [k for k in r if k not in self.columns]
        self._make_text = text
        self._text: Optional[list[str]] = None
        self._orders: dict[tuple[str, bool], list[int]] = {}

    def text(self) -> list[str]:
        """Each row's values as one lower-case string, for substring search."""
        if self._text is None:
            self._text = (self._make_text() if self._make_text is not None
                          else [" ".join(str(v) for v in r.values()).lower() for r in self.rows])
        return self._text

    def order(self, sort: str, desc: bool) -> list[int]:
        """Row indexes sorted by a column, blanks last (mixed types compare as text)."""
        key = (sort, desc)
        if key not in self._orders:
            present = [i for i, r in enumerate(self.rows) if r.get(sort) is not None]
            blank = [i for i, r in enumerate(self.rows) if r.get(sort) is None]
            try:
                present.sort(key=lambda i: self.rows[i][sort], reverse=desc)
            except TypeError:
                present.sort(key=lambda i: str(self.rows[i][sort]), reverse=desc)
            self._orders[key] = present + blank
        return self._orders[key]


class TableCache:
    """Tables by (run, table, relation, manifest update): a new manifest is a new version."""

    def __init__(self, max_tables: int = 8):
        self._data: OrderedDict[tuple[str, ...], Table] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_tables

    def get(self, key: tuple[str, ...], build: Callable[[], Table]) -> Table:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        table = build()
        with self._lock:
            self._data[key] = table
            while len(self._data) > self._max:
                self._data.popitem(last=False)
        return table


def page(table: Table, *, offset: int = 0, limit: int = 1000, sort: Optional[str] = None,
         desc: bool = False, q: str = "") -> dict[str, Any]:
    """One page of a table, filtered by a case-insensitive substring and sorted by a column."""
    if limit < 1 or limit > 5000:
        raise UiError(f"limit must be between 1 and 5000, got {limit}")
    if offset < 0:
        raise UiError(f"offset must be 0 or more, got {offset}")
    if sort and table.rows and sort not in table.columns:
        raise UiError(f"no column {sort!r} to sort by (columns: {', '.join(table.columns)})")
    idx: list[int] = table.order(sort, desc) if sort else list(range(len(table.rows)))
    if q:
        needle, text = q.lower(), table.text()
        idx = [i for i in idx if needle in text[i]]
    return {"total": len(idx), "offset": offset, "limit": limit, "columns": table.columns,
            "rows": [table.rows[i] for i in idx[offset:offset + limit]]}
