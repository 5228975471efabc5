"""Deterministic child names, valid whatever the length of the resource name.

A resource name may be a 253-character DNS subdomain; its children must be DNS labels short enough
for what their controllers derive from them (a Job's pods and job-name label, a JobSet's
`<jobset>-<replicatedjob>-<i>-<j>` hostnames, a RayJob's RayCluster). Long names are cut and
given a hash of the full name, so two long names sharing a prefix never collide.
"""

from __future__ import annotations

import hashlib
import re

# Room left for what controllers append (JobSet: "-slice-12-3", RayJob: "-raycluster-xxxxx").
WORKLOAD_MAX = 40
LABEL_MAX = 63
_BAD = re.compile(r"[^a-z0-9-]+")


def short_hash(text: str, n: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def child_name(name: str, suffix: str = "", max_len: int = WORKLOAD_MAX) -> str:
    """`<name>-<suffix>` as a DNS-1035 label of at most max_len characters."""
    base = _BAD.sub("-", name.lower()).strip("-") or "x"
    if not base[0].isalpha():
        base = "g" + base
    tail = f"-{suffix}" if suffix else ""
    full = base + tail
    if len(full) <= max_len and full == name.lower() + tail:
        return full
    keep = max_len - len(tail) - 9
    if keep < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room in {max_len} characters")
    return f"{base[:keep].rstrip('-')}-{short_hash(name)}{tail}"


def label_value(text: str) -> str:
    """A label value (<= 63 characters, alphanumeric at both ends); long values get a hash."""
    if len(text) <= LABEL_MAX:
        return text
    return f"{text[:LABEL_MAX - 9].rstrip('-.')}-{short_hash(text)}"
