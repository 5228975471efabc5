"""What a service's model servers say they did: the items counter (podcontract.SERVED_ITEMS_METRIC)
read from each ready replica's /metrics and summed. Best effort: a replica that does not answer
within the timeout is left out, and none answering gives None (status keeps its last count)."""

from __future__ import annotations

import logging
import re
import urllib.error
import urllib.request
from typing import Iterable, Mapping, Optional

log = logging.getLogger("glassbox.served")

_SAMPLE = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def counter(text: str, name: str, labels: Mapping[str, str]) -> Optional[float]:
    """The sum of the samples of `name` whose labels include `labels` (Prometheus text format)."""
    total, seen = 0.0, False
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m or m.group("name") != name:
            continue
        have = dict(_LABEL.findall(m.group("labels") or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            try:
                total += float(m.group("value"))
                seen = True
            except ValueError:
                continue
    return total if seen else None


def scrape(urls: Iterable[str], name: str, labels: Mapping[str, str], timeout: float = 0.5) -> Optional[int]:
    """The counter summed over the /metrics URLs that answer; None when none does."""
    total, answered = 0.0, False
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                text = r.read(4 << 20).decode("utf-8", errors="replace")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.debug("no metrics from %s: %s", url, exc)
            continue
        value = counter(text, name, labels)
        answered = True
        total += value or 0.0
    return int(total) if answered else None
