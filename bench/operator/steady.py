"""Steady-state mode of bench.py: resources arriving at a fixed rate, per-resource latency.

For each side (frame.sides: glassbox's PretrainRun -> RayJob, KubeRay's RayJob -> RayCluster), in
its own run (frame's namespace, operator process and teardown):
- two watches (the parents, the children) start on the empty namespace, from its list's
  resourceVersion: the measurement reads events the apiserver pushes and polls nothing;
- one warm-up resource is applied and waited for (children and status; not counted), so neither
  operator's start-up lands in the numbers;
- arrivals: resource i is due at t0 + i/rate (one clock, no drift), for `duration` seconds; a pool
  of threads sends each one as a server-side apply, so a slow apply does not delay later ones;
- per resource, from the moment its apply was sent: (a) children: the first watch event of a child
  pointing at it; (b) status: the first event of it with its operator's first status write
  (frame.Side.status_written);
- the run ends when every resource has both, or `grace` seconds after the last arrival was due;
  those without one by then are counted as not there.
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config, watch

from frame import Side, apiserver_pid, cpu_seconds, log, pct

FIELD_MANAGER = "glassbox-bench"


def _api(pool: int) -> client.CustomObjectsApi:
    cfg = client.Configuration()
    config.load_kube_config(client_configuration=cfg)
    cfg.connection_pool_maxsize = pool
    return client.CustomObjectsApi(client.ApiClient(cfg))


@dataclass
class Seen:
    """First-seen times (time.monotonic) per parent name; written by the watch threads."""
    children: dict[str, float] = field(default_factory=dict)
    status: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def mark(self, which: dict[str, float], name: str, now: float) -> None:
        with self.lock:
            if name not in which:
                which[name] = now
                self.changed.notify_all()


class Watcher(threading.Thread):
    """One watch of a custom resource list in a namespace, re-opened every few seconds (so it can
    stop) from the last resourceVersion it saw; on_object(obj, received_at) for every event."""

    def __init__(self, api: client.CustomObjectsApi, gvp: tuple[str, str, str], ns: str, on_object):
        super().__init__(daemon=True)
        self.api, self.gvp, self.ns, self.on_object = api, gvp, ns, on_object
        self.stop = threading.Event()
        self.error: BaseException | None = None
        group, version, plural = gvp
        self.rv = api.list_namespaced_custom_object(group, version, ns, plural)["metadata"]["resourceVersion"]

    def run(self) -> None:
        group, version, plural = self.gvp
        w = watch.Watch()
        try:
            while not self.stop.is_set():
                for ev in w.stream(self.api.list_namespaced_custom_object, group, version, self.ns, plural,
                                   resource_version=self.rv, timeout_seconds=5, allow_watch_bookmarks=True):
                    now = time.monotonic()
                    obj = ev["object"]
                    self.rv = obj["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        self.on_object(obj, now)
        except BaseException as exc:  # reported by run_side; a dead watch must not pass as "never there"
            self.error = exc


@dataclass
class SideResult:
    side: str
    n: int
    children: list[float]  # seconds from apply sent, one per resource that got there
    status: list[float]
    lag: list[float]  # apply sent minus due time
    apply_s: list[float]  # apply round trip
    apply_errors: int
    rss: float
    wall: float
    cpu: dict[str, float]  # CPU seconds over the arrivals and the wait: operator, kube-apiserver
    load: tuple[float, float]  # 1-minute load average at the start and at the end


def _arrive(api: client.CustomObjectsApi, side: Side, ns: str, rate: float, n: int, workers: int,
            sent: dict[str, float]) -> tuple[list[float], list[float], int, float]:
    """Apply n resources, i-th due at t0 + i/rate; returns (lag, apply round trips, errors, t0)."""
    group, version, plural = side.parent
    lag: list[float] = []
    apply_s: list[float] = []
    errors = [0]

    def one(name: str, due: float) -> None:
        body = side.manifest(name, ns)
        t = time.monotonic()
        sent[name] = t
        lag.append(t - due)
        try:
            api.patch_namespaced_custom_object(group, version, ns, plural, name, body, field_manager=FIELD_MANAGER,
                                               force=True, _content_type="application/apply-patch+yaml")
        except Exception as exc:  # counted; the resource then never arrives
            errors[0] += 1
            log(f"apply {name}: {exc}")
        apply_s.append(time.monotonic() - t)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply") as pool:
        t0 = time.monotonic() + 0.2
        for i in range(n):
            due = t0 + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one, f"s{i}", due)
    return lag, apply_s, errors[0], t0


def run_side(side: Side, rate: float, duration: float, grace: float, workdir: Path) -> SideResult:
    n = int(round(rate * duration))
    # Open loop: enough senders for 5 s apply round trips at this rate, so an overloaded
    # apiserver shows in the latencies (and in the send lag noted under the table), not as fewer arrivals.
    workers = max(16, math.ceil(rate * 5))
    api = _api(workers + 4)
    seen = Seen()
    with side.operator("steady", workdir) as (ns, rss):
        def on_parent(obj: dict, now: float) -> None:
            if side.status_written(obj):
                seen.mark(seen.status, obj["metadata"]["name"], now)

        def on_child(obj: dict, now: float) -> None:
            parent = side.parent_of_child(obj)
            if parent:
                seen.mark(seen.children, parent, now)

        watchers = [Watcher(api, side.parent, ns, on_parent), Watcher(api, side.child, ns, on_child)]
        for w in watchers:
            w.start()
        try:
            _warm_up(api, side, ns, seen, watchers)
            sent: dict[str, float] = {}
            start = time.monotonic()
            pids = {"operator": rss.pid, "kube-apiserver": apiserver_pid()}
            cpu0 = {k: cpu_seconds(p) for k, p in pids.items()}
            load0 = os.getloadavg()[0]
            log(f"{side.name}: {n} resources at {rate:g}/s for {duration:g} s into {ns}")
            lag, apply_s, errors, t0 = _arrive(api, side, ns, rate, n, workers, sent)
            deadline = t0 + (n - 1) / rate + grace
            names = {f"s{i}" for i in range(n)}
            with seen.lock:
                while time.monotonic() < deadline and not (names <= seen.children.keys() and names <= seen.status.keys()):
                    seen.changed.wait(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
                    _check(watchers)
                children = [seen.children[k] - sent[k] for k in names if k in seen.children and k in sent]
                status = [seen.status[k] - sent[k] for k in names if k in seen.status and k in sent]
            wall = time.monotonic() - start
            cpu = {k: cpu_seconds(p) - cpu0[k] for k, p in pids.items()}
            load = (load0, os.getloadavg()[0])
        finally:
            for w in watchers:
                w.stop.set()
        for w in watchers:
            w.join(timeout=15)
        peak = rss.peak
    return SideResult(side.name, n, children, status, lag, apply_s, errors, peak, wall, cpu, load)


def _check(watchers: list[Watcher]) -> None:
    for w in watchers:
        if w.error is not None:
            raise RuntimeError(f"watch of {w.gvp[2]} failed: {w.error!r}")
        if not w.is_alive():
            raise RuntimeError(f"watch of {w.gvp[2]} ended")


def _warm_up(api: client.CustomObjectsApi, side: Side, ns: str, seen: Seen, watchers: list[Watcher], timeout: float = 120) -> None:
    group, version, plural = side.parent
    t = time.monotonic()
    api.patch_namespaced_custom_object(group, version, ns, plural, "warmup", side.manifest("warmup", ns),
                                       field_manager=FIELD_MANAGER, force=True, _content_type="application/apply-patch+yaml")
    with seen.lock:
        while not ("warmup" in seen.children and "warmup" in seen.status):
            if time.monotonic() - t > timeout:
                raise SystemExit(f"{side.name}: warm-up resource not done after {timeout:.0f} s")
            seen.changed.wait(timeout=1.0)
            _check(watchers)
    log(f"{side.name}: warm-up resource done in {time.monotonic() - t:.2f} s")


# ---- the table ----

def _q(xs: list[float]) -> list[float]:
    return [pct(xs, 0.5), pct(xs, 0.9), pct(xs, 0.99), max(xs) if xs else float("nan")]


def table(results: list[SideResult], rate: float, duration: float, grace: float) -> str:
    """Markdown: per operator, p50/p90/p99/max seconds from apply to children and to status, how
    many resources never got there, then the ratio row (first side over second)."""
    head = ("| operator | resources | children p50 s | p90 | p99 | max | never | status p50 s | p90 | p99 | max | never "
            "| peak RSS MiB |")
    lines = [f"Steady state: {rate:g} resources/s for {duration:g} s, then up to {grace:g} s to finish.", "",
             head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        c, s = _q(r.children), _q(r.status)
        lines.append(f"| {r.side} | {r.n} | " + " | ".join(f"{x:.2f}" for x in c) + f" | {r.n - len(r.children)} | "
                     + " | ".join(f"{x:.2f}" for x in s) + f" | {r.n - len(r.status)} | {r.rss:.0f} |")
    if len(results) == 2:
        a, b = results
        ratio = [x / y if y else float("nan") for x, y in zip(_q(a.children) + _q(a.status), _q(b.children) + _q(b.status))]
        lines.append(f"| ratio {a.side}/{b.side} | | " + " | ".join(f"{x:.2f}" for x in ratio[:4]) + " | | "
                     + " | ".join(f"{x:.2f}" for x in ratio[4:]) + " | | |")
    lines.append("")
    for r in results:
        lines.append(f"{r.side}: apply sent behind its due time p99 {pct(r.lag, 0.99) * 1000:.0f} ms, max "
                     f"{max(r.lag, default=float('nan')) * 1000:.0f} ms; apply round trip p50 {pct(r.apply_s, 0.5) * 1000:.0f} ms, "
                     f"p99 {pct(r.apply_s, 0.99) * 1000:.0f} ms; apply errors {r.apply_errors}; run {r.wall:.0f} s; CPU s "
                     + ", ".join(f"{k} {v:.1f}" for k, v in r.cpu.items()) + f"; load average {r.load[0]:.1f} -> {r.load[1]:.1f}")
    return "\n".join(lines)
