"""What a pass knows about its workload's pods and their creation failures, without asking the
apiserver: the operator watches the pods that carry our uid label and the FailedCreate Warning
events (server-side filtered watches, held in Kopf indexes), and a pass looks them up by key.

Listing them per pass instead (the first design) cost the apiserver more than every write of the
operator together at 1000 resources: a list of Events with a field selector scans all Events of the
namespace, 180 ms a call on the test cluster, and the timers of 1000 resources asked for it 33
times a second. Kopf fills the indexes before any handler runs, so a pass never sees a
half-filled view after a restart.

Pure functions turn one object into its index entry, so the unit tests feed the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Protocol

from glassbox_api.constants import LABEL_ATTEMPT, LABEL_UID

POD_INDEX = "glassbox_pods"
EVENT_INDEX = "glassbox_failed_creates"

POD_LABEL_SELECTOR = LABEL_UID
"""Only pods with our uid label are watched (every workload pod template carries it; KServe copies
an InferenceService's spec.predictor.labels onto its predictor pods)."""
EVENT_FIELD_SELECTOR = "type=Warning,reason=FailedCreate"


@dataclass(frozen=True)
class PodInfo:
    name: str
    unscheduled: Optional[tuple[str, str]] = None
    """(reason, message) of a PodScheduled=False condition, else None."""
    exit_code: Optional[int] = None
    """The first non-zero exit code of a terminated container (glassbox_api.podcontract.ExitCode)."""
    ip: Optional[str] = None
    """status.podIP of a pod whose Ready condition is True (a model server to read /metrics from)."""


@dataclass(frozen=True)
class FailedCreate:
    when: str
    message: str


PodKey = tuple[str, str, str]
"""(namespace, resource uid, attempt)."""
EventKey = tuple[str, str]
"""(namespace, uid of the object the event is about)."""


def pod_entry(pod: Mapping[str, Any]) -> dict[PodKey, PodInfo]:
    """A pod's entry: under its resource uid and attempt, its name and why it is not placed."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    uid = labels.get(LABEL_UID)
    if not uid:
        return {}
    problem = None
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            problem = (c.get("reason") or "Unschedulable", c.get("message") or "")
            break
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    info = PodInfo(meta.get("name") or "", problem, _exit_code(status), status.get("podIP") if ready else None)
    return {(meta.get("namespace") or "", uid, labels.get(LABEL_ATTEMPT) or ""): info}


def _exit_code(status: Mapping[str, Any]) -> Optional[int]:
    for cs in status.get("containerStatuses") or []:
        code = (((cs or {}).get("state") or {}).get("terminated") or {}).get("exitCode")
        if isinstance(code, int) and code != 0:
            return code
    return None


def event_entry(event: Mapping[str, Any]) -> dict[EventKey, FailedCreate]:
    """A FailedCreate Warning's entry, under the uid of the object it is about."""
    if event.get("reason") != "FailedCreate" or event.get("type") != "Warning":
        return {}
    involved = event.get("involvedObject") or event.get("involved_object") or {}
    if not involved.get("uid"):
        return {}
    when = str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")
    ns = involved.get("namespace") or (event.get("metadata") or {}).get("namespace") or ""
    return {(ns, involved["uid"]): FailedCreate(when, event.get("message") or "")}


class Watched(Protocol):
    def pods(self, namespace: str, uid: str, attempt: int) -> list[PodInfo]: ...

    def failed_creates(self, namespace: str, uid: str) -> list[FailedCreate]: ...


class IndexView:
    """The operator's view: Kopf's indexes (read-only mappings of key -> values)."""

    def __init__(self, pods: Mapping[PodKey, Iterable[PodInfo]], events: Mapping[EventKey, Iterable[FailedCreate]]):
        self._pods, self._events = pods, events

    def pods(self, namespace: str, uid: str, attempt: int) -> list[PodInfo]:
        return sorted(self._pods.get((namespace, uid, str(attempt)), ()), key=lambda p: p.name)

    def failed_creates(self, namespace: str, uid: str) -> list[FailedCreate]:
        return list(self._events.get((namespace, uid), ()))


class MemoryView(IndexView):
    """The same view built from object lists (unit tests; anything holding the objects)."""

    def __init__(self, pods: Iterable[Mapping[str, Any]] = (), events: Iterable[Mapping[str, Any]] = ()):
        p: dict[PodKey, list[PodInfo]] = {}
        e: dict[EventKey, list[FailedCreate]] = {}
        for pod in pods:
            for k, v in pod_entry(pod).items():
                p.setdefault(k, []).append(v)
        for ev in events:
            for k, v in event_entry(ev).items():
                e.setdefault(k, []).append(v)
        super().__init__(p, e)


def from_kwargs(kwargs: Mapping[str, Any]) -> Optional[IndexView]:
    """The view from a Kopf handler's keyword arguments (Kopf passes every index by its id)."""
    if POD_INDEX in kwargs and EVENT_INDEX in kwargs:
        return IndexView(kwargs[POD_INDEX], kwargs[EVENT_INDEX])
    return None


def register(registry: Any) -> None:
    """The two indexes, on the registry (the watches' server-side selectors: see configure)."""
    import kopf

    @kopf.index("v1", "pods", id=POD_INDEX, labels={LABEL_UID: kopf.PRESENT}, registry=registry)
    def _pods(body: Any, **_: Any) -> dict[PodKey, PodInfo]:
        return pod_entry(body)

    @kopf.index("v1", "events", id=EVENT_INDEX, field="reason", value="FailedCreate", registry=registry)
    def _events(body: Any, **_: Any) -> dict[EventKey, FailedCreate]:
        return event_entry(body)


def configure(settings: Any) -> None:
    """Filter both watches on the server: only our pods, only FailedCreate warnings stream in."""
    settings.watching.label_selectors[("v1", "pods")] = POD_LABEL_SELECTOR
    settings.watching.field_selectors[("v1", "events")] = EVENT_FIELD_SELECTOR
