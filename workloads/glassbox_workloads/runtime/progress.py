"""Progress: a rich bar on a terminal, one plain line every few steps otherwise (logs, pods)."""

from __future__ import annotations

import sys
import time
from typing import Any, Optional


def interactive() -> bool:
    return sys.stdout.isatty()


class Progress:
    def __init__(self, total: int, initial: int = 0, *, description: str = "training",
                 every: int = 10, force_plain: bool = False, enabled: bool = True):
        self.total, self.every, self.enabled = total, max(1, every), enabled
        self._bar = None
        self._task = None
        self._t0 = time.time()
        if enabled and interactive() and not force_plain:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RP, TextColumn, TimeRemainingColumn

            self._bar = RP(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
            self._bar.start()
            self._task = self._bar.add_task(description, total=total, completed=initial, info="")

    def update(self, step: int, stats: dict[str, Any]) -> None:
        if not self.enabled:
            return
        info = "  ".join(_fmt(k, v) for k, v in stats.items() if v is not None)
        if self._bar is not None:
            self._bar.update(self._task, completed=step, info=info)
        elif step % self.every == 0 or step == self.total:
            print(f"step {step}/{self.total}  {info}", flush=True)

    def note(self, msg: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(msg)
        else:
            print(msg, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _fmt(k: str, v: Any) -> str:
    if isinstance(v, float):
        if k == "lr":
            return f"{k} {v:.2e}"
        if k in ("tokens_per_s",):
            return f"tok/s {v:,.0f}"
        return f"{k} {v:.4g}"
    return f"{k} {v}"


def maybe(x: Optional[float]) -> Optional[float]:
    return x
