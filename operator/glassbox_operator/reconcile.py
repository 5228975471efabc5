"""One reconcile pass: observe, decide (status.compute), act (apply/delete children), return the
status to write once. Level-based: any number of passes over the same state change nothing."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from kubernetes.client.exceptions import ApiException

from glassbox_api.conditions import Reason
from glassbox_api.manifest import Manifest, read_manifest
from glassbox_api.podcontract import SERVED_ITEMS_METRIC, SERVING_PORT, ExitCode, is_permanent
from glassbox_api.resource import InvalidResource, Resource, parse_resource
from glassbox_api.store import ArtifactStore, RetryPolicy, S3Settings, S3Store, StoreError, open_store

from . import render as R
from .config import OperatorConfig
from .context import STAGE_SERVE, Context, Plan
from .kinds import home
from .kinds.base import Choice, InputRef, Rival
from .kube import Kube
from .localrunner import LocalRunner
from .observed import MemoryView, Watched
from .render import serving
from .render.common import MISSING, ChildState, RenderError, store_target
from .served import scrape
from .status import Event, Observation, compute, plan_of
from .storecreds import StoreCredentials

log = logging.getLogger("glassbox.reconcile")

MAX_S3_CLIENTS = 16
"""Store clients kept, one per distinct S3 settings (endpoint, credentials, ...)."""

REASSERT_SECONDS = 600.0
"""A child body applied this long ago is applied again even if unchanged (server-side apply
restores fields someone else changed). Sooner only when the rendered body changes or the workload
child is found missing; an unchanged pass otherwise costs no write, which is what lets the timers
of a thousand resources run without swamping the apiserver."""


def _child_key(child: dict[str, Any]) -> tuple[str, str]:
    return (child["kind"], child["metadata"]["name"])


def _digest(child: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(child, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _api_reason(exc: ApiException) -> str:
    try:
        reason = json.loads(exc.body or "{}").get("reason")
    except (ValueError, AttributeError):
        reason = None
    return reason or {403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid"}.get(exc.status or 0, "ApplyFailed")


def _api_message(exc: ApiException) -> str:
    try:
        return json.loads(exc.body or "{}").get("message") or str(exc.reason)
    except (ValueError, AttributeError):
        return f"{exc.status} {exc.reason}"


def _revision(resource_version: Any) -> Optional[int]:
    """A resourceVersion as a number to order by, or None.

    The API calls resourceVersion opaque, but an apiserver backed by etcd (every one in practice)
    sets it to the object's etcd modification revision: a decimal integer that grows with every
    write, so two versions of one object compare. A value that does not parse (another storage
    backend) is not compared: the pass acts, as it would without the guard, rather than risk
    skipping a body forever."""
    try:
        return int(resource_version)
    except (TypeError, ValueError):
        return None


# Status keys the operator owns; a key that disappears is removed with an explicit null.
STATUS_KEYS = ("phase", "observedGeneration", "conditions", "artifacts", "children", "lineage", "retries",
               "startTime", "completionTime", "message", "progress", "endpoint", "replicas", "readyReplicas", "selector")


@dataclass
class Result:
    status: dict[str, Any]
    patch: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    requeue_after: Optional[float] = None
    waiting: bool = False
    error: Optional[RenderError] = None
    stale: bool = False
    """The body was older than our own last status write and no current one could be read (the
    object is gone, or the read lagged too): nothing done, nothing written."""


def status_patch(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch turning old into new (only what changed; nulls for what went away)."""
    patch = {k: v for k, v in new.items() if old.get(k) != v}
    for k in STATUS_KEYS:
        if k in old and k not in new:
            patch[k] = None
    return patch


class Reconciler:
    def __init__(self, kube: Kube, config: OperatorConfig, local: LocalRunner,
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 store_retry: Optional[RetryPolicy] = None, watched: Optional[Watched] = None):
        self.kube, self.config, self.local, self.clock = kube, config, local, clock
        self.watched: Watched = watched if watched is not None else MemoryView()
        self.store_retry = store_retry or RetryPolicy(deadline=5.0, initial=0.2, maximum=1.0)
        # Per resource uid: the lock that serializes its passes, and the revision (resourceVersion)
        # our last status write produced. Kopf runs the timer and the event handlers of one object
        # concurrently, and the body a pass gets can predate the status the previous pass wrote
        # (the timer's body, a watch that lags). Acting on it would undo that pass: restart the
        # attempt a retry replaced (the local runner forgets a stopped process), post its events
        # again. Such a body is skipped for the object read afresh; one at or past our write (ours,
        # or anyone's after it: a status someone reset on purpose) is acted on. No clock is
        # involved; after a restart the memory is empty and every body is acted on.
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._written: dict[str, int] = {}
        # Per resource uid: (kind, name) of each child -> (digest of the body applied, when).
        self._applied: dict[str, dict[tuple[str, str], tuple[str, float]]] = {}
        self._s3_clients: dict[S3Settings, Any] = {}
        self.credentials = StoreCredentials(kube, config)

    # ---- reading the store --------------------------------------------------------------------
    def _store(self, uri: str, settings: Optional[S3Settings]) -> ArtifactStore:
        """The store at uri; an S3 one shares its client (and so its open connections) with every
        other pass that uses the same settings. The settings are read afresh each time, so rotated
        credentials get a new client."""
        store = open_store(uri, settings=settings, retry=self.store_retry)
        if not isinstance(store, S3Store):
            return store
        with self._locks_guard:
            client = self._s3_clients.get(store.settings)
            if client is None:
                if len(self._s3_clients) >= MAX_S3_CLIENTS:
                    self._s3_clients.clear()  # settings that changed (rotated keys) leave old ones behind
                client = self._s3_clients[store.settings] = store.settings.client()
        return S3Store(store.bucket, store.prefix, settings=store.settings, retry=store.retry, client=client)

    def _manifest(self, ctx: Context, run_uri: str) -> Optional[Manifest]:
        return self._read_manifest(ctx, run_uri)[0]

    def _read_manifest(self, ctx: Context, run_uri: str) -> tuple[Optional[Manifest], Optional[str]]:
        """(the manifest or None when nothing is published yet, None) or (None, why it is unreadable)."""
        t = store_target(ctx)
        try:
            settings = self.credentials.settings(ctx.namespace, t)
            return read_manifest(self._store(run_uri, settings)), None
        except (StoreError, OSError, ValueError) as exc:
            log.info("manifest of %s unreadable: %s", run_uri, exc)
            return None, f"{type(exc).__name__}: {exc}"[:1024]

    def _resolve(self, ctx: Context, old: dict[str, Any]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        """model.fromRun and the kind's inputs (KindHome.inputs) -> (lineage, None) or (None, why we
        wait). Resolved once: the spec fields that name them are immutable."""
        lineage, waiting = self._resolve_model(ctx, old)
        if waiting:
            return None, waiting
        for ref in ctx.home.inputs(ctx.spec):
            got, waiting = self._resolve_input(ctx, ref, (old.get("lineage") or {}).get(ref.key))
            if waiting:
                return None, waiting
            lineage = {**(lineage or {}), ref.key: got}
        return lineage, None

    def _resolve_input(self, ctx: Context, ref: InputRef,
                       old: Optional[dict[str, Any]]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        """Another resource's published output (a KGHarvest's kg.jsonl): {source, uri, sha256, runUri}
        from its home once its run manifest lists it, or why we wait."""
        source = f"{ref.kind}/{ref.name}"
        if old and old.get("source") == source and old.get("uri"):
            return old, None
        src = self.kube.get_glassbox(ref.kind, ctx.namespace, ref.name)
        if src is None:
            return None, f"waiting for {source} ({ref.field}) to exist"
        run_uri = ((src.get("status") or {}).get("artifacts") or {}).get("runUri")
        manifest = None
        if run_uri:
            src_res = parse_resource({k: v for k, v in src.items() if k != "status"})
            manifest = self._manifest(Context(resource=src_res, config=self.config), run_uri)
        out = home(ref.kind).published(manifest, run_uri) if manifest is not None and run_uri else None
        if out is None:
            return None, f"waiting for {source} ({ref.field}) to publish its result"
        return {"source": source, **{k: v for k, v in out.items() if v is not None}, "runUri": run_uri.rstrip("/")}, None

    def _resolve_model(self, ctx: Context, old: dict[str, Any]) -> tuple[Optional[dict[str, Any]], Optional[str]]:
        """model.fromRun -> (lineage, None) or (None, why we wait)."""
        fr = getattr(getattr(ctx.spec, "model", None), "from_run", None)
        if fr is None:
            return None, None
        source = f"{fr.kind}/{fr.name}@{fr.checkpoint}"
        if (old.get("lineage") or {}).get("source") == source and old["lineage"].get("uri"):
            return {k: v for k, v in old["lineage"].items() if k in ("source", "uri", "step")}, None
        src = self.kube.get_glassbox(fr.kind, ctx.namespace, fr.name)
        if src is None:
            return None, f"waiting for {fr.kind}/{fr.name} to exist"
        run_uri = ((src.get("status") or {}).get("artifacts") or {}).get("runUri")
        if not run_uri:
            return None, f"waiting for {fr.kind}/{fr.name} to start publishing"
        src_res = parse_resource({k: v for k, v in src.items() if k != "status"})
        manifest = self._manifest(Context(resource=src_res, config=self.config), run_uri)
        if manifest is None:
            return None, f"waiting for {fr.kind}/{fr.name} to publish a checkpoint"
        if fr.checkpoint == "each":  # the workload follows the source run's folder itself
            return {"source": source, "uri": run_uri}, None
        try:
            entry = manifest.resolve(fr.checkpoint)
        except KeyError:
            return None, f"waiting for {fr.kind}/{fr.name} to publish checkpoint {fr.checkpoint}"
        return {"source": source, "uri": f"{run_uri}/{entry.path}", "step": entry.step}, None

    # ---- one pass -----------------------------------------------------------------------------
    def _children_for(self, ctx: Context) -> list[dict[str, Any]]:
        return R.render(ctx)

    def _observe(self, ctx: Context, children: list[dict[str, Any]]) -> tuple[R.ChildState, Optional[str]]:
        """The workload child's state, and its uid when it exists in the cluster."""
        wl = R.workload(children)
        if wl is None:
            return MISSING, None
        if wl["kind"] == "LocalProcess":
            return self.local.observe(wl), None
        obj = self.kube.get(wl["apiVersion"], wl["kind"], ctx.namespace, wl["metadata"]["name"])
        if obj is None:
            self._applied.get(ctx.uid, {}).pop(_child_key(wl), None)  # gone (deleted by someone): apply it again
        return R.observer(ctx)(obj), ((obj or {}).get("metadata") or {}).get("uid")

    def reconcile(self, body: dict[str, Any], watched: Optional[Watched] = None) -> Result:
        """One pass over body, its status written (once, when it changed) before the next pass of
        the same resource starts. A body older than our last write is not acted on: the pass reads
        the object afresh and acts on that (Result.stale when it is gone). watched: the workload
        pods and FailedCreate events the operator watches (the reconciler's own view when None)."""
        meta = body.get("metadata") or {}
        uid = meta.get("uid") or ""
        with self._locks_guard:
            lock = self._locks.setdefault(uid, threading.Lock())
        with lock:
            if self._stale(uid, body):
                # Read the object afresh (a quorum read: at or past our write) and act on that.
                fresh = self.kube.get_glassbox(body.get("kind") or "", meta.get("namespace") or "", meta.get("name") or "")
                if fresh is None or (fresh.get("metadata") or {}).get("uid") != uid:
                    return Result(dict(body.get("status") or {}), {}, stale=True)  # gone: nothing to do
                if self._stale(uid, fresh):  # not from a quorum read (a caching proxy?): come back
                    return Result(dict(body.get("status") or {}), {}, requeue_after=1.0, stale=True)
                body, meta = fresh, fresh["metadata"]
            result = self._reconcile(body, self.watched if watched is None else watched)
            if result.patch:
                written = _revision(self.kube.patch_status(body["apiVersion"], body["kind"], meta.get("namespace") or "",
                                                           meta.get("name") or "", result.patch))
                if written is None:  # the object is gone (or its version cannot be ordered)
                    self._written.pop(uid, None)
                else:
                    self._written[uid] = written
            return result

    def _stale(self, uid: str, body: dict[str, Any]) -> bool:
        """body was read before our own last status write for uid, so its status lags ours."""
        ours, seen = self._written.get(uid), _revision((body.get("metadata") or {}).get("resourceVersion"))
        if ours is not None and seen is not None and seen < ours:
            log.debug("%s: body at %s predates our status write at %s", (body.get("metadata") or {}).get("name"), seen, ours)
            return True
        return False

    def forget(self, uid: str) -> None:
        """Drop what we remember of a deleted resource."""
        with self._locks_guard:
            self._locks.pop(uid, None)
            self._written.pop(uid, None)
            self._applied.pop(uid, None)

    def _reconcile(self, body: dict[str, Any], watched: Watched) -> Result:
        """Observe, compute the status (status.compute, the one place it is made), act on the plan."""
        old = dict(body.get("status") or {})
        now = self.clock()
        doc = {k: body[k] for k in ("apiVersion", "kind", "metadata", "spec") if k in body}
        try:
            resource = parse_resource(doc)
        except InvalidResource as exc:
            err = RenderError(Reason.INVALID_SPEC, str(exc))
            out = compute(None, old, Plan(), Observation(error=err, generation=(body.get("metadata") or {}).get("generation")), None, now)
            return Result(out.status, status_patch(old, out.status), out.events, error=err)
        plan = plan_of(resource, old)
        ctx = Context(resource=resource, config=self.config, plan=plan)
        looked = ctx
        try:
            obs, manifest, children, looked = self._look(ctx, old, watched)
        except RenderError as exc:
            obs, manifest, children = Observation(error=exc), None, []
        except ApiException as exc:
            return self._refused(resource, old, plan, Observation(), None, exc, now)
        out = compute(resource, old, plan, obs, manifest, now)
        ctx = looked
        if obs.error is None and (out.plan != plan or (out.choice is not None and self._moved(ctx, out))):
            ctx = self._with_models(ctx.with_plan(out.plan), obs.lineage, manifest, out.choice)
            children = self._children_for(ctx)
        old_children = [dict(c) for c in old.get("children") or []]
        if out.apply:
            try:
                self._act(ctx, children, old_children, plan)
            except ApiException as exc:
                return self._refused(resource, old, plan, obs, manifest, exc, now)
            out.status["children"] = [R.ref(c) for c in children]
        elif old_children:
            out.status["children"] = old_children
        return Result(out.status, status_patch(old, out.status), out.events, out.requeue_after,
                      waiting=obs.waiting is not None, error=obs.error)

    def _refused(self, resource: Resource, old: dict[str, Any], plan: Plan, obs: Observation,
                 manifest: Optional[Manifest], exc: ApiException, now: datetime) -> Result:
        """The apiserver refused a read or a write of a child (RBAC, admission, a schema): not
        terminal, but visible in status and events instead of only in the operator's log."""
        reason, message = _api_reason(exc), _api_message(exc)
        log.warning("applying children failed: %s: %s", reason, message)
        obs = replace(obs, refused=(reason, message))
        out = compute(resource, old, plan, obs, manifest, now)
        old_children = [dict(c) for c in old.get("children") or []]
        if old_children:
            out.status["children"] = old_children
        return Result(out.status, status_patch(old, out.status), out.events, requeue_after=out.requeue_after)

    def _look(self, ctx: Context, old: dict[str, Any], watched: Watched
              ) -> tuple[Observation, Optional[Manifest], list[dict[str, Any]], Context]:
        """Everything the pass observes: the model source, the run manifest (and the serving model's,
        when a candidate waits for promotion), the children it wants, the workload's state (and the
        kept InferenceService's, while a new model trains), and whether the pods can be placed."""
        plan = ctx.plan
        lineage, waiting = (None, None) if plan.teardown else self._resolve(ctx, old)
        artifacts = R.artifacts(ctx)
        manifest, unreadable = None, None
        if old and (store_target(ctx).endpoint or R.backend(ctx) == "local"):
            # Not on the first pass (no status yet): the run prefix has the resource's uid, and
            # nothing publishes there before a pass has applied the workload.
            manifest, unreadable = self._read_manifest(ctx, artifacts["runUri"])
        rival = self._rival(ctx, old, manifest, artifacts["runUri"])
        choice = ctx.home.choose(ctx.resource, plan.stage, old, manifest, artifacts["runUri"], rival)
        ctx = self._with_models(ctx, lineage, manifest, choice)
        children = [] if waiting else self._children_for(ctx)
        state, workload_uid = self._observe(ctx, children) if children else (MISSING, None)
        kept = ctx.kept() if children else None
        serve = plan.stage == STAGE_SERVE
        shown = ctx if serve else kept
        obs = Observation(
            workload=_with_exit_codes(state, watched, ctx),
            artifacts=artifacts, lineage=lineage, waiting=waiting, unreadable=unreadable,
            replicas=serving.replicas(shown) if shown else None,
            selector=serving.selector(shown) if shown else None,
            unscheduled=_unscheduled(ctx, children, workload_uid, watched),
            served=_served(ctx, state, watched) if serve and state.ready else None,
            rival=rival,
            kept=self._observe(kept, R.render(kept))[0] if kept else None,
        )
        return obs, manifest, children, ctx

    def _rival(self, ctx: Context, old: dict[str, Any], manifest: Optional[Manifest], run_uri: str) -> Optional[Rival]:
        """The serving model's run manifest, when a newly trained candidate is to be compared with it."""
        uri = ctx.home.rival_run(ctx.resource, old, manifest, run_uri)
        if uri is None:
            return None
        m, error = self._read_manifest(ctx, uri)
        return Rival(uri, m, error)

    @staticmethod
    def _moved(ctx: Context, out: Any) -> bool:
        """The outcome's choice serves another checkpoint than the children rendered by _look."""
        want = out.choice.checkpoint
        return (ctx.model_uri if ctx.plan.stage == STAGE_SERVE else ctx.serving_uri) != want

    def _with_models(self, ctx: Context, lineage: Optional[dict[str, Any]], manifest: Optional[Manifest] = None,
                     choice: Optional[Choice] = None) -> Context:
        """Fill in what the workload loads: the model (below) and the resolved inputs."""
        keys = [r.key for r in ctx.home.inputs(ctx.spec)]
        inputs = {k: lineage[k] for k in keys if lineage and isinstance(lineage.get(k), dict)}
        return replace(self._with_model(ctx, lineage, manifest, choice), inputs=inputs or None)

    def _with_model(self, ctx: Context, lineage: Optional[dict[str, Any]], manifest: Optional[Manifest] = None,
                    choice: Optional[Choice] = None) -> Context:
        """Fill in the model the workload loads: the fromRun checkpoint, or (a service that trains
        before it serves) the checkpoint its home chose, else its own latest checkpoint; while a
        service retrains, the checkpoint its InferenceService keeps serving."""
        uri = lineage.get("uri") if lineage else None
        if choice is not None:
            if ctx.plan.stage == STAGE_SERVE:
                return Context(resource=ctx.resource, config=ctx.config, plan=ctx.plan, model_uri=choice.checkpoint or uri)
            return Context(resource=ctx.resource, config=ctx.config, plan=ctx.plan, model_uri=uri,
                           serving_uri=choice.checkpoint)
        if ctx.plan.stage == STAGE_SERVE and ctx.home.serves_own_checkpoint(ctx.spec):
            run_uri = R.artifacts(ctx)["runUri"]
            if manifest is None:
                manifest = self._manifest(ctx, run_uri)
            latest = manifest.latest if manifest else None
            uri = f"{run_uri}/{latest.path}" if latest else run_uri
        return Context(resource=ctx.resource, config=ctx.config, plan=ctx.plan, model_uri=uri)

    def _act(self, ctx: Context, children: list[dict[str, Any]], old_children: list[dict[str, Any]], plan: Plan) -> None:
        now = time.monotonic()
        applied = self._applied.setdefault(ctx.uid, {})
        for child in children:
            if child["kind"] == "LocalProcess":
                # Allowed by the configuration only (security.allowLocalBackend): the process gets
                # the credentials of its store target, none of the operator's others; while they
                # cannot be read it is not started (StoreReadable=False says why).
                try:
                    creds = self.credentials.for_target(ctx.namespace, store_target(ctx))
                except StoreError as exc:
                    log.warning("not starting %s/%s: %s", ctx.namespace, child["metadata"]["name"], exc)
                    continue
                self.local.ensure(child, creds.env())
                continue
            key, digest = _child_key(child), _digest(child)
            seen = applied.get(key)
            if seen and seen[0] == digest and now - seen[1] < REASSERT_SECONDS:
                continue  # this exact body was applied lately and (for the workload) still exists
            self.kube.apply(child)
            applied[key] = (digest, now)
        keep = {(c["apiVersion"], c["kind"], c["metadata"]["name"]) for c in children}
        known = {(c["apiVersion"], c["kind"], c["name"]) for c in old_children}
        if plan.teardown:
            # Children applied by a pass that died before writing status are not in old_children.
            try:
                known |= {(c["apiVersion"], c["kind"], c["metadata"]["name"]) for c in R.render(ctx.with_plan(Plan(plan.attempt, plan.stage)))}
            except RenderError:
                pass
        for api_version, kind, name in sorted(known - keep):
            applied.pop((kind, name), None)
            if kind == "LocalProcess":
                self.local.stop(ctx.namespace, ctx.uid, name)
            else:
                self.kube.delete(api_version, kind, ctx.namespace, name)


def _with_exit_codes(state: ChildState, watched: Watched, ctx: Context) -> ChildState:
    """A failed attempt whose pod exited with a permanent code (glassbox_api.podcontract) is not
    retried, whatever the backend: the code is read from the pods the operator watches."""
    if state.state != "Failed" or state.permanent:
        return state
    codes = [p.exit_code for p in watched.pods(ctx.namespace, ctx.uid, ctx.plan.attempt) if p.exit_code]
    permanent = [c for c in codes if is_permanent(c)]
    if not permanent:
        return state
    return replace(state, permanent=True, message=f"{state.message + '; ' if state.message else ''}"
                   f"the workload exited with code {permanent[0]} ({ExitCode(permanent[0]).name})")


def _served(ctx: Context, state: ChildState, watched: Watched) -> Optional[int]:
    """The items counter of the service's ready replicas (pod IPs from the watch; a local model
    server's own endpoint), or None when the kind reads none or no replica answered."""
    spec = ctx.home.served
    if spec is None:
        return None
    urls = [f"http://{p.ip}:{SERVING_PORT}/metrics" for p in watched.pods(ctx.namespace, ctx.uid, ctx.plan.attempt) if p.ip]
    if not urls and state.endpoint and state.reason == "Serving":  # the local backend's process
        urls = [f"{state.endpoint.rstrip('/')}/metrics"]
    return scrape(urls, SERVED_ITEMS_METRIC, {"model": ctx.name, "unit": spec[0]}) if urls else None


def _unscheduled(ctx: Context, children: list[dict[str, Any]], workload_uid: Optional[str],
                 watched: Watched) -> Optional[tuple[str, str]]:
    """(reason, message) when the workload's pods cannot be created (the child's FailedCreate
    events: a missing PriorityClass, quota, admission) or placed (a pod's Unschedulable condition,
    KServe predictor pods included). Reads the operator's watches (observed.py), not the apiserver."""
    wl = R.workload(children)
    if wl is None or wl["kind"] == "LocalProcess":
        return None
    pods = watched.pods(ctx.namespace, ctx.uid, ctx.plan.attempt)
    problem = next(((p.unscheduled[0], f"pod {p.name}: {p.unscheduled[1]}") for p in pods if p.unscheduled), None)
    if problem is None and not pods and workload_uid and wl["kind"] != serving.KIND:
        # No pods yet: did the child's controller fail to create them? (An InferenceService's
        # pods come from a Deployment: no events on it.)
        failed = watched.failed_creates(ctx.namespace, workload_uid)
        if failed:
            problem = (Reason.FAILED_CREATE.value, max(failed, key=lambda e: e.when).message)
    return problem
